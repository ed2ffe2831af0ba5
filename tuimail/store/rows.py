"""Conversions between model values and table columns (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, NamedTuple

from tuimail.models import Address, Envelope, Flags
from tuimail.store.indexing import Indexed, address_text, sort_from, sort_subject
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


class IndexRow(NamedTuple):
    """What the store writes for a parsed message, computed from its `Indexed` alone, so a
    helper process can do it; plain values, so it crosses processes as a cheap pickle
    (unpickling `Indexed` itself cost ~35 us a message)."""

    columns: tuple[Any, ...]  # in the order of INDEX_COLUMNS
    thread: int | None  # thread_id of its thread key; None: a thread of its own
    fts: tuple[str, str, str, str, str]  # sender, recipients, cc, subject, body
    senders: tuple[tuple[str, str], ...]  # (addr, name) of From
    recipients: tuple[tuple[str, str], ...]  # (addr, name) of To, Cc, Bcc

    @property
    def message_id(self) -> str:
        return str(self.columns[0])

    @property
    def date_utc(self) -> int | None:
        value: int | None = self.columns[3]
        return value


# The message columns an IndexRow carries, in its order.
INDEX_COLUMNS = (
    "message_id",
    "in_reply_to",
    "refs",
    "date_utc",
    "date_offset",
    "from_name",
    "from_addr",
    "sort_from",
    "addrs",
    "subject",
    "sort_subject",
    "has_attachments",
    "preview",
    "parse_warning",
)


def index_row(idx: Indexed) -> IndexRow:
    env = idx.envelope
    first = env.from_[0] if env.from_ else None
    columns = (
        env.message_id,
        env.in_reply_to,
        " ".join(env.references),
        epoch(env.date),
        offset_minutes(env.date),
        first.name if first else "",
        first.addr if first else "",
        sort_from(env.from_),
        envelope_extra(env),
        env.subject,
        sort_subject(env.subject),
        int(idx.has_attachments),
        idx.preview,
        idx.warning,
    )
    fts = (
        address_text(env.from_ + env.sender),
        address_text(env.to + env.bcc),
        address_text(env.cc),
        env.subject,
        idx.body_text,
    )
    return IndexRow(
        columns,
        thread_id(idx.thread_key) if idx.thread_key else None,
        fts,
        tuple((a.addr, a.name) for a in env.from_),
        tuple((a.addr, a.name) for a in (*env.to, *env.cc, *env.bcc)),
    )
