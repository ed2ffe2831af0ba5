"""A message as the viewer shows it: header block, body, links and attachments as `Text`.

Every value from the message is sanitized here and put into `Text` literally; styles are
passed in (from the viewer's component classes) so themes decide the colours.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.style import Style
from rich.text import Text

from tuimail.mail.parse import ParsedMessage, parse_message, part_bytes
from tuimail.mail.phishing import KnownCorrespondents, Sign, assess
from tuimail.mail.render import Link, RenderedMessage, render_message
from tuimail.mail.sanitize import safe_filename, sanitize_line, sanitize_text
from tuimail.models import Address, Attachment
from tuimail.ui.format import format_size

# Shown by default; `h` shows every header.
SHORT_HEADERS = ("From", "Reply-To", "To", "Cc", "Date", "Subject")


@dataclass(slots=True)
class Reading:
    """Everything the viewer needs about one message."""

    parsed: ParsedMessage  # raw (unsanitized) strings
    rendered: RenderedMessage  # sanitized body, links with real targets
    signs: tuple[Sign, ...] = ()  # phishing signs, most severe first
    raw: bytes = b""

    @property
    def body(self) -> str:
        return self.rendered.body

    @property
    def links(self) -> tuple[Link, ...]:
        return self.rendered.links


class StoreCorrespondents:
    """`KnownCorrespondents` from the store: who the user has exchanged mail with.

    `seen` answers "seen this address?" (`Store.address_seen`); `people` lists the known
    (address, name) pairs (`Store.correspondents`), read once, on the first sign that
    needs names or domains.
    """

    def __init__(
        self, seen: Callable[[str], bool], people: Callable[[], Sequence[tuple[str, str]]]
    ) -> None:
        self._seen = seen
        self._people = people
        self._names: dict[str, set[str]] | None = None
        self._domains: set[str] | None = None

    def is_known(self, addr: str) -> bool:
        return self._seen(addr)

    def _load(self) -> None:
        names: dict[str, set[str]] = {}
        domains: set[str] = set()
        for addr, name in self._people():
            if name:
                names.setdefault(name, set()).add(addr)
            if "@" in addr:
                domains.add(addr.rpartition("@")[2].lower())
        self._names, self._domains = names, domains

    def names(self) -> Mapping[str, set[str]]:
        if self._names is None:
            self._load()
        assert self._names is not None
        return self._names

    def domains(self) -> set[str]:
        if self._domains is None:
            self._load()
        assert self._domains is not None
        return self._domains


_PLAIN = Style()


@dataclass(frozen=True, slots=True)
class Styles:
    label: Style = _PLAIN
    quote: Style = _PLAIN
    sign: Style = _PLAIN
    link: Style = _PLAIN
    dim: Style = _PLAIN


def load_reading(
    raw: bytes,
    correspondents: KnownCorrespondents | None = None,
    trusted_authserv_id: str = "",
    my_domains: Sequence[str] = (),
    prefer: str = "plain",
) -> Reading:
    """Parse, render and assess `raw` (never raises on hostile input). `prefer` is "plain"
    or "html": which alternative to show when a message has both."""
    parsed = parse_message(raw)
    rendered = render_message(parsed, prefer=prefer)
    signs: tuple[Sign, ...] = ()
    if correspondents is not None:
        signs = assess(
            parsed,
            # Only an HTML rendering saw every link; otherwise let assess scan both parts
            # (a deceptive link in the HTML alternative counts even when plain is shown).
            rendered_links=rendered.links if rendered.source == "html" else None,
            known_correspondents=correspondents,
            trusted_authserv_id=trusted_authserv_id,
            my_domains=my_domains,
        )
    return Reading(parsed=parsed, rendered=rendered, signs=signs, raw=raw)


def address_text(addresses: Sequence[Address], styles: Styles) -> Text:
    """`Name <addr>` for each address: the real address is always visible."""
    out = Text(end="")
    for i, address in enumerate(addresses):
        if i:
            out.append(", ")
        if address.name:
            out.append(sanitize_line(address.name))
            out.append(" <")
            out.append(sanitize_line(address.addr), style=styles.link)
            out.append(">")
        else:
            out.append(sanitize_line(address.addr), style=styles.link)
    return out


def local_date(when: datetime | None) -> str:
    if when is None:
        return "(no date)"
    local = when.astimezone()
    offset = when.strftime("%z")
    stamp = local.strftime("%a, %d %b %Y %H:%M")
    # Show the sender's own offset when it differs from ours: it says where they were.
    if local.utcoffset() != when.utcoffset():
        stamp += f"  (sender's time {when.strftime('%H:%M')} {offset})"
    return stamp


def header_text(reading: Reading, styles: Styles, full: bool = False) -> Text:
    parsed = reading.parsed
    env = parsed.envelope
    out = Text(end="")

    def row(name: str, value: Text) -> None:
        out.append(f"{name}: ".rjust(10), style=styles.label)
        out.append_text(value)
        out.append("\n")

    if full:
        for name, value in parsed.headers:
            out.append(sanitize_line(name) + ": ", style=styles.label)
            out.append(sanitize_line(value))
            out.append("\n")
    else:
        row("From", address_text(env.from_, styles) if env.from_ else Text("(unknown sender)"))
        if env.sender and env.sender != env.from_:
            row("Sender", address_text(env.sender, styles))
        if env.reply_to and env.reply_to != env.from_:
            row("Reply-To", address_text(env.reply_to, styles))
        if env.to:
            row("To", address_text(env.to, styles))
        if env.cc:
            row("Cc", address_text(env.cc, styles))
        row("Date", Text(local_date(env.date)))
        row("Subject", Text(sanitize_line(env.subject) or "(no subject)", style="bold"))
    for sign in reading.signs:
        if sign.severity == "info":
            out.append("  · ", style=styles.dim)
            out.append(sanitize_line(sign.reason), style=styles.dim)
        else:
            out.append("  ⚠ ", style=styles.sign)
            out.append(sanitize_line(sign.reason), style=styles.sign)
        out.append("\n")
    attachments = [a for a in parsed.attachments if not a.inline]
    if attachments:
        out.append("\n")
        for i, attachment in enumerate(attachments, 1):
            out.append(f"  [{i}] ", style=styles.label)
            out.append(attachment_line(attachment))
            out.append("\n")
    for warning in reading.rendered.warnings[:3]:
        out.append(" ! ", style=styles.dim)
        out.append(sanitize_line(warning), style=styles.dim)
        out.append("\n")
    out.rstrip()
    return out


def attachment_line(attachment: Attachment) -> Text:
    name = sanitize_line(attachment.filename) or "(unnamed)"
    text = Text(name, end="")
    text.append(f"  {sanitize_line(attachment.content_type)}, {format_size(attachment.size)}")
    return text


def body_text(reading: Reading, styles: Styles) -> Text:
    body = sanitize_text(reading.body).expandtabs(8)
    out = Text(end="", no_wrap=False)
    for line in body.split("\n"):
        stripped = line.lstrip()
        style = styles.quote if stripped.startswith(">") else None
        out.append(line, style=style)
        out.append("\n")
    # An HTML body already ends with its numbered "Links:" list (real targets).
    out.rstrip()
    return out


def raw_text(raw: bytes, limit: int = 2_000_000) -> Text:
    """The message source, decoded leniently and sanitized (escapes shown, not sent)."""
    data = raw[:limit].decode("utf-8", "replace")
    text = Text(sanitize_text(data).expandtabs(8), end="")
    if len(raw) > limit:
        text.append(f"\n… {len(raw) - limit:,} more bytes not shown")
    return text


def unique_path(directory: Path, declared: str) -> Path:
    """A new file in `directory` for an attachment named `declared`: a safe name (no path,
    no control or bidi characters, no leading dot) made unique with ` (n)`."""
    name = safe_filename(declared)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    candidate = directory / name
    n = 1
    while candidate.exists() or candidate.is_symlink():
        candidate = directory / (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
        n += 1
    return candidate


def save_attachment(raw: bytes, attachment: Attachment, directory: Path) -> Path:
    """Write the attachment into `directory` under a safe new name; never overwrites, never
    follows a path out of `directory`. Returns the path written."""
    directory = directory.expanduser().resolve()
    data = part_bytes(raw, attachment.part_id)
    path = unique_path(directory, attachment.filename)
    if path.resolve().parent != directory:
        raise ValueError(f"refusing to write outside {directory}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def default_save_dir() -> Path:
    downloads = Path.home() / "Downloads"
    return downloads if downloads.is_dir() else Path.home()
