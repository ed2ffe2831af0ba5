"""RFC 5322 address lists, parsed leniently and safely.

The structure (which text is the display name, which is the addr-spec) is decided on the
*raw* header, before any RFC 2047 decoding, so an encoded word can never smuggle in a `<`,
`,` or `@` that changes the address a reply would go to. Only display names are decoded.

The parser is linear in the input (no recursion: comments nest by counting), which the
stdlib's is not (`email.utils.getaddresses` recurses on nested comments, and in Python 3.11
mis-splits `a@b@c`). A fast path handles the common forms without tokenizing.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tuimail.mail.encoding import decode_words, flatten
from tuimail.models import Address, Frozen

_set = object.__setattr__  # sets a field of a Frozen value in its __init__

__all__ = ["Token", "parse_address_header", "split_mailboxes", "tokenize"]

_MAX_ADDRESSES = 10_000


class Token(Frozen):
    __slots__ = ("end", "kind", "space_before", "start", "text")
    kind: str  # "atom", "quoted", "comment", "special" (one of < > , : ;)
    text: str  # raw text (quoted strings with their quotes; a comment's inner text)
    space_before: bool  # whitespace or a comment separated it from the previous token
    start: int  # offsets of the token in the parsed value
    end: int

    def __init__(
        self, kind: str, text: str, space_before: bool, start: int = 0, end: int = 0
    ) -> None:
        _set(self, "kind", kind)
        _set(self, "text", text)
        _set(self, "space_before", space_before)
        _set(self, "start", start)
        _set(self, "end", end)


_TOKEN = re.compile(
    r'(?P<ws>[ \t\r\n]+)|(?P<quoted>"(?:[^"\\]|\\.)*(?:"|\\?\Z))|(?P<special>[<>,:;])'
    r'|(?P<lp>\()|(?P<atom>[^ \t\r\n"<>,:;()]+)|(?P<rp>\))',
    re.S,
)
_PAREN = re.compile(r"[()\\]")
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


def _skip_comment(value: str, pos: int) -> tuple[str, int]:
    """`value[pos]` is `(`: return the comment's inner text and the index after it."""
    depth = 1
    i = pos + 1
    while depth:
        m = _PAREN.search(value, i)
        if m is None:
            return value[pos + 1 :], len(value)  # unterminated: runs to the end
        ch = m.group()
        if ch == "\\":
            i = m.end() + 1
            continue
        depth += 1 if ch == "(" else -1
        i = m.end()
    return value[pos + 1 : i - 1], i


def tokenize(value: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    space = False
    n = len(value)
    while pos < n:
        m = _TOKEN.match(value, pos)
        if m is None:  # unreachable: every character matches some branch
            pos += 1
            continue
        kind = m.lastgroup
        if kind == "ws":
            space = True
            pos = m.end()
        elif kind == "lp":
            start = pos
            text, pos = _skip_comment(value, pos)
            tokens.append(Token("comment", text, space, start, pos))
            space = True
        elif kind == "rp":  # stray ')': ignore, acts as a separator
            space = True
            pos = m.end()
        else:
            assert kind is not None
            tokens.append(Token(kind, m.group(), space, pos, m.end()))
            space = False
            pos = m.end()
    return tokens


def _unquote(text: str) -> str:
    inner = text[1:-1] if len(text) >= 2 and text.endswith('"') else text[1:]
    return _QUOTED_PAIR.sub(r"\1", inner)


def _phrase(tokens: list[Token]) -> str:
    words = [
        _unquote(t.text) if t.kind == "quoted" else t.text
        for t in tokens
        if t.kind in ("atom", "quoted")
    ]
    text = " ".join(words)
    if "=?" in text:
        text = decode_words(text)
    return text


def _comment_name(tokens: list[Token]) -> str:
    comments = [t.text for t in tokens if t.kind == "comment"]
    if not comments:
        return ""
    text = _QUOTED_PAIR.sub(r"\1", comments[-1])
    return decode_words(text) if "=?" in text else text


_ADDR_DROP = re.compile("[\x00-\x1f\x7f]")


def _addr(tokens: list[Token]) -> str:
    """Concatenate addr-spec tokens (no spaces: obsolete `a . b @ c` is folded)."""
    text = "".join(t.text for t in tokens if t.kind in ("atom", "quoted", "special"))
    if ":" in text and text.startswith("@"):  # obsolete source route <@a,@b:user@host>
        text = text.rpartition(":")[2]
    return _ADDR_DROP.sub("", text)


def _norm_name(name: str) -> str:
    name = flatten(name)
    return " ".join(name.split()) if name else ""


def split_mailboxes(tokens: list[Token]) -> list[list[Token]]:
    """Split at top-level `,`; group syntax `name: a, b;` contributes its members only."""
    chunks: list[list[Token]] = []
    current: list[Token] = []
    in_angle = False
    for t in tokens:
        if t.kind == "special":
            if t.text == "<":
                in_angle = True
            elif t.text == ">":
                in_angle = False
            elif not in_angle and t.text in ",;":
                chunks.append(current)
                current = []
                continue
            elif not in_angle and t.text == ":":
                current = []  # what came before was a group's display name
                continue
        current.append(t)
    chunks.append(current)
    return [c for c in chunks if c]


def _mailboxes(chunk: list[Token]) -> list[tuple[str, str]]:
    """(name, addr) pairs from one comma-separated chunk."""
    out: list[tuple[str, str]] = []
    angle = next((i for i, t in enumerate(chunk) if t.kind == "special" and t.text == "<"), -1)
    if angle >= 0:
        close = next(
            (
                i
                for i in range(angle + 1, len(chunk))
                if chunk[i].kind == "special" and chunk[i].text == ">"
            ),
            len(chunk),
        )
        before = chunk[:angle]
        name = _phrase(before) or _comment_name(before + chunk[close + 1 :])
        out.append((name, _addr(chunk[angle + 1 : close])))
        rest = chunk[close + 1 :]
        if any(t.kind == "special" and t.text == "<" for t in rest):
            out.extend(_mailboxes(rest))  # `x <a@b> <c@d>`: a second mailbox, shown too
        return out
    # No angle brackets: an addr-spec, possibly several run together without commas.
    runs: list[list[Token]] = []
    for t in chunk:
        if t.kind == "comment":
            continue
        if runs and not t.space_before:
            runs[-1].append(t)
        elif runs and (t.text[:1] in "@." or runs[-1][-1].text[-1:] in "@."):
            runs[-1].append(t)  # obsolete CFWS around '@' and '.'
        else:
            runs.append([t])
    comment = _comment_name(chunk)
    with_at = [r for r in runs if any("@" in t.text for t in r if t.kind == "atom")]
    if len(with_at) > 1:
        return [("", _addr(r)) for r in with_at]
    if len(with_at) == 1:
        others = [r for r in runs if r is not with_at[0]]
        name = _phrase([t for r in others for t in r]) or comment
        return [(name, _addr(with_at[0]))]
    if len(runs) == 1 and all(t.kind == "atom" for t in runs[0]):
        return [(comment, _addr(runs[0]))]  # a local address: "root", "MAILER-DAEMON"
    return []


# One mailbox in a common form, then a comma or the end: `"Quoted, Name" <a@b>`,
# `Plain Name <a@b>`, `<a@b>`, `a@b`. Anything else (comments, groups, escapes, control
# characters, quoted words mixed with atoms...) goes to the full parser.
_ADDR_CHARS = r'[^<>"\s(),:;\\\x00-\x1f\x7f]+'
_FAST_MAILBOX = re.compile(
    r'[ \t]*(?:"([^"\\\x00-\x1f\x7f]*)"[ \t]*<(' + _ADDR_CHARS + r")>"
    r'|([^"<>(),:;\\\x00-\x1f\x7f]*?)[ \t]*<(' + _ADDR_CHARS + r")>"
    r"|(" + _ADDR_CHARS + r"))[ \t]*(?:,|\Z)"
)


def _fast(value: str) -> list[Address] | None:
    """The common forms without tokenizing; None when the full parser is needed."""
    out: list[Address] = []
    pos = 0
    size = len(value)
    while pos < size:
        m = _FAST_MAILBOX.match(value, pos)
        if m is None:
            if value[pos:].strip(" \t"):
                return None
            break
        quoted, addr1, plain, addr2, bare = m.groups()
        if bare is not None:
            out.append(Address("", bare))
        else:
            name = quoted if quoted is not None else plain
            if name and "=?" in name:
                name = decode_words(name)
            out.append(Address(_norm_name(name) if name else "", addr1 or addr2))
        pos = m.end()
    return out


@lru_cache(maxsize=8192)
def parse_address_header(value: str) -> tuple[Address, ...]:
    """Mailboxes of an address header (From, To, Cc, ...), raw value in, never raises.

    Names are RFC 2047-decoded and flattened (no NUL/CR/LF, single spaces); addresses are
    the raw addr-specs with control characters removed. Entries without an address are
    dropped. Cached: the same From/To values recur across a mailbox (results are immutable).
    """
    fast = _fast(value)
    if fast is not None:
        return tuple(fast[:_MAX_ADDRESSES])
    out: list[Address] = []
    for chunk in split_mailboxes(tokenize(value)):
        for name, addr in _mailboxes(chunk):
            if addr:
                out.append(Address(_norm_name(name), addr))
        if len(out) >= _MAX_ADDRESSES:
            break
    return tuple(out[:_MAX_ADDRESSES])
