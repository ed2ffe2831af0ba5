"""Reading messages: headers, envelope, MIME structure, bodies, attachments.

Everything here takes untrusted bytes and never raises on them: what cannot be read is
skipped or approximated and reported in `warnings`.

Why not `email.message_from_bytes`: its parser recurses per MIME level (a 1,000-level
nesting raises RecursionError), takes ~30 s for 100,000 parts, and with `policy.default`
raises ValueError on hostile headers. The MIME walk below is iterative over byte offsets,
bounded by `max_parts`/`max_depth`, and linear in the message size; header values go
through the tolerant decoders of `tuimail.mail.encoding` and `tuimail.mail.addresses`.

Conventions:

- Message-IDs keep their angle brackets (`<id@host>`), as in the headers they came from.
- Part ids follow IMAP BODY[section] numbering: "1" for the body of a single-part message,
  "1", "2", "2.1", ... inside multiparts. An attached message (message/rfc822) is one part.
- Decoded header values are on one line: NUL, CR and LF (even from encoded words) become
  spaces. They are otherwise unsanitized: display code must use `tuimail.mail.sanitize`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz
from functools import lru_cache

from tuimail.errors import NotFoundError
from tuimail.mail.addresses import parse_address_header
from tuimail.mail.encoding import (
    decode_bytes,
    decode_transfer,
    decode_words,
    flatten,
    parse_params,
)
from tuimail.mail.flowed import is_flowed, unflow
from tuimail.mail.sanitize import sanitize_line
from tuimail.models import Address, Attachment, Envelope, Frozen

_set = object.__setattr__  # sets a field of a Frozen value in its __init__

__all__ = [
    "HeaderSummary",
    "IndexParts",
    "ParsedMessage",
    "body_preview",
    "decode_header_value",
    "header_summary",
    "index_parts",
    "message_ids",
    "parse_date",
    "parse_headers",
    "parse_message",
    "part_bytes",
    "preview",
    "split_header_block",
]

# --- dates -----------------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_TZ_CACHE: dict[int, timezone] = {0: UTC}
_MAX_OFFSET = 24 * 3600 - 60


def _tz(seconds: int) -> timezone | None:
    tz = _TZ_CACHE.get(seconds)
    if tz is None:
        if abs(seconds) > _MAX_OFFSET:
            return None
        tz = _TZ_CACHE[seconds] = timezone(timedelta(seconds=seconds))
    return tz


# The canonical RFC 5322 form, which nearly all mail uses; anything else goes to the stdlib.
_DATE_CANONICAL = re.compile(
    r"(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d)(?::(\d\d))?"
    r" ([+-]\d{4})(?: \([^()]*\))?\Z",
    re.ASCII,
)


def parse_date(value: str) -> datetime | None:
    """An aware datetime keeping the sender's UTC offset; `-0000` or no zone means UTC.
    Garbage (or an impossible date or offset) gives None."""
    if not value:
        return None
    m = _DATE_CANONICAL.match(value)
    if m is not None:
        day, mon, year, hh, mm, ss, zone = m.groups()
        month = _MONTHS.get(mon)
        tz = _ZONE_CACHE.get(zone)
        if tz is None:
            tz = _zone(zone)
        if month is not None and tz is not None:
            try:
                return datetime(
                    int(year), month, int(day), int(hh), int(mm), int(ss) if ss else 0, tzinfo=tz
                )
            except ValueError:
                if ss == "60":  # a leap second reads as :59
                    return parse_date(value.replace(":60", ":59", 1))
                return None
    return _parse_date_slow(value[:200])


_ZONE_CACHE: dict[str, timezone] = {}


def _zone(zone: str) -> timezone | None:
    """`+hhmm` as a timezone (cached); None for minutes >= 60 or more than a day."""
    minutes = int(zone[3:])
    if minutes >= 60:
        return None
    offset = int(zone[1:3]) * 3600 + minutes * 60
    tz = _tz(-offset if zone[0] == "-" else offset)
    if tz is not None and len(_ZONE_CACHE) < 2000:
        _ZONE_CACHE[zone] = tz
    return tz


def _parse_date_slow(value: str) -> datetime | None:
    try:
        parts = parsedate_tz(value)
    except Exception:  # the stdlib parser has raised IndexError/ValueError on odd input
        parts = None
    if parts is not None:
        year, month, day, hh, mm, ss = parts[:6]
        tz = _tz(parts[9] or 0)
        if tz is None:
            return None
        try:
            return datetime(year, month, day, hh, mm, min(ss, 59), tzinfo=tz)
        except (ValueError, OverflowError, TypeError):
            return None
    try:  # ISO 8601 from some automated senders
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


# --- Message-IDs -----------------------------------------------------------------------------

_MSGID = re.compile(r"<([^<>]*)>")
_SIMPLE_MSGID = re.compile(r"<[^<>\s]+>\Z")
_MAX_IDS = 200


def message_ids(value: str) -> tuple[str, ...]:
    """The `<id>`s in a References / In-Reply-To / Message-ID value, in order, without
    duplicates; garbage between them is skipped. Without any `<...>`, bare `x@y` words are
    taken. Long References keep their first and last ids (the root and the nearest parents).
    """
    if not value:
        return ()
    if _SIMPLE_MSGID.match(value):
        return (value,)
    ids: list[str] = []
    seen: set[str] = set()
    for m in _MSGID.finditer(value):
        inner = "".join(m.group(1).split())
        if inner:
            mid = f"<{inner}>"
            if mid not in seen:
                seen.add(mid)
                ids.append(mid)
    if not ids:
        for word in value.split():
            word = word.strip("<>,;:\"'()[]")
            if "@" in word and "<" not in word and ">" not in word and f"<{word}>" not in seen:
                seen.add(f"<{word}>")
                ids.append(f"<{word}>")
    if len(ids) > _MAX_IDS:
        ids = ids[:1] + ids[-(_MAX_IDS - 1) :]
    return tuple(ids)


# --- header blocks ---------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")
_FOLD = re.compile(r"\r?\n")
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")


def split_header_block(raw: bytes, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(end of the header block, start of the body) within raw[start:end].

    The block ends at the first empty line. A part whose first line is not a header line
    has no headers (returns (start, start)). Without an empty line, all of it is headers.
    """
    if end is None:
        end = len(raw)
    if start >= end:
        return start, start
    if raw.startswith(b"\n", start):
        return start, start + 1
    if raw.startswith(b"\r\n", start):
        return start, start + 2
    first = start
    if raw.startswith(b"From ", start):  # mbox separator line
        nl = raw.find(b"\n", start, end)
        first = end if nl < 0 else nl + 1
    if first < end and not _HEADER_LINE.match(raw, first, end):
        return start, start
    crlf = raw.find(b"\n\r\n", first, end)
    lf = raw.find(b"\n\n", first, end if crlf < 0 else crlf + 2)
    if lf >= 0:
        return lf + 1, lf + 2
    if crlf >= 0:
        return crlf + 1, crlf + 3
    return end, end


def _header_text(block: bytes) -> tuple[str, bool]:
    try:
        return block.decode("utf-8"), False
    except UnicodeDecodeError:
        return block.decode("utf-8", "surrogateescape"), True


_SURROGATE = re.compile("[\udc80-\udcff]")


def _fix_8bit(value: str) -> str:
    """A header value with raw 8-bit bytes that are not UTF-8: read them as windows-1252."""
    if not _SURROGATE.search(value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), "cp1252")[0]


_FIELD_START = re.compile(r"\n(?![ \t])")


def _all_fields(text: str, dirty: bool) -> list[tuple[str, str]]:
    """(name as written, unfolded raw value) of every header field, in order."""
    out: list[tuple[str, str]] = []
    for chunk in _FIELD_START.split(text):
        name, colon, value = chunk.partition(":")
        if not colon:
            continue  # a stray line without a colon (or the mbox "From " line)
        name = name.rstrip(" \t")
        if not _FIELD_NAME.match(name):
            continue
        if "\n" in value:
            value = _FOLD.sub("", value)
        value = value.strip(" \t\r")
        if dirty:
            value = _fix_8bit(value)
        out.append((name, value))
    return out


# The usual spellings of the field names read on the hot path, to skip str.lower().
_LOWER: dict[str, str] = {}


def _named_fields_re(names: tuple[str, ...]) -> re.Pattern[str]:
    for n in names:
        for spelling in (n, n.title(), n.upper(), n.title().replace("-Id", "-ID")):
            _LOWER[spelling] = n
    # re.ASCII: without it IGNORECASE would let U+017F (long s) stand for "s" in "subject".
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(
        r"\n(" + alternatives + r")[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.IGNORECASE | re.ASCII
    )


def _named_fields(
    block: bytes, pattern: re.Pattern[str]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The fields `pattern` names: {lowercased name: first unfolded raw value} and
    {name: later values} for names that occur more than once.

    The sync hot path: one regex pass that skips from line start to line start, and little
    Python per field. Agrees with `_all_fields` on those names: a field starts on a line not
    beginning with whitespace, its name may be followed by spaces/tabs before the colon.
    """
    try:
        text = block.decode("utf-8")
        dirty = False
    except UnicodeDecodeError:
        text = block.decode("utf-8", "surrogateescape")
        dirty = True
    first: dict[str, str] = {}
    extra: dict[str, list[str]] = {}
    for name, value in pattern.findall("\n" + text):
        name = _LOWER.get(name) or name.lower()
        if "\n" in value:
            value = _FOLD.sub("", value)
        value = value.strip(" \t\r")
        if dirty:
            value = _fix_8bit(value)
        if name in first:
            extra.setdefault(name, []).append(value)
        else:
            first[name] = value
    return first, extra


def decode_header_value(value: str) -> str:
    """An unstructured header value decoded (RFC 2047) and flattened to one line."""
    return _decode_encoded(value) if "=?" in value else flatten(value)


@lru_cache(maxsize=4096)
def _decode_encoded(value: str) -> str:
    return flatten(decode_words(value))


_ENVELOPE_FIELDS = _named_fields_re(
    (
        "message-id",
        "in-reply-to",
        "references",
        "date",
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "content-type",
    )
)
_SINGLE = ("from", "sender", "reply-to", "subject", "date", "message-id")


def _addresses(value: str | None, more: list[str] | None) -> tuple[Address, ...]:
    if value is None:
        return ()
    found = parse_address_header(value)
    if more:  # every instance counts: a second From is shown, not silently dropped
        for v in more:
            found += parse_address_header(v)
    return found


def _first_id(value: str | None) -> str:
    if not value:
        return ""
    if _SIMPLE_MSGID.match(value):
        return value
    ids = message_ids(value)
    return ids[0] if ids else ""


def _envelope(
    first: dict[str, str], extra: dict[str, list[str]], warnings: list[str] | None
) -> Envelope:
    get = first.get
    date_raw = get("date")
    date = parse_date(date_raw) if date_raw else None
    # Address fields: parse the ones present; every instance of a repeated field counts.
    if extra:
        from_, sender, reply_to, to, cc, bcc = (
            _addresses(get(n), extra.get(n)) for n in _ADDRESS_NAMES
        )
    else:  # the common case, spelled out: this runs once per message of a sync
        v = get("from")
        from_ = parse_address_header(v) if v is not None else ()
        v = get("sender")
        sender = parse_address_header(v) if v is not None else ()
        v = get("reply-to")
        reply_to = parse_address_header(v) if v is not None else ()
        v = get("to")
        to = parse_address_header(v) if v is not None else ()
        v = get("cc")
        cc = parse_address_header(v) if v is not None else ()
        v = get("bcc")
        bcc = parse_address_header(v) if v is not None else ()
    refs = get("references")
    subject = get("subject")
    if warnings is not None and (extra or (date_raw and date is None) or not from_):
        for name in _SINGLE:
            if name in extra:
                warnings.append(f"{len(extra[name]) + 1} {name.title()} header fields")
        if date_raw and date is None:
            warnings.append("unreadable Date header")
        if get("from", "").strip() and not from_:
            warnings.append("no address in the From header")
    return Envelope(
        message_id=_first_id(get("message-id")),
        in_reply_to=_first_id(get("in-reply-to")),
        references=message_ids(refs) if refs else (),
        date=date,
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=decode_header_value(subject) if subject else "",
    )


_ADDRESS_NAMES = ("from", "sender", "reply-to", "to", "cc", "bcc")


class HeaderSummary(Frozen):
    """What sync needs from a header block, in one fast pass."""

    __slots__ = ("content_type", "envelope", "has_attachments")
    envelope: Envelope
    content_type: str  # lowercased type/subtype, "" when absent
    has_attachments: bool  # heuristic from the top Content-Type alone

    def __init__(self, envelope: Envelope, content_type: str, has_attachments: bool) -> None:
        _set(self, "envelope", envelope)
        _set(self, "content_type", content_type)
        _set(self, "has_attachments", has_attachments)


def _guess_attachments(content_type: str) -> bool:
    """multipart/mixed almost always means attachments (mutt's and Thunderbird's guess); a
    single non-text part (application/pdf, image/png, ...) is itself one."""
    if content_type == "multipart/mixed":
        return True
    if not content_type or content_type.startswith(("text/", "multipart/")):
        return False
    return "/" in content_type


def _envelope_fields(block: bytes) -> tuple[dict[str, str], dict[str, list[str]]]:
    # The usual sync input is exactly a header block ending in its blank line: skip the
    # general split when that is evident (same result, measurably cheaper per message).
    size = len(block)
    blank = block.find(b"\n\r\n")
    if (
        blank == size - 3
        and block.find(b"\n\n", 0, blank) < 0
        and _HEADER_LINE.match(block)
        and not block.startswith(b"From ")
    ):
        return _named_fields(block[: size - 2], _ENVELOPE_FIELDS)
    hend, _ = split_header_block(block)
    return _named_fields(block[:hend] if hend < size else block, _ENVELOPE_FIELDS)


def header_summary(block: bytes) -> HeaderSummary:
    """Envelope, Content-Type and attachment guess from a header block (or a whole message:
    only its headers are read). Built for speed: no `email.message` object."""
    try:
        first, extra = _envelope_fields(block)
        envelope = _envelope(first, extra, None)
    except Exception:  # pragma: no cover - defensive: a parser bug must not stop a sync
        return HeaderSummary(Envelope(), "", False)
    ctype = first.get("content-type")
    main = ctype.partition(";")[0].strip().lower() if ctype else ""
    return HeaderSummary(envelope, main, _guess_attachments(main))


def parse_headers(block: bytes) -> Envelope:
    """The envelope of a raw header block (e.g. `BODY.PEEK[HEADER.FIELDS (...)]`, or a
    whole message: only its headers are read). Never raises."""
    try:
        return _envelope(*_envelope_fields(block), None)
    except Exception:  # pragma: no cover - defensive: a parser bug must not stop a sync
        return Envelope()


# --- MIME structure --------------------------------------------------------------------------


class _Part:
    __slots__ = (
        "body_end", "body_start", "children", "cte", "ctype", "disp_params", "disposition",
        "fields", "params", "parent_type", "part_id", "truncated",
    )  # fmt: skip

    def __init__(
        self,
        *,
        part_id: str,
        fields: dict[str, str],
        ctype: str,
        params: dict[str, str],
        disposition: str,
        disp_params: dict[str, str],
        cte: str,
        body_start: int,
        body_end: int,
        parent_type: str,
    ) -> None:
        self.part_id = part_id
        self.fields = fields  # Content-* fields (lowercased names), first instance
        self.ctype = ctype
        self.params = params
        self.disposition = disposition
        self.disp_params = disp_params
        self.cte = cte
        self.body_start = body_start
        self.body_end = body_end
        self.parent_type = parent_type
        self.children: list[_Part] = []
        self.truncated = False  # a multipart whose children were not read (limits)

    @property
    def filename(self) -> str:
        return self.disp_params.get("filename") or self.params.get("name", "")


class _Budget:
    __slots__ = ("depth_hit", "max_depth", "max_parts", "parts", "parts_hit")

    def __init__(self, max_parts: int, max_depth: int) -> None:
        self.parts = 0
        self.max_parts = max_parts
        self.max_depth = max_depth
        self.parts_hit = False
        self.depth_hit = False


def _delimiters(
    raw: bytes, start: int, end: int, boundary: bytes
) -> Iterable[tuple[int, int, bool]]:
    """Yield (line start, next line start, is_close) for each boundary line in raw[start:end]."""
    delim = b"--" + boundary
    pos = start
    while True:
        idx = raw.find(delim, pos, end)
        if idx < 0:
            return
        pos = idx + 1
        if idx != start and raw[idx - 1] != 10:
            continue
        after = idx + len(delim)
        nl = raw.find(b"\n", after, end)
        line_end = end if nl < 0 else nl
        close = raw.startswith(b"--", after, line_end)
        if not close and raw[after:line_end].strip(b" \t\r"):
            continue  # "--boundaryX": a longer boundary, not ours
        yield idx, line_end if nl < 0 else nl + 1, close
        if close:
            return
        pos = line_end


def _content_end(raw: bytes, line_start: int, floor: int) -> int:
    """A part's content ends before the line break preceding its delimiter line."""
    end = line_start
    if end > floor and raw[end - 1] == 10:
        end -= 1
        if end > floor and raw[end - 1] == 13:
            end -= 1
    return end


def _parse_part(
    raw: bytes,
    start: int,
    end: int,
    part_id: str,
    parent_type: str,
    depth: int,
    budget: _Budget,
    warnings: list[str],
) -> _Part:
    budget.parts += 1
    hend, body_start = split_header_block(raw, start, end)
    fields = _named_fields(raw[start:hend], _PART_FIELDS)[0]
    ctype_raw = fields.get("content-type", "")
    default = "message/rfc822" if parent_type == "multipart/digest" else "text/plain"
    ctype, params = parse_params(ctype_raw) if ctype_raw else (default, {})
    if "/" not in ctype:
        if ctype_raw:
            warnings.append(f"unreadable Content-Type {ctype_raw[:60]!r}")
        ctype, params = default, {}
    disp_raw = fields.get("content-disposition", "")
    disposition, disp_params = parse_params(disp_raw) if disp_raw else ("", {})
    part = _Part(
        part_id=part_id,
        fields=fields,
        ctype=ctype,
        params=params,
        disposition=disposition,
        disp_params=disp_params,
        cte=fields.get("content-transfer-encoding", "").strip().lower(),
        body_start=body_start,
        body_end=end,
        parent_type=parent_type,
    )
    if not ctype.startswith("multipart/"):
        return part
    boundary = params.get("boundary", "")
    if not boundary:
        warnings.append(f"{ctype} without a boundary: shown as text")
        part.ctype, part.params = "text/plain", {}
        return part
    if depth >= budget.max_depth:
        if not budget.depth_hit:
            warnings.append(
                f"MIME nesting deeper than {budget.max_depth} levels: inner parts skipped"
            )
            budget.depth_hit = True
        part.truncated = True
        return part
    bnd = boundary.encode("utf-8", "surrogateescape")
    prev_next: int | None = None
    closed = False
    index = 0
    for line_start, next_line, is_close in _delimiters(raw, body_start, end, bnd):
        if prev_next is not None:
            index += 1
            if budget.parts >= budget.max_parts:
                if not budget.parts_hit:
                    warnings.append(f"more than {budget.max_parts} MIME parts: the rest skipped")
                    budget.parts_hit = True
                part.truncated = True
                return part
            child_end = _content_end(raw, line_start, prev_next)
            child_id = f"{part_id}.{index}" if part_id else str(index)
            part.children.append(
                _parse_part(raw, prev_next, child_end, child_id, ctype, depth + 1, budget, warnings)
            )
        prev_next = next_line
        if is_close:
            closed = True
            break
    if prev_next is None:
        warnings.append(f"{ctype} boundary never found: shown as text")
        part.ctype, part.params = "text/plain", {}
        return part
    if not closed:
        if prev_next < end and not budget.parts_hit:
            index += 1
            child_id = f"{part_id}.{index}" if part_id else str(index)
            if budget.parts < budget.max_parts:
                part.children.append(
                    _parse_part(raw, prev_next, end, child_id, ctype, depth + 1, budget, warnings)
                )
        warnings.append(f"{ctype} not terminated (message cut short?)")
    return part


_PART_FIELDS = _named_fields_re(
    ("content-type", "content-disposition", "content-transfer-encoding", "content-id")
)


def _walk_leaves(root: _Part) -> list[_Part]:
    out: list[_Part] = []
    stack = [root]
    while stack:
        part = stack.pop()
        if part.children:
            stack.extend(reversed(part.children))
        elif not part.ctype.startswith("multipart/"):
            out.append(part)
    return out


def _parse_tree(raw: bytes, max_parts: int, max_depth: int, warnings: list[str]) -> _Part:
    budget = _Budget(max(1, max_parts), max(0, max_depth))
    root = _parse_part(raw, 0, len(raw), "", "", 0, budget, warnings)
    if not root.ctype.startswith("multipart/"):
        root.part_id = "1"
    return root


# --- the parsed message ----------------------------------------------------------------------


class ParsedMessage(Frozen):
    """A message as read by `parse_message`. Bodies are decoded to str with LF line ends;
    like every field here they are unsanitized (render/sanitize before display)."""

    __slots__ = (
        "attachments", "content_type", "envelope", "headers", "text_html", "text_plain",
        "warnings",
    )  # fmt: skip
    envelope: Envelope
    text_plain: str | None
    text_html: str | None
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]  # every header, in order, decoded, one line each
    warnings: tuple[str, ...]
    content_type: str

    def __init__(
        self,
        envelope: Envelope,
        text_plain: str | None,
        text_html: str | None,
        attachments: tuple[Attachment, ...],
        headers: tuple[tuple[str, str], ...],
        warnings: tuple[str, ...] = (),
        content_type: str = "text/plain",
    ) -> None:
        _set(self, "envelope", envelope)
        _set(self, "text_plain", text_plain)
        _set(self, "text_html", text_html)
        _set(self, "attachments", attachments)
        _set(self, "headers", headers)
        _set(self, "warnings", warnings)
        _set(self, "content_type", content_type)

    @property
    def has_attachments(self) -> bool:
        """True when a part is a real attachment (not an inline image of the HTML body)."""
        return any(not a.inline for a in self.attachments)

    def header(self, name: str) -> str:
        """The first header named `name` (case-insensitive), decoded; "" when absent."""
        lname = name.lower()
        return next((v for n, v in self.headers if n.lower() == lname), "")


def _is_body(part: _Part, single: bool) -> str | None:
    """'plain' or 'html' if the leaf is message text rather than an attachment."""
    if part.ctype.partition("/")[0] != "text":
        return None
    if single:
        return "html" if part.ctype == "text/html" else "plain"
    if part.disposition == "attachment" or part.filename:
        return None
    if part.ctype == "text/plain":
        return "plain"
    if part.ctype == "text/html":
        return "html"
    return None


def _decode_part(raw: bytes, part: _Part, warnings: list[str]) -> bytes:
    data, ok = decode_transfer(raw[part.body_start : part.body_end], part.cte)
    if not ok:
        warnings.append(f"part {part.part_id}: damaged base64")
    return data


def parse_message(raw: bytes, *, max_parts: int = 1000, max_depth: int = 30) -> ParsedMessage:
    """Parse a whole message. Never raises on any input: see `warnings`."""
    warnings: list[str] = []
    try:
        return _parse_message(bytes(raw), max_parts, max_depth, warnings)
    except Exception as exc:  # pragma: no cover - a parser bug must not hide the message
        warnings.append(f"message could not be parsed ({type(exc).__name__})")
        text = bytes(raw).decode("utf-8", "replace")
        return ParsedMessage(Envelope(), text, None, (), (), tuple(warnings))


def _parse_message(
    raw: bytes, max_parts: int, max_depth: int, warnings: list[str]
) -> ParsedMessage:
    root = _parse_tree(raw, max_parts, max_depth, warnings)
    envelope = _envelope(*_envelope_fields(raw), warnings)
    headers = _display_headers(raw, warnings)
    leaves = _walk_leaves(root)
    single = not root.ctype.startswith("multipart/")
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part in leaves:
        kind = _is_body(part, single)
        if kind is not None:
            data = _decode_part(raw, part, warnings)
            text, clean = decode_bytes(data, part.params.get("charset"))
            if not clean:
                cs = part.params.get("charset", "")
                warnings.append(f"part {part.part_id}: text not valid in charset {cs[:40]!r}")
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            if kind == "plain":
                flowed, delsp = is_flowed(part.params)
                if flowed:
                    text = unflow(text, delsp)
            (plain if kind == "plain" else html).append(text)
            continue
        data = _decode_part(raw, part, warnings)
        inline = (part.disposition == "inline" and not part.filename) or (
            part.parent_type == "multipart/related"
            and part.disposition != "attachment"
            and bool(part.fields.get("content-id"))
        )
        attachments.append(
            Attachment(
                filename=part.filename,
                content_type=part.ctype,
                size=len(data),
                part_id=part.part_id,
                inline=inline,
            )
        )
    return ParsedMessage(
        envelope=envelope,
        text_plain="\n".join(plain) if plain else None,
        text_html="\n".join(html) if html else None,
        attachments=tuple(attachments),
        headers=headers,
        warnings=tuple(dict.fromkeys(warnings)),
        content_type=root.ctype,
    )


class IndexParts(Frozen):
    """What the store indexes of a whole message (see `index_parts`)."""

    __slots__ = ("envelope", "has_attachments", "text_html", "text_plain", "warnings")
    envelope: Envelope
    text_plain: str | None  # line ends as in the message (CRLF usually)
    text_html: str | None
    has_attachments: bool
    warnings: tuple[str, ...]

    def __init__(
        self,
        envelope: Envelope,
        text_plain: str | None,
        text_html: str | None,
        has_attachments: bool,
        warnings: tuple[str, ...] = (),
    ) -> None:
        _set(self, "envelope", envelope)
        _set(self, "text_plain", text_plain)
        _set(self, "text_html", text_html)
        _set(self, "has_attachments", has_attachments)
        _set(self, "warnings", warnings)


def index_parts(
    raw: bytes, *, max_text: int = 200_000, max_parts: int = 1000, max_depth: int = 30
) -> IndexParts:
    """`parse_message` cut down to what a search index and a preview need, for the store's
    insert path (it runs once per fetched message): no display headers, attachments are
    classified but never decoded, line ends are left alone, and text parts stop being
    decoded once `max_text` characters of each kind are read. Never raises."""
    warnings: list[str] = []
    try:
        return _index_parts(bytes(raw), max_text, max_parts, max_depth, warnings)
    except Exception as exc:  # pragma: no cover - a parser bug must not hide the message
        warnings.append(f"message could not be parsed ({type(exc).__name__})")
        text = bytes(raw[: max_text * 4]).decode("utf-8", "replace")
        return IndexParts(Envelope(), text, None, False, tuple(warnings))


def _index_parts(
    raw: bytes, max_text: int, max_parts: int, max_depth: int, warnings: list[str]
) -> IndexParts:
    root = _parse_tree(raw, max_parts, max_depth, warnings)
    envelope = _envelope(*_envelope_fields(raw), warnings)
    hend, _ = split_header_block(raw)
    if not raw.isascii():  # the same check `_display_headers` makes, without decoding
        try:
            raw[:hend].decode("utf-8")
        except UnicodeDecodeError:
            warnings.append("raw 8-bit bytes in headers")
    single = not root.ctype.startswith("multipart/")
    texts: dict[str, list[str]] = {"plain": [], "html": []}
    sizes = {"plain": 0, "html": 0}
    attachments = False
    for part in _walk_leaves(root):
        kind = _is_body(part, single)
        if kind is None:
            inline = (part.disposition == "inline" and not part.filename) or (
                part.parent_type == "multipart/related"
                and part.disposition != "attachment"
                and bool(part.fields.get("content-id"))
            )
            attachments = attachments or not inline
            continue
        if sizes[kind] >= max_text:
            continue
        text, clean = decode_bytes(_decode_part(raw, part, warnings), part.params.get("charset"))
        if not clean:
            cs = part.params.get("charset", "")
            warnings.append(f"part {part.part_id}: text not valid in charset {cs[:40]!r}")
        texts[kind].append(text)
        sizes[kind] += len(text) + 1
    plain, html = texts["plain"], texts["html"]
    return IndexParts(
        envelope=envelope,
        text_plain="\n".join(plain) if plain else None,
        text_html="\n".join(html) if html else None,
        has_attachments=attachments,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _display_headers(raw: bytes, warnings: list[str]) -> tuple[tuple[str, str], ...]:
    hend, _ = split_header_block(raw)
    text, dirty = _header_text(raw[:hend])
    out = [(name, decode_header_value(value)) for name, value in _all_fields(text, dirty)]
    if dirty:
        warnings.append("raw 8-bit bytes in headers")
    return tuple(out)


def part_bytes(raw: bytes, part_id: str, *, max_parts: int = 1000, max_depth: int = 30) -> bytes:
    """The decoded content of part `part_id` (as in `Attachment.part_id`), e.g. to save an
    attachment. Raises NotFoundError when the message has no such part."""
    root = _parse_tree(bytes(raw), max_parts, max_depth, [])
    node: _Part | None = root
    if root.part_id == "1" and part_id == "1":
        return decode_transfer(raw[root.body_start : root.body_end], root.cte)[0]
    for index in part_id.split("."):
        if node is None or not index.isdigit() or not node.children:
            node = None
            break
        i = int(index) - 1
        node = node.children[i] if 0 <= i < len(node.children) else None
    if node is None or node.children:
        raise NotFoundError(f"This message has no part {part_id!r}.")
    return decode_transfer(raw[node.body_start : node.body_end], node.cte)[0]


def body_preview(parsed: ParsedMessage, length: int = 200) -> str:
    """`preview` of the plain body, or of the HTML body read as text when there is none."""
    if parsed.text_plain and parsed.text_plain.strip():
        return preview(parsed.text_plain, length)
    if parsed.text_html:
        from tuimail.mail.htmltext import strip_tags  # html.entities etc.: HTML-only mail

        return preview(strip_tags(parsed.text_html[: length * 200]), length)
    return ""


# --- previews --------------------------------------------------------------------------------


def preview(text: str, length: int = 200) -> str:
    """A short single-line preview of a body: quoted lines and the signature skipped,
    whitespace collapsed, sanitized, at most `length` characters."""
    if not text or length <= 0:
        return ""
    kept: list[str] = []
    budget = length * 4
    end = min(len(text), length * 40)
    pos = 0
    # Line by line up to the budget: splitting all of `end` first cost more than the rest.
    # (Other line breaks than LF stay inside a line; the whitespace collapse below takes
    # them out like any other space.)
    while pos < end and budget > 0:
        stop = text.find("\n", pos, end)
        if stop < 0:
            stop = end
        line = text[pos:stop]
        pos = stop + 1
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if line.rstrip() == "--":  # "-- " signature separator
            break
        if stripped:
            kept.append(stripped)
            budget -= len(stripped)
    # str.split() collapses the same (Unicode) whitespace as `\s+`, several times faster.
    # Collapsing and sanitizing only what can show is cheaper: twice the length is enough
    # (escapes only lengthen text) unless spaces collapsed or the sanitizer dropped much.
    text = " ".join(kept)
    cut = length * 2
    out = sanitize_line(" ".join(text[:cut].split())).strip()
    if len(out) <= length and len(text) > cut:
        out = sanitize_line(" ".join(text.split())).strip()
    if len(out) > length:
        out = out[: length - 1].rstrip() + "…"
    return out
