"""`mailto:` URLs (RFC 6068) turned into a draft, for `tuimail mailto:...` and links.

Only the fields a mail client should take from a link are used: to, cc, bcc, subject, body,
in-reply-to. Anything else, above all `attach=`-style fields that would attach local files,
is dropped and reported so the user can see what the link tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from tuimail.errors import UsageError
from tuimail.mail.compose import Draft, parse_address_list
from tuimail.mail.sanitize import sanitize_line, sanitize_text
from tuimail.models import Address

_ADDRESS_FIELDS = ("to", "cc", "bcc")
_TEXT_FIELDS = ("subject", "body", "in-reply-to")
MAX_URL = 64 * 1024


@dataclass(frozen=True)
class MailtoDraft:
    draft: Draft
    dropped: tuple[str, ...]  # names of ignored fields (sanitized), e.g. ("attach",)


def _decode(value: str) -> str:
    return unquote(value.replace("+", "%2B"), errors="replace")


def _addresses(values: list[str]) -> tuple[Address, ...]:
    text = ", ".join(v for v in values if v.strip())
    if not text:
        return ()
    try:
        return parse_address_list(text)
    except UsageError as exc:
        raise UsageError(f"The mailto: link has a bad address: {exc.message}") from None


def parse_mailto(url: str) -> MailtoDraft:
    """Parse a mailto: URL; a bad address is a UsageError that names it."""
    if not url[:7].lower() == "mailto:":
        raise UsageError(f"{sanitize_line(url[:80])!r} is not a mailto: link.")
    if len(url) > MAX_URL:
        raise UsageError("The mailto: link is too long.")
    path, _, query = url[7:].partition("?")
    fields: dict[str, list[str]] = {"to": [_decode(path)] if path else []}
    dropped: list[str] = []
    for pair in query.split("&") if query else []:
        raw_name, _, raw_value = pair.partition("=")
        name = _decode(raw_name).strip().casefold()
        if name in _ADDRESS_FIELDS or name in _TEXT_FIELDS:
            fields.setdefault(name, []).append(_decode(raw_value))
        elif name:
            dropped.append(sanitize_line(name)[:40])
    body = "\n".join(fields.get("body", []))
    draft = Draft(
        to=_addresses(fields.get("to", [])),
        cc=_addresses(fields.get("cc", [])),
        bcc=_addresses(fields.get("bcc", [])),
        # A subject is one line: encoded CR/LF must never become a header break.
        subject=sanitize_line(" ".join(fields.get("subject", []))),
        body=sanitize_text(body),
        in_reply_to=sanitize_line((fields.get("in-reply-to") or [""])[0]).strip(),
    )
    return MailtoDraft(draft, tuple(dropped))
