"""Conversions between model values and table columns (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from tuimail.models import Address, Envelope, Flags
from tuimail.store.schema import FLAG_BITS


@lru_cache(maxsize=4096)
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


# Address lists without a column of their own, in one text column: cheaper than JSON
# (this runs 50,000 times per bulk add). Separators are ASCII FS/GS/RS/US; those control
# characters inside names become U+FFFD (they are never legitimate in an address).
_FS, _GS, _RS, _US = "\x1c", "\x1d", "\x1e", "\x1f"
_SEPARATORS = str.maketrans({_FS: "\ufffd", _GS: "\ufffd", _RS: "\ufffd", _US: "\ufffd"})


def _clean(text: str) -> str:
    # isprintable() is a fast C check: the separators are control characters.
    return text if text.isprintable() else text.translate(_SEPARATORS)


def _pack(addrs: tuple[Address, ...]) -> str:
    return _RS.join(_clean(a.name) + _US + _clean(a.addr) for a in addrs)


def _unpack(text: str) -> tuple[Address, ...]:
    out = []
    for entry in text.split(_RS):
        name, _, addr = entry.partition(_US)
        out.append(Address(name, addr))
    return tuple(out)


def envelope_extra(env: Envelope) -> str:
    """The address lists that have no column of their own (to, cc, bcc, ...)."""
    parts = []
    if len(env.from_) > 1:
        parts.append("from" + _GS + _pack(env.from_))
    if env.to:
        parts.append("to" + _GS + _pack(env.to))
    if env.cc:
        parts.append("cc" + _GS + _pack(env.cc))
    if env.bcc:
        parts.append("bcc" + _GS + _pack(env.bcc))
    if env.sender:
        parts.append("sender" + _GS + _pack(env.sender))
    if env.reply_to:
        parts.append("reply_to" + _GS + _pack(env.reply_to))
    return _FS.join(parts)


def _extra(text: str) -> dict[str, tuple[Address, ...]]:
    out: dict[str, tuple[Address, ...]] = {}
    if text:
        for part in text.split(_FS):
            key, _, packed = part.partition(_GS)
            out[key] = _unpack(packed)
    return out


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
    extra = _extra(addrs)
    if "from" in extra:
        from_ = extra["from"]
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
        sender=extra.get("sender", ()),
        reply_to=extra.get("reply_to", ()),
        to=extra.get("to", ()),
        cc=extra.get("cc", ()),
        bcc=extra.get("bcc", ()),
        subject=subject,
    )


def now() -> int:
    return int(datetime.now(UTC).timestamp())


def thread_id(key: str) -> int:
    """A stable 63-bit number for a thread key (a root Message-ID): rows of one thread
    share it across folders and processes without a table to keep in step."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
