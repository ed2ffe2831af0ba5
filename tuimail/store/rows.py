"""Conversions between model values and table columns (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from tuimail.models import Address, Envelope, Flags
from tuimail.store.schema import FLAG_BITS


def flags_to_columns(flags: Flags) -> tuple[int, str]:
    bits = 0
    for name, bit in FLAG_BITS.items():
        if getattr(flags, name):
            bits |= bit
    # IMAP keywords are atoms (no spaces); anything else could not round-trip.
    keywords = " ".join(sorted(k for k in flags.keywords if k and not any(c.isspace() for c in k)))
    return bits, keywords


@lru_cache(maxsize=4096)
def flags_from_columns(bits: int, keywords: str) -> Flags:
    values = {name: bool(bits & bit) for name, bit in FLAG_BITS.items()}
    return Flags(keywords=frozenset(keywords.split()), **values)


def epoch(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def from_epoch(seconds: int | None, offset_minutes: int = 0) -> datetime | None:
    if seconds is None:
        return None
    tz = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(seconds, tz)


def offset_minutes(value: datetime | None) -> int:
    if value is None or value.utcoffset() is None:
        return 0
    offset = value.utcoffset()
    assert offset is not None
    return int(offset.total_seconds() // 60)


def _pairs(addrs: tuple[Address, ...]) -> list[list[str]]:
    return [[a.name, a.addr] for a in addrs]


def _addrs(pairs: list[list[str]]) -> tuple[Address, ...]:
    return tuple(Address(str(p[0]), str(p[1])) for p in pairs)


def envelope_extra(env: Envelope) -> str:
    """The address lists that have no column of their own, as compact JSON."""
    extra: dict[str, list[list[str]]] = {}
    if len(env.from_) > 1:
        extra["from"] = _pairs(env.from_)
    for key, value in (
        ("to", env.to),
        ("cc", env.cc),
        ("bcc", env.bcc),
        ("sender", env.sender),
        ("reply_to", env.reply_to),
    ):
        if value:
            extra[key] = _pairs(value)
    return json.dumps(extra, ensure_ascii=False, separators=(",", ":")) if extra else "{}"


def envelope_from_row(
    message_id: str,
    in_reply_to: str,
    refs: str,
    date_utc: int | None,
    date_offset: int,
    from_name: str,
    from_addr: str,
    addrs: str,
    subject: str,
) -> Envelope:
    extra: dict[str, list[list[str]]] = json.loads(addrs) if addrs != "{}" else {}
    if "from" in extra:
        from_ = _addrs(extra["from"])
    elif from_name or from_addr:
        from_ = (Address(from_name, from_addr),)
    else:
        from_ = ()
    return Envelope(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=tuple(refs.split()),
        date=from_epoch(date_utc, date_offset),
        from_=from_,
        sender=_addrs(extra.get("sender", [])),
        reply_to=_addrs(extra.get("reply_to", [])),
        to=_addrs(extra.get("to", [])),
        cc=_addrs(extra.get("cc", [])),
        bcc=_addrs(extra.get("bcc", [])),
        subject=subject,
    )


def now() -> int:
    return int(datetime.now(UTC).timestamp())
