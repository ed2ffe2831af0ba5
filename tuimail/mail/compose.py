"""Writing messages: new ones, replies, forwards. Pure: no I/O, no network, no clock except
the `date` default (pass `date` for reproducible output).

- `compose(...)` builds an RFC 5322/MIME `EmailMessage` (policy SMTP: CRLF line ends). Bcc
  is never written into the message: pass it to `envelope_recipients(msg, bcc)` for the SMTP
  envelope. Every header value is flattened to one line first, so a value taken from
  received mail (a subject with an encoded CR/LF) cannot inject a header.
- `message_bytes(msg)` is what goes to the outbox and to SMTP: CRLF everywhere.
- `reply(...)` / `forward(...)` prepare a `Draft` (the editable fields) from a parsed message.
- `parse_address_list(s)` reads what a user typed (`Ann <a@x>, b@y`) strictly and raises
  `UsageError` naming the bad address; used before anything is queued.
- `normalize_crlf(raw)` turns every bare CR or LF into CRLF (no `\\n.\\n` SMTP smuggling).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from datetime import datetime
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

import tuimail
from tuimail.errors import NotFoundError, UsageError
from tuimail.mail.addresses import _mailboxes, _norm_name, split_mailboxes, tokenize
from tuimail.mail.sanitize import safe_filename, sanitize_text
from tuimail.models import Address, Frozen

if TYPE_CHECKING:
    from tuimail.mail.parse import ParsedMessage

# `tuimail.mail.parse` and `tuimail.mail.render` (replies, forwards, error messages) and
# `mimetypes` (attachments) are imported where they are used: `tuimail send` loads this
# module for every message and needs none of them for a plain one.

__all__ = [
    "AttachmentSpec",
    "Draft",
    "compose",
    "envelope_recipients",
    "forward",
    "forward_subject",
    "make_message_id",
    "message_bytes",
    "normalize_crlf",
    "parse_address_list",
    "reply",
    "reply_subject",
]

MAX_REFERENCES = 20  # ids kept in References: the root plus the nearest ancestors
MAX_QUOTED_LINE = 78  # a reply quotes longer lines of the original wrapped...
QUOTE_WIDTH = 72  # ...to this many columns, quote marks included


_set = object.__setattr__  # sets a field of a Frozen value in its __init__


class AttachmentSpec(Frozen):
    __slots__ = ("content_type", "data", "filename", "inline")
    filename: str  # the name the recipient sees (path components are dropped)
    data: bytes
    content_type: str  # guessed from the file name when empty
    inline: bool

    def __init__(
        self, filename: str, data: bytes, content_type: str = "", inline: bool = False
    ) -> None:
        _set(self, "filename", filename)
        _set(self, "data", data)
        _set(self, "content_type", content_type)
        _set(self, "inline", inline)


class Draft(Frozen):
    """The editable fields of a message being written."""

    __slots__ = (
        "attachments", "bcc", "body", "cc", "in_reply_to", "references", "subject", "to",
    )  # fmt: skip
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    subject: str
    body: str
    in_reply_to: str
    references: tuple[str, ...]
    attachments: tuple[AttachmentSpec, ...]

    def __init__(
        self,
        to: tuple[Address, ...] = (),
        cc: tuple[Address, ...] = (),
        bcc: tuple[Address, ...] = (),
        subject: str = "",
        body: str = "",
        in_reply_to: str = "",
        references: tuple[str, ...] = (),
        attachments: tuple[AttachmentSpec, ...] = (),
    ) -> None:
        _set(self, "to", to)
        _set(self, "cc", cc)
        _set(self, "bcc", bcc)
        _set(self, "subject", subject)
        _set(self, "body", body)
        _set(self, "in_reply_to", in_reply_to)
        _set(self, "references", references)
        _set(self, "attachments", attachments)


# --- addresses ------------------------------------------------------------------------------

# Any non-ASCII character is atext (RFC 6532); `[^\x00-\x7f]` says so without a class
# spanning all of Unicode, which takes ~10 ms to compile on every `tuimail send`.
_ATEXT = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]|[^\x00-\x7f])"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_QUOTED_LOCAL = re.compile(r'"(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*"')
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_DOMAIN_LITERAL = re.compile(r"\[(?:[0-9.]+|IPv6:[0-9A-Fa-f:.]+)\]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _idna(domain: str) -> str | None:
    """The ASCII form of a domain (IDNA for non-ASCII labels), or None when invalid."""
    if domain.isascii():
        ascii_domain = domain
    else:
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
    labels = ascii_domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_domain


def _address_problem(addr: str) -> str | None:
    """Why `addr` cannot be used to send mail, or None when it is a valid addr-spec."""
    if _CONTROL.search(addr):
        return "it contains a control character"
    local, at, domain = addr.rpartition("@")
    if not at:
        return "it has no @domain part (write user@example.com)"
    if not local:
        return "nothing before the @"
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED_LOCAL.fullmatch(local)):
        if "@" in local and not local.startswith('"'):
            return "it has more than one @"
        return f"{local!r} is not a valid user name"
    if _DOMAIN_LITERAL.fullmatch(domain):
        return None
    if _idna(domain) is None:
        return f"{domain!r} is not a valid domain"
    if "." not in domain and domain.lower() != "localhost":
        return f"the domain {domain!r} is incomplete (like example.com?)"
    if len(local.encode()) > 64 or len(addr.encode()) > 254:
        return "it is too long"
    return None


def parse_address_list(s: str) -> tuple[Address, ...]:
    """Addresses typed by a user (`Ann <ann@example.org>, bob@example.com`), validated.

    Raises UsageError naming the first bad entry. An empty string gives ().
    """
    if _CONTROL.search(s):
        raise UsageError(f"{s!r} contains a line break or another control character.")
    out: list[Address] = []
    for chunk in split_mailboxes(tokenize(s)):
        text = s[chunk[0].start : chunk[-1].end].strip()
        boxes = [box for box in _mailboxes(chunk) if box[1]]
        if not boxes:
            raise UsageError(f"{text!r} is not an email address.")
        if len(boxes) > 1:
            raise UsageError(f"{text!r} holds more than one address: separate them with commas.")
        name, addr = boxes[0]
        problem = _address_problem(addr)
        if problem:
            raise UsageError(f"{text!r} is not a valid email address: {problem}.")
        out.append(Address(_norm_name(name), addr))
    return tuple(out)


def _check(a: Address) -> None:
    problem = _address_problem(a.addr)
    if problem:
        from tuimail.mail.render import format_address

        raise UsageError(f"{format_address(a)!r} is not a valid email address: {problem}.")


def _header_address(a: Address) -> HeaderAddress:
    _check(a)
    local, _, domain = a.addr.rpartition("@")
    if not _DOMAIN_LITERAL.fullmatch(domain):
        domain = _idna(domain) or domain
    try:
        return HeaderAddress(display_name=_one_line(a.name), addr_spec=f"{local}@{domain}")
    except (ValueError, IndexError, TypeError) as exc:  # the stdlib's own parser disagreed
        from tuimail.mail.render import format_address

        raise UsageError(f"{format_address(a)!r} is not a valid email address.") from exc


def envelope_recipients(msg: EmailMessage, bcc: Sequence[Address] = ()) -> tuple[str, ...]:
    """The SMTP envelope recipients: To, Cc and `bcc`, each address once (case-insensitive)."""
    found: list[str] = []
    for name in ("To", "Cc"):
        for header in msg.get_all(name, []):
            for addr in getattr(header, "addresses", ()):
                found.append(addr.addr_spec)
    for a in bcc:
        _check(a)
        found.append(a.addr)
    seen: set[str] = set()
    out: list[str] = []
    for addr in found:
        if addr and addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    return tuple(out)


# --- headers and bodies ---------------------------------------------------------------------

_LINE_BREAKS = re.compile("[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def _one_line(value: str) -> str:
    """A header value that cannot break out of its header: every control character (CR and
    LF included) becomes a space."""
    return " ".join(_LINE_BREAKS.sub(" ", value).split(" ")).strip()


_MSGID_OK = re.compile(r"<[!-;=?-~]+>")  # printable ASCII without < > or spaces inside


def make_message_id(domain: str) -> str:
    """A new unique Message-ID on the sender's domain: `<time.random@domain>`."""
    host = _idna(domain.strip().strip("[]")) if domain else None
    stamp = format(time.time_ns(), "x")
    return f"<{stamp}.{os.urandom(8).hex()}@{host or 'tuimail.invalid'}>"


def _text_cte(text: str) -> str:
    if text.isascii() and max(map(len, text.split("\n")), default=0) <= 998:
        return "7bit"
    return "quoted-printable"  # 7-bit safe on every server, unlike 8bit


def _normalize_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


_STRUCTURAL = frozenset(
    {
        "from", "sender", "to", "cc", "bcc", "resent-bcc", "date", "message-id", "subject",
        "in-reply-to", "references", "mime-version", "content-type",
        "content-transfer-encoding", "content-disposition", "user-agent",
    }
)  # fmt: skip
_FIELD_NAME = re.compile(r"[!-9;-~]+")


def compose(
    *,
    from_: Address,
    to: Sequence[Address],
    cc: Sequence[Address] = (),
    bcc: Sequence[Address] = (),
    subject: str,
    body: str,
    attachments: Sequence[AttachmentSpec] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    html: str | None = None,
    date: datetime | None = None,
    message_id: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """Build a message. `bcc` is only checked here (it is never written into the message):
    give it to `envelope_recipients`. Raises UsageError for an invalid address, Message-ID
    or extra header."""
    for a in bcc:
        _check(a)
    all_addresses = [from_, *to, *cc, *bcc]
    utf8 = any(not a.addr.rpartition("@")[0].isascii() for a in all_addresses)
    pol = email_policy.SMTPUTF8 if utf8 else email_policy.SMTP
    msg = EmailMessage(policy=pol)
    msg["From"] = _header_address(from_)
    if to:
        msg["To"] = [_header_address(a) for a in to]
    if cc:
        msg["Cc"] = [_header_address(a) for a in cc]
    msg["Subject"] = _one_line(subject)
    when = date if date is not None else datetime.now().astimezone()
    if when.tzinfo is None:
        when = when.astimezone()  # a naive date is local time
    msg["Date"] = format_datetime(when)
    if message_id is None:
        message_id = make_message_id(from_.domain())
    elif not _MSGID_OK.fullmatch(message_id):
        raise UsageError(f"{message_id!r} is not a valid Message-ID (like <id@example.com>).")
    msg["Message-ID"] = message_id
    parent = None
    if in_reply_to:
        from tuimail.mail.parse import message_ids

        parent = next((i for i in message_ids(in_reply_to) if _MSGID_OK.fullmatch(i)), None)
    if parent:
        msg["In-Reply-To"] = parent
    refs = [r for r in references if _MSGID_OK.fullmatch(r)]
    if refs:
        msg["References"] = " ".join(_trim_references(refs))
    msg["User-Agent"] = f"tuimail/{tuimail.__version__}"
    for name, value in extra_headers:
        if not _FIELD_NAME.fullmatch(name) or name.lower() in _STRUCTURAL:
            raise UsageError(f"{name!r} cannot be added as an extra header.")
        msg[name] = _one_line(value)

    text = _normalize_text(body)
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_text_cte(text))
    if html is not None:
        markup = _normalize_text(html)
        msg.add_alternative(markup, subtype="html", charset="utf-8", cte=_text_cte(markup))
    for spec in attachments:
        _attach(msg, spec)
    return msg


def _attach(msg: EmailMessage, spec: AttachmentSpec) -> None:
    import mimetypes

    filename = safe_filename(spec.filename)
    ctype = (spec.content_type or mimetypes.guess_type(filename)[0] or "").lower()
    maintype, _, subtype = ctype.partition("/")
    if not maintype or not subtype or not _FIELD_NAME.fullmatch(ctype):
        maintype, subtype = "application", "octet-stream"
    disposition = "inline" if spec.inline else "attachment"
    if maintype == "text" or (maintype, subtype) == ("message", "rfc822"):
        data = spec.data
        seven_bit = data.isascii() and b"\0" not in data
        if seven_bit and max(map(len, data.split(b"\n")), default=0) <= 998:
            cte = "7bit"  # RFC 2046: message/rfc822 should not be base64-encoded
        else:
            cte = "base64"
        msg.add_attachment(
            normalize_crlf(data) if cte == "7bit" else data,
            maintype=maintype,
            subtype=subtype,
            cte=cte,
            disposition=disposition,
            filename=filename,
        )
        return
    msg.add_attachment(
        spec.data, maintype=maintype, subtype=subtype, disposition=disposition, filename=filename
    )


def _trim_references(refs: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(refs))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return unique[:1] + unique[-(MAX_REFERENCES - 1) :]


_BARE_EOL = re.compile(rb"\r\n|\r|\n")


def normalize_crlf(raw: bytes) -> bytes:
    """Every line end becomes CRLF: bare LF and bare CR included (SMTP smuggling defence)."""
    return _BARE_EOL.sub(b"\r\n", raw)


def message_bytes(msg: EmailMessage) -> bytes:
    """The wire form of a composed message: CRLF line ends throughout."""
    return normalize_crlf(msg.as_bytes(policy=msg.policy))


# --- replies and forwards -------------------------------------------------------------------

_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|odp|vs)(?:\s*\[\d+\]|\^\d+)?\s*:\s*)+", re.I)
_FWD_PREFIX = re.compile(r"^\s*(?:(?:fwd?|wg|tr|rv|doorst)\s*:\s*)+", re.I)


def reply_subject(subject: str) -> str:
    """`Re: ` + the subject without its reply prefixes (`Re: Re: RE: x` -> `Re: x`)."""
    return "Re: " + _REPLY_PREFIX.sub("", _one_line(subject))


def forward_subject(subject: str) -> str:
    return "Fwd: " + _FWD_PREFIX.sub("", _one_line(subject))


def _same(a: Address, b: Address) -> bool:
    return a.addr.lower() == b.addr.lower()


def _without(addresses: Sequence[Address], remove: Sequence[Address]) -> list[Address]:
    out: list[Address] = []
    for a in addresses:
        if a.addr and not any(_same(a, r) for r in remove) and not any(_same(a, o) for o in out):
            out.append(a)
    return out


def _quote_source(original: ParsedMessage) -> str:
    if original.text_plain and original.text_plain.strip():
        return sanitize_text(original.text_plain)
    if original.text_html:
        from tuimail.mail.render import html_to_text

        text, links, _ = html_to_text(original.text_html)
        if links:
            text += "\n\nLinks:\n" + "\n".join(f"[{x.number}] {x.target}" for x in links)
        return text
    return ""


def _quote(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    if "-- " in lines:  # leave the signature out of the quote
        lines = lines[: lines.index("-- ")]
    while lines and not lines[-1].strip():
        lines.pop()
    quoted = [part for line in lines for part in _wrap_long(line)]
    return "\n".join("> " + line if line else ">" for line in quoted)


def _wrap_long(line: str) -> list[str]:
    """A line too long to quote as it is (a paragraph of flowed or HTML mail, or a sender
    who never breaks lines) wrapped at QUOTE_WIDTH, each piece under the line's own quote
    marks and indentation."""
    if len(line) <= MAX_QUOTED_LINE:
        return [line]
    import textwrap

    words = line.lstrip("> ")
    lead = line[: len(line) - len(words)]
    return textwrap.wrap(
        words,
        width=max(QUOTE_WIDTH - len(lead), 20),
        initial_indent=lead,
        subsequent_indent=lead,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [line]


def _attribution(original: ParsedMessage) -> str:
    env = original.envelope
    who = env.from_[0].name or env.from_[0].addr if env.from_ else "someone"
    who = _one_line(who)
    from tuimail.mail.render import format_date_local

    when = format_date_local(env.date)
    return f"On {when}, {who} wrote:" if when else f"{who} wrote:"


def reply(
    original: ParsedMessage,
    *,
    me: Sequence[Address],
    reply_all: bool,
    body_prefix: str = "",
) -> Draft:
    """A reply: To = Reply-To or From (the original To when replying to one's own message);
    reply-all adds the original To and Cc, minus all of `me`, without duplicates."""
    env = original.envelope
    targets = list(env.reply_to or env.from_)
    to = _without(targets, me)
    if not to:  # replying to a message I sent: it goes to the same people again
        to = _without(env.to, me)
    cc: list[Address] = []
    if reply_all:
        to = _without([*to, *env.to], me)
        cc = _without(env.cc, [*me, *to])
    parent = env.message_id
    if env.references:
        chain = [*env.references, parent]
    elif env.in_reply_to:
        chain = [env.in_reply_to, parent]
    else:
        chain = [parent]
    references = tuple(_trim_references([r for r in chain if r]))
    quoted = _quote(_quote_source(original))
    body = (body_prefix.rstrip("\n") + "\n\n" if body_prefix else "") + _attribution(original)
    body += "\n" + quoted + "\n" if quoted else "\n"
    return Draft(
        to=tuple(to),
        cc=tuple(cc),
        subject=reply_subject(env.subject),
        body=body,
        in_reply_to=parent,
        references=references,
    )


def forward(original: ParsedMessage, raw: bytes, *, inline: bool) -> Draft:
    """A forward: inline (the original headers and text in the body, its attachments
    attached again) or as one message/rfc822 attachment holding the original as it was."""
    from tuimail.mail.parse import part_bytes
    from tuimail.mail.render import format_addresses, format_date_local

    env = original.envelope
    subject = forward_subject(env.subject)
    if not inline:
        name = safe_filename(_one_line(env.subject)[:80], default="message") + ".eml"
        spec = AttachmentSpec(name, bytes(raw), "message/rfc822")
        return Draft(subject=subject, attachments=(spec,))
    lines = ["---------- Forwarded message ----------"]
    for label, value in (
        ("From", format_addresses(env.from_)),
        ("Date", format_date_local(env.date)),
        ("Subject", _one_line(env.subject)),
        ("To", format_addresses(env.to)),
        ("Cc", format_addresses(env.cc)),
    ):
        if value:
            lines.append(f"{label}: {_one_line(sanitize_text(value))}")
    body = "\n\n" + "\n".join(lines) + "\n\n" + _quote_source(original).rstrip("\n") + "\n"
    attachments = []
    for att in original.attachments:
        if att.inline:
            continue
        try:
            data = part_bytes(raw, att.part_id)
        except NotFoundError:  # the part vanished (truncated message): forward the rest
            continue
        attachments.append(AttachmentSpec(att.filename or "attachment", data, att.content_type))
    return Draft(subject=subject, body=body, attachments=tuple(attachments))
