"""Turning a parsed message into safe text for the viewer (and `tuimail read`).

Nothing here touches the network: images become `[image: alt]`, links become numbered
markers `[1]` with their real targets listed at the end, and every string in the result has
been through `tuimail.mail.sanitize` (after html2text, which decodes `&#27;` to a raw ESC).

HTML goes through html2text when it is small and shallow enough to convert quickly
(`HTML2TEXT_LIMIT` after removing scripts and styles, list/quote nesting up to
`MAX_LIST_DEPTH`); otherwise, or when html2text fails (e.g. RecursionError), a linear
tag-stripping converter is used and a warning says so. Input beyond `HTML_LIMIT` is cut.
Rendering a large HTML message can take a few hundred ms: call it off the UI thread.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from urllib.parse import urlsplit

from tuimail.mail.htmltext import strip_invisible, strip_tags
from tuimail.mail.parse import ParsedMessage
from tuimail.mail.sanitize import sanitize_line, sanitize_text
from tuimail.models import Address, Attachment

__all__ = [
    "HTML2TEXT_LIMIT",
    "HTML2TEXT_MAX_MARKUP",
    "HTML_LIMIT",
    "MAX_LINKS",
    "TEXT_LIMIT",
    "Link",
    "RenderedAttachment",
    "RenderedMessage",
    "format_address",
    "format_addresses",
    "format_date_local",
    "format_size",
    "html_to_text",
    "render_message",
]

HTML_LIMIT = 2 * 1024 * 1024  # characters of HTML read at all
TEXT_LIMIT = 2 * 1024 * 1024  # characters of a plain-text body shown
MAX_LINKS = 500  # links numbered in one message; further anchors keep only their text
# html2text (over html.parser) is slow and superlinear on hostile markup: it only gets
# input it converts in well under a second; anything bigger or odder uses strip_tags.
HTML2TEXT_LIMIT = 256 * 1024  # characters (it runs ~1 MB/s here on ordinary HTML)
HTML2TEXT_MAX_MARKUP = 6000  # '<' and '&' each: tag and entity handling is what blows up
MAX_LIST_DEPTH = 30  # html2text output grows quadratically with list nesting
MAX_ADDRESSES_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Link:
    number: int
    text: str  # sanitized link text as shown in the message
    target: str  # sanitized real target (href)
    deceptive: bool = False  # the text names a different site than the target


@dataclass(frozen=True, slots=True)
class RenderedAttachment:
    name: str  # sanitized display name ("(unnamed image/png)" when the message gave none)
    content_type: str
    size: int
    part_id: str
    inline: bool
    filename: str  # the declared name, unsanitized (for safe_filename when saving)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    headers: tuple[tuple[str, str], ...]  # (label, sanitized value): From, Sender, To, ...
    subject: str
    body: str  # sanitized: no control characters but LF and TAB
    links: tuple[Link, ...]
    attachments: tuple[RenderedAttachment, ...]
    warnings: tuple[str, ...]
    source: str  # "plain", "html" or "" (no text part)


# --- addresses, dates, sizes -----------------------------------------------------------------

_NEEDS_QUOTES = re.compile(r'[@<>",;:()\[\]\\]')


def format_address(a: Address) -> str:
    """`Name <addr>` with the real address always visible. A name that could pass for an
    address (`"ceo@bank.example" <evil@evil.example>`) keeps its quotes."""
    name = sanitize_line(a.name).strip()
    addr = sanitize_line(a.addr)
    if not name or name == addr:
        return addr or "<>"
    if _NEEDS_QUOTES.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def format_addresses(addresses: Sequence[Address], limit: int = MAX_ADDRESSES_SHOWN) -> str:
    shown = ", ".join(format_address(a) for a in addresses[:limit])
    if len(addresses) > limit:
        shown += f", … and {len(addresses) - limit} more"
    return shown


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date_local(dt: datetime | None, tz: tzinfo | None = None) -> str:
    """`Mon, 15 Apr 2024 10:11` in the local time zone (or `tz`); locale-independent."""
    if dt is None:
        return ""
    try:
        local = dt.astimezone(tz)
    except (ValueError, OverflowError, OSError):  # out of range for the local zone
        local = dt
    return (
        f"{_DAYS[local.weekday()]}, {local.day} {_MONTH_NAMES[local.month - 1]} {local.year} "
        f"{local.hour:02d}:{local.minute:02d}"
    )


def format_size(size: int) -> str:
    """Human size: `512 B`, `1.5 KB`, `12 MB`."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - unreachable


# --- HTML ------------------------------------------------------------------------------------

_ANCHOR = re.compile(r"<a\b([^>]*)>|</a\s*>", re.I)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_IMG = re.compile(r"<img\b([^>]*)>", re.I | re.S)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_LIST_TAG = re.compile(r"<(/?)(?:ul|ol|dl|blockquote)\b", re.I)
_BLANK_RUN = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_DOMAIN_IN_TEXT = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[:/?#]|$)", re.I
)


def _attr(pattern: re.Pattern[str], attrs: str) -> str | None:
    m = pattern.search(attrs)
    if m is None:
        return None
    return html.unescape(next(g for g in m.groups() if g is not None)).strip()


def _image_text(m: re.Match[str]) -> str:
    alt = _attr(_ALT, m.group(1))
    alt = " ".join(alt.split()) if alt else ""
    return html.escape(f"[image: {alt}]" if alt else "[image]", quote=False)


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().rstrip(".")


def _deceptive(text: str, target: str) -> bool:
    """The link text shows a domain (`bank.example`) that is not the target's host."""
    m = _DOMAIN_IN_TEXT.search(text.strip())
    if m is None or not target.lower().startswith(("http:", "https:")):
        return False
    shown = m.group(1).lower().rstrip(".")
    host = _host(target)
    return not (host == shown or host.endswith("." + shown) or shown.endswith("." + host))


def _number_links(markup: str) -> tuple[str, list[Link]]:
    """Replace each <a href> by its content plus a ` [n]` marker; collect the targets."""
    links: list[Link] = []
    out: list[str] = []
    pos = 0
    open_start = -1  # where the current link's text starts in `markup`
    open_target: str | None = None

    def close(end: int) -> None:
        nonlocal open_target
        if open_target is None:
            return
        inner = markup[open_start : min(end, open_start + 2000)]  # link texts are short
        text = sanitize_line(" ".join(strip_tags(inner).split()))
        target = sanitize_line(open_target)
        number = len(links) + 1
        links.append(Link(number, text, target, _deceptive(text, target)))
        out.append(f" [{number}]")
        open_target = None

    for m in _ANCHOR.finditer(markup):
        out.append(markup[pos : m.start()])
        pos = m.end()
        if m.group(1) is None:  # </a>
            close(m.start())
            continue
        close(m.start())  # an <a> inside an unclosed <a>
        href = _attr(_HREF, m.group(1)) if len(links) < MAX_LINKS else None
        if href:
            open_target = href
            open_start = m.end()
    out.append(markup[pos:])
    close(len(markup))
    return "".join(out), links


def _list_depth(markup: str) -> int:
    depth = deepest = 0
    for m in _LIST_TAG.finditer(markup):
        depth = max(0, depth - 1) if m.group(1) else depth + 1
        deepest = max(deepest, depth)
    return deepest


def _html2text(markup: str, width: int | None) -> str:
    import html2text  # imported lazily: it costs ~20 ms and most CLI paths never need it

    conv = html2text.HTML2Text()
    conv.body_width = width or 0
    conv.unicode_snob = True
    conv.ignore_images = True  # already replaced by [image: alt]
    conv.ignore_links = True  # already numbered
    conv.ignore_tables = False
    conv.single_line_break = False
    conv.mark_code = False
    out: str = conv.handle(markup)
    return out


def html_to_text(markup: str, width: int | None = None) -> tuple[str, list[Link], list[str]]:
    """Sanitized text, numbered links and warnings for an HTML body."""
    warnings: list[str] = []
    if len(markup) > HTML_LIMIT:
        markup = markup[:HTML_LIMIT]
        warnings.append("HTML part larger than 2 MB: only its start is shown")
    markup = strip_invisible(markup)
    large = len(markup) > HTML2TEXT_LIMIT
    markup = _IMG.sub(_image_text, markup)
    markup, links = _number_links(markup)
    if len(links) >= MAX_LINKS:
        warnings.append(f"more than {MAX_LINKS} links: only the first {MAX_LINKS} are numbered")
    text: str | None = None
    if large or max(markup.count("<"), markup.count("&")) > HTML2TEXT_MAX_MARKUP:
        warnings.append("large HTML part shown in simplified form")
    elif _list_depth(markup) > MAX_LIST_DEPTH:
        warnings.append("deeply nested HTML shown in simplified form")
    else:
        try:
            text = _html2text(markup, width)
        except RecursionError:
            warnings.append("deeply nested HTML shown in simplified form")
        except Exception as exc:  # html2text on hostile input: fall back, never fail
            warnings.append(f"HTML could not be converted ({type(exc).__name__}): simplified form")
    if text is None:
        text = strip_tags(markup)
    text = sanitize_text(text)
    text = _BLANK_RUN.sub("\n\n", text).strip("\n")
    return text, links, warnings


# --- messages --------------------------------------------------------------------------------

_URL = re.compile(r"""\b(?:https?://|mailto:|www\.)[^\s<>"'()\[\]]+""", re.I)


def _plain_links(text: str) -> list[Link]:
    """URLs in a plain-text body, for the viewer's "open link" (the text is left as is)."""
    links: list[Link] = []
    if "://" not in text and "www." not in text and "mailto:" not in text:
        return links
    seen: set[str] = set()
    for m in _URL.finditer(text):
        if len(links) >= MAX_LINKS:
            break
        url = m.group().rstrip(".,;:!?")
        if url not in seen:
            seen.add(url)
            links.append(Link(len(links) + 1, url, url))
    return links


def _link_line(link: Link) -> str:
    line = f"[{link.number}] {link.target}"
    if link.deceptive:
        line += f"  (!) the link text shows {link.text}"
    return line


def _attachment(a: Attachment) -> RenderedAttachment:
    ctype = sanitize_line(a.content_type)
    name = sanitize_line(a.filename).strip() or f"(unnamed {ctype})"
    return RenderedAttachment(name, ctype, a.size, a.part_id, a.inline, a.filename)


def render_message(
    parsed: ParsedMessage, *, prefer: str = "plain", width: int | None = None
) -> RenderedMessage:
    """Display form of a message: sanitized headers, body text, links, attachments."""
    env = parsed.envelope
    warnings = list(parsed.warnings)
    plain = parsed.text_plain if parsed.text_plain and parsed.text_plain.strip() else None
    use_html = parsed.text_html is not None and (prefer == "html" or plain is None)
    links: list[Link]
    if use_html:
        assert parsed.text_html is not None
        body, links, html_warnings = html_to_text(parsed.text_html, width)
        warnings.extend(html_warnings)
        source = "html"
    elif plain is not None:
        if len(plain) > TEXT_LIMIT:
            plain = plain[:TEXT_LIMIT]
            warnings.append("text larger than 2 MB: only its start is shown")
        body = sanitize_text(plain).strip("\n")
        links = _plain_links(body)
        source = "plain"
    else:
        body, links, source = "", [], ""
    if links and source == "html":
        body += "\n\nLinks:\n" + "\n".join(_link_line(link) for link in links)

    headers: list[tuple[str, str]] = []
    if env.from_:
        headers.append(("From", format_addresses(env.from_)))
    if env.sender and env.sender != env.from_:
        headers.append(("Sender", format_addresses(env.sender)))
    if env.reply_to and env.reply_to != env.from_:
        headers.append(("Reply-To", format_addresses(env.reply_to)))
    for label, addrs in (("To", env.to), ("Cc", env.cc), ("Bcc", env.bcc)):
        if addrs:
            headers.append((label, format_addresses(addrs)))
    if env.date is not None:
        headers.append(("Date", format_date_local(env.date)))
    subject = sanitize_line(env.subject)
    headers.append(("Subject", subject))

    return RenderedMessage(
        headers=tuple(headers),
        subject=subject,
        body=body,
        links=tuple(links),
        attachments=tuple(_attachment(a) for a in parsed.attachments),
        warnings=tuple(sanitize_line(w) for w in dict.fromkeys(warnings)),
        source=source,
    )
