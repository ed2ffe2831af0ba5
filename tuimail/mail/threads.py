"""Conversation threading: Jamie Zawinski's algorithm (https://www.jwz.org/doc/threading.html).

`thread(messages)` builds a forest from Message-ID / In-Reply-To / References (and, as JWZ
does, joins roots that share a base subject). It is defensive about what real mail holds:
missing parents become dummy nodes, duplicate Message-IDs are kept as separate messages, a
message referring to itself or a cycle of references never creates a loop, and every input
appears exactly once in the result.

`thread_key(...)` is the cheap alternative for the store: the root-most Message-ID a
message's own headers name, so rows can be grouped without running JWZ over a folder.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator, Sequence
from datetime import datetime

from tuimail.mail.parse import message_ids
from tuimail.models import Envelope, Frozen

__all__ = ["ThreadInput", "ThreadNode", "base_subject", "thread", "thread_key"]

# Ancestry walks stop here: a chain deeper than this is treated as a loop (refused link),
# which bounds the cost on hostile input at O(messages x MAX_DEPTH).
MAX_DEPTH = 5_000


# Not dataclasses: the store loads this module to index every message (`tuimail send`
# included), and dataclasses compile their methods at import, ~1 ms a class.
_set = object.__setattr__


class ThreadInput(Frozen):
    __slots__ = ("date", "in_reply_to", "key", "message_id", "references", "subject")
    key: Hashable  # the caller's id for the message (store row id, UID...)
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    date: datetime | None  # timezone-aware

    def __init__(
        self,
        key: Hashable,
        message_id: str = "",
        in_reply_to: str = "",
        references: tuple[str, ...] = (),
        subject: str = "",
        date: datetime | None = None,
    ) -> None:
        _set(self, "key", key)
        _set(self, "message_id", message_id)
        _set(self, "in_reply_to", in_reply_to)
        _set(self, "references", references)
        _set(self, "subject", subject)
        _set(self, "date", date)


class ThreadNode:
    """A message (or a dummy standing for a referenced message we do not have)."""

    __slots__ = ("children", "message", "message_id")
    __hash__ = None  # type: ignore[assignment]  # mutable: compared by value, not hashable

    def __init__(
        self,
        message: ThreadInput | None,
        message_id: str = "",
        children: list[ThreadNode] | None = None,
    ) -> None:
        self.message = message
        self.message_id = message_id
        self.children: list[ThreadNode] = [] if children is None else children

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ThreadNode) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.message, self.message_id, self.children) == (
            other.message,
            other.message_id,
            other.children,
        )

    def __repr__(self) -> str:
        return (
            f"ThreadNode(message={self.message!r}, message_id={self.message_id!r}, "
            f"children={self.children!r})"
        )

    @property
    def is_dummy(self) -> bool:
        return self.message is None

    def walk(self, depth: int = 0) -> Iterator[tuple[int, ThreadNode]]:
        """(depth, node) for this node and its descendants, depth-first, in order."""
        stack: list[tuple[int, ThreadNode]] = [(depth, self)]
        while stack:
            d, node = stack.pop()
            yield d, node
            stack.extend((d + 1, c) for c in reversed(node.children))

    def messages(self) -> Iterator[ThreadInput]:
        for _, node in self.walk():
            if node.message is not None:
                yield node.message

    def newest(self) -> float:
        """Timestamp of the newest dated message in this subtree (-inf when none)."""
        return max((_stamp(m) for m in self.messages()), default=float("-inf"))


def _stamp(m: ThreadInput) -> float:
    if m.date is None:
        return float("-inf")
    try:
        return m.date.timestamp()
    except (OverflowError, ValueError, OSError):
        return float("-inf")


_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|odp|vs)(?:\s*\[\d+\]|\^\d+)?\s*:\s*)+", re.I)


def base_subject(subject: str) -> tuple[str, bool]:
    """(subject without reply prefixes, casefolded and space-normalized; was it a reply)."""
    stripped = _REPLY_PREFIX.sub("", subject)
    return " ".join(stripped.split()).casefold(), len(stripped) != len(subject)


class _Container:
    __slots__ = ("children", "message", "message_id", "parent")

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.message: ThreadInput | None = None
        self.parent: _Container | None = None
        self.children: list[_Container] = []

    def has_ancestor(self, other: _Container) -> bool:
        """Is `other` this container or one of its ancestors? (True also when too deep.)"""
        node: _Container | None = self
        for _ in range(MAX_DEPTH):
            if node is None:
                return False
            if node is other:
                return True
            node = node.parent
        return True


def _link(parent: _Container, child: _Container) -> None:
    child.parent = parent
    parent.children.append(child)


def _unlink(child: _Container) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
        child.parent = None


def _parents(m: ThreadInput) -> list[str]:
    refs = [r for r in m.references if r]
    irt = m.in_reply_to
    if irt and (not refs or refs[-1] != irt):
        if irt in refs:
            refs.remove(irt)
        refs.append(irt)  # In-Reply-To names the direct parent
    return refs


def thread(
    messages: Sequence[ThreadInput],
    *,
    group_by_subject: bool = True,
    newest_first: bool = True,
) -> list[ThreadNode]:
    """JWZ threading. Roots are ordered by their newest message (newest first unless
    `newest_first=False`); children chronologically. Every input appears exactly once."""
    table: dict[str, _Container] = {}
    order: list[_Container] = []  # containers in creation order (deterministic output)

    def get(mid: str) -> _Container:
        c = table.get(mid)
        if c is None:
            c = table[mid] = _Container(mid)
            order.append(c)
        return c

    for n, m in enumerate(messages):
        mid = m.message_id
        container = table.get(mid) if mid else None
        if container is None or container.message is not None:
            # No id, or a duplicate id: the message gets a unique id of its own.
            if not mid or container is not None:
                mid = f"\0dup:{n}:{mid}"
            container = get(mid)
        container.message = m

        # Link the References chain parent -> child, never creating a loop and never
        # overriding a link already made.
        prev: _Container | None = None
        for ref in _parents(m):
            c = get(ref)
            if prev is not None and c.parent is None and c is not prev and not prev.has_ancestor(c):
                _link(prev, c)
            prev = c
        # This message's parent is the last reference: definitive, replaces a guess.
        if prev is not None and container.parent is not prev and not prev.has_ancestor(container):
            _unlink(container)
            _link(prev, container)

    roots = [c for c in order if c.parent is None]
    roots = _prune(roots)
    if group_by_subject:
        roots = _group_by_subject(roots)
    nodes = [_to_node(c) for c in roots]
    nodes.sort(key=lambda node: node.newest(), reverse=newest_first)
    return nodes


def _prune(containers: list[_Container]) -> list[_Container]:
    """Drop empty leaf containers; splice out empty containers with one child (or any
    non-root empty container), promoting their children. Iterative (no recursion)."""
    # Post-order over the whole forest, children before parents.
    post: list[_Container] = []
    stack = [(c, False) for c in reversed(containers)]
    while stack:
        c, done = stack.pop()
        if done:
            post.append(c)
            continue
        stack.append((c, True))
        stack.extend((child, False) for child in reversed(c.children))
    root_set = set(map(id, containers))
    for c in post:
        if c.message is not None:
            continue
        is_root = id(c) in root_set
        if not c.children:
            if c.parent is not None:
                c.parent.children.remove(c)
                c.parent = None
            continue
        if is_root and len(c.children) > 1:
            continue  # a dummy root holding several replies to a missing message
        if c.parent is not None:
            parent = c.parent
            i = parent.children.index(c)
            for child in c.children:
                child.parent = parent
            parent.children[i : i + 1] = c.children
            c.children = []
            c.parent = None
    out: list[_Container] = []
    for c in containers:
        if c.message is None and not c.children:
            continue
        if c.message is None and len(c.children) == 1:
            child = c.children[0]
            child.parent = None
            c.children = []
            out.append(child)
            continue
        out.append(c)
    return out


def _root_subject(c: _Container) -> tuple[str, bool]:
    m = c.message if c.message is not None else (c.children[0].message if c.children else None)
    if m is None:
        return "", False
    return base_subject(m.subject)


def _group_by_subject(roots: list[_Container]) -> list[_Container]:
    """JWZ step 5: roots with the same base subject are gathered into one thread."""
    table: dict[str, _Container] = {}
    for c in roots:
        subject, is_reply = _root_subject(c)
        if not subject:
            continue
        old = table.get(subject)
        if old is None:
            table[subject] = c
            continue
        old_reply = _root_subject(old)[1]
        # Prefer a dummy, then a non-reply, as the thread's representative.
        if (c.message is None and old.message is not None) or (
            c.message is not None and old.message is not None and old_reply and not is_reply
        ):
            table[subject] = c
    out: list[_Container] = []
    for c in roots:
        subject, is_reply = _root_subject(c)
        rep = table.get(subject) if subject else None
        if rep is None or rep is c:
            out.append(c)
            continue
        if rep.message is None and c.message is None:
            for child in c.children:
                child.parent = rep
            rep.children.extend(c.children)
            c.children = []
        elif rep.message is None:
            _link(rep, c)
        elif c.message is None:
            # `rep` is a message and `c` a dummy: cannot happen (dummies are preferred).
            _link(c, rep)  # pragma: no cover
        elif _root_subject(rep)[1] is False and is_reply:
            _link(rep, c)
        else:
            dummy = _Container(f"\0subject:{subject}")
            idx = out.index(rep) if rep in out else -1
            _link(dummy, rep)
            _link(dummy, c)
            table[subject] = dummy
            if idx >= 0:
                out[idx] = dummy
            else:  # pragma: no cover - the representative is always placed first
                out.append(dummy)
    return out


def _node(c: _Container) -> ThreadNode:
    if c.message is not None:
        return ThreadNode(c.message, c.message.message_id)
    return ThreadNode(None, "" if c.message_id.startswith("\0") else c.message_id)


def _to_node(root: _Container) -> ThreadNode:
    """Copy a container tree into ThreadNodes, children sorted oldest first."""
    top = _node(root)
    stack = [(root, top)]
    while stack:
        c, node = stack.pop()
        kids = [(child, _node(child)) for child in c.children]
        kids.sort(key=lambda pair: _oldest(pair[0]))
        node.children = [k for _, k in kids]
        stack.extend(kids)
    return top


def _oldest(c: _Container) -> float:
    if c.message is not None:
        return _stamp(c.message)
    # A dummy sorts by its earliest child.
    stamps = [_stamp(ch.message) for ch in c.children if ch.message is not None]
    return min(stamps, default=float("-inf"))


def thread_key(
    message_id: str | Envelope, in_reply_to: str = "", references: Sequence[str] | str = ()
) -> str:
    """The root-most Message-ID known from the headers alone: the first of References,
    else In-Reply-To, else the message's own id ("" when it has none).

    Accepts an `Envelope` as the only argument too (the store calls it that way).
    """
    if isinstance(message_id, Envelope):
        env = message_id
        message_id, in_reply_to, references = env.message_id, env.in_reply_to, env.references
    if isinstance(references, str):
        references = message_ids(references)
    for ref in references:
        if ref:
            return ref
    if in_reply_to:
        ids = message_ids(in_reply_to)
        return ids[0] if ids else in_reply_to
    return message_id
