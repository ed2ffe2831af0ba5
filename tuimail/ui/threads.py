"""Thread layout for the message list: order, tree drawings and collapsing (pure).

Messages are grouped by the store's thread id; inside a thread the tree follows
In-Reply-To, then the last known References entry. Malformed or hostile headers (cycles,
self-references, parents in other threads) can only flatten a thread, never loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tuimail.store.types import ThreadRow  # (id, thread_id, date, message_id, ...): a tuple

MAX_DEPTH = 12  # deeper replies are drawn at this depth: the subject must stay readable


@dataclass(frozen=True, slots=True)
class Layout:
    ids: list[int]
    prefixes: list[str]
    thread_of: dict[int, int]  # message id -> thread key (for collapse/expand)
    sizes: dict[int, int]  # thread key -> number of messages


__all__ = ["Layout", "ThreadRow", "layout", "prefix", "thread_key"]


def thread_key(row: ThreadRow) -> int:
    return row.thread_id if row.thread_id else -row.id


def _parent(row: ThreadRow, by_msgid: dict[str, ThreadRow]) -> ThreadRow | None:
    for candidate in (row.in_reply_to, *reversed(row.references)):
        if candidate and candidate != row.message_id:
            parent = by_msgid.get(candidate)
            if parent is not None and parent.id != row.id:
                return parent
    return None


def _walk(rows: Sequence[ThreadRow]) -> list[tuple[ThreadRow, tuple[bool, ...]]]:
    """Depth-first order of one thread: (row, is-last flags of each level down to it)."""
    by_msgid: dict[str, ThreadRow] = {}
    for row in sorted(rows, key=lambda r: (r.date, r.id)):
        if row.message_id:
            by_msgid.setdefault(row.message_id, row)
    children: dict[int, list[ThreadRow]] = {}
    roots: list[ThreadRow] = []
    for row in rows:
        parent = _parent(row, by_msgid)
        if parent is None:
            roots.append(row)
        else:
            children.setdefault(parent.id, []).append(row)
    for kids in children.values():
        kids.sort(key=lambda r: (r.date, r.id))
    roots.sort(key=lambda r: (r.date, r.id))

    out: list[tuple[ThreadRow, tuple[bool, ...]]] = []
    seen: set[int] = set()

    def visit(start: ThreadRow, base: tuple[bool, ...]) -> None:
        stack: list[tuple[ThreadRow, tuple[bool, ...]]] = [(start, base)]
        while stack:
            row, lasts = stack.pop()
            if row.id in seen:
                continue
            seen.add(row.id)
            out.append((row, lasts))
            kids = [k for k in children.get(row.id, ()) if k.id not in seen]
            for i in range(len(kids) - 1, -1, -1):
                stack.append((kids[i], (*lasts, i == len(kids) - 1)))

    if roots:
        first, others = roots[0], roots[1:]
        # Extra roots (a broken chain) hang under the first message, as siblings.
        children.setdefault(first.id, []).extend(others)
        children[first.id].sort(key=lambda r: (r.date, r.id))
        visit(first, ())
    # Anything unreached sits in a cycle: attach it flat under the thread's start.
    for row in sorted(rows, key=lambda r: (r.date, r.id)):
        if row.id not in seen:
            if not out:
                visit(row, ())
            else:
                seen.add(row.id)
                out.append((row, (True,)))
    return out


def prefix(lasts: tuple[bool, ...]) -> str:
    """The tree drawing before a subject: `├─>`, `└─>` with `│ ` guides for open levels."""
    if not lasts:
        return ""
    lasts = lasts[-MAX_DEPTH:]
    guides = "".join("  " if last else "│ " for last in lasts[:-1])
    return guides + ("└─>" if lasts[-1] else "├─>")


def layout(
    rows: Iterable[ThreadRow], descending: bool = True, collapsed: frozenset[int] = frozenset()
) -> Layout:
    """Threads ordered by their newest message; messages in tree order inside each thread.

    A collapsed thread shows only its first message, with the thread's size in the prefix.
    """
    # Written for 100,000 rows (most threads have one message): no per-row function calls
    # on the common path, one sort of the threads.
    groups: dict[int, list[ThreadRow]] = {}
    get = groups.get
    for row in rows:
        key = row.thread_id or -row.id
        members = get(key)
        if members is None:
            groups[key] = [row]
        else:
            members.append(row)

    def newest(item: tuple[int, list[ThreadRow]]) -> tuple[float, int]:
        members = item[1]
        if len(members) == 1:
            return members[0].date, members[0].id
        return max(r.date for r in members), max(r.id for r in members)

    order = sorted(groups.items(), key=newest, reverse=descending)
    ids: list[int] = []
    prefixes: list[str] = []
    thread_of: dict[int, int] = {}
    sizes: dict[int, int] = {}
    for key, members in order:
        sizes[key] = len(members)
        if len(members) == 1:
            mid = members[0].id
            ids.append(mid)
            prefixes.append("")
            thread_of[mid] = key
            continue
        walked = _walk(members)
        if key in collapsed:
            ids.append(walked[0][0].id)
            prefixes.append(f"[{len(members)}] ")
            for row, _ in walked:
                thread_of[row.id] = key
            continue
        for row, lasts in walked:
            ids.append(row.id)
            prefixes.append(prefix(lasts))
            thread_of[row.id] = key
    return Layout(ids, prefixes, thread_of, sizes)
