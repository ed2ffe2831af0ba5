"""What the store keeps of a message, computed once from its bytes.

The only place the store calls `tuimail.mail`; a message that the parser chokes on is still
indexed (with what could be read) and carries a `warning`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from tuimail.models import Address, Envelope, Frozen

_set = object.__setattr__  # sets a field of a Frozen value in its __init__

# Text beyond this is not indexed: FTS keeps a copy of what it indexes, and the first
# 200 KB of a message's text are what anyone searches for.
MAX_BODY_TEXT = 200_000
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|wg|tr|antw)(\[\d+\])?\s*:\s*)+", re.I)


class Indexed(Frozen):
    __slots__ = ("body_text", "envelope", "has_attachments", "preview", "thread_key", "warning")
    envelope: Envelope
    thread_key: str
    body_text: str
    preview: str
    has_attachments: bool
    warning: str

    def __init__(
        self,
        envelope: Envelope,
        thread_key: str,
        body_text: str = "",
        preview: str = "",
        has_attachments: bool = False,
        warning: str = "",
    ) -> None:
        _set(self, "envelope", envelope)
        _set(self, "thread_key", thread_key)
        _set(self, "body_text", body_text)
        _set(self, "preview", preview)
        _set(self, "has_attachments", has_attachments)
        _set(self, "warning", warning)


def default_thread_key(env: Envelope) -> str:
    """The thread's root Message-ID as far as this message knows it."""
    if env.references:
        return env.references[0]
    return env.in_reply_to or env.message_id


def _load_thread_key() -> Callable[[Envelope], str]:
    # `tuimail.mail.threads` is optional: without it (or before it exists) messages group
    # by the root of their References, which is what most clients do anyway.
    try:
        module = importlib.import_module("tuimail.mail.threads")
    except ImportError:
        return default_thread_key
    func: Callable[[Envelope], str] = getattr(module, "thread_key", default_thread_key)
    return func


_thread_key_func: Callable[[Envelope], str] | None = None


def _thread_key(env: Envelope) -> str:
    global _thread_key_func
    if _thread_key_func is None:
        _thread_key_func = _load_thread_key()
    try:
        return str(_thread_key_func(env))
    except Exception:  # a thread key is a nicety: never fail indexing over it
        return default_thread_key(env)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def index_headers(block: bytes) -> Indexed:
    from tuimail.mail import parse

    try:
        summary = parse.header_summary(block)
    except Exception as exc:
        return Indexed(envelope=Envelope(), thread_key="", warning=_describe(exc))
    env = summary.envelope
    return Indexed(
        envelope=env, thread_key=_thread_key(env), has_attachments=summary.has_attachments
    )


# `[^<>]` keeps every pattern linear: an unclosed `<` can never make a match scan to the end
# of the text for each of a million `<` (hostile HTML would otherwise be quadratic).
_HIDDEN_START = re.compile(r"<(script|style)\b[^<>]*>", re.I)
_TAG = re.compile(r"<[/!?A-Za-z][^<>]*>")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", re.I)


def _drop_hidden(html: str) -> str:
    """Remove <script>/<style> blocks; an unclosed one hides the rest, as in a browser."""
    out: list[str] = []
    pos = 0
    lower = html.lower()
    while (start := _HIDDEN_START.search(html, pos)) is not None:
        out.append(html[pos : start.start()])
        end = lower.find("</" + start.group(1).lower(), start.end())
        if end < 0:
            return " ".join(out)
        close = html.find(">", end)
        pos = len(html) if close < 0 else close + 1
    out.append(html[pos:])
    return " ".join(out)


def html_words(html: str) -> str:
    """Rough text of an HTML body, only for the search index (never displayed)."""
    return _ENTITY.sub(" ", _TAG.sub(" ", _drop_hidden(html)))


def index_message(raw: bytes) -> Indexed:
    # Imported here so the store opens (and reads) even where parsing is not needed.
    from tuimail.mail import parse

    try:
        # Not `parse_message`: display headers and decoded attachments are not indexed.
        msg = parse.index_parts(raw, max_text=MAX_BODY_TEXT)
    except Exception as exc:  # the parser promises not to raise; never lose mail if it does
        fallback = index_headers(raw[:65536])
        return Indexed(
            envelope=fallback.envelope,
            thread_key=fallback.thread_key,
            warning=_describe(exc),
        )
    if msg.text_plain is not None:
        text = msg.text_plain
    elif msg.text_html is not None:
        text = html_words(msg.text_html[: MAX_BODY_TEXT * 4])
    else:
        text = ""
    text = text[:MAX_BODY_TEXT]
    return Indexed(
        envelope=msg.envelope,
        thread_key=_thread_key(msg.envelope),
        body_text=text,
        preview=parse.preview(text),
        has_attachments=msg.has_attachments,
        warning="; ".join(msg.warnings)[:300],
    )


def index_item(raw: bytes, complete: bool) -> Indexed:
    """A whole message, or (complete=False) only its header block."""
    return index_message(raw) if complete else index_headers(raw)


def sort_subject(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject).strip().casefold()


def sort_from(addrs: tuple[Address, ...]) -> str:
    if not addrs:
        return ""
    return (addrs[0].name or addrs[0].addr).strip().casefold()


def address_text(addrs: tuple[Address, ...]) -> str:
    """How addresses are put into the FTS index: names and addr-specs."""
    return " ".join([a.name + " " + a.addr for a in addrs])
