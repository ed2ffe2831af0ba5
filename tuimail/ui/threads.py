"""Thread layout for the message list: order, tree drawings and collapsing (pure).

Messages are grouped by the store's thread id; inside a thread the tree follows
In-Reply-To, then the last known References entry. Malformed or hostile headers (cycles,
self-references, parents in other threads) can only flatten a thread, never loop.

Rows are the store's plain tuples (`ThreadRow`), read by index: at 100,000 of them, plain
tuples of strings and numbers leave the garbage collector's lists after one pass, so later
full collections (which stall every thread, the UI's too) do not walk them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from tuimail.store.types import ThreadRow

MAX_DEPTH = 12  # deeper replies are drawn at this depth: the subject must stay readable
# The fields of a ThreadRow (Final: mypy types an index by its literal value).
ID: Final = 0
THREAD: Final = 1
DATE: Final = 2
MSGID: Final = 3
IN_REPLY_TO: Final = 4
REFS: Final = 5


# A thread of several messages laid out: its rows (as given), ids and drawings in tree order.
# Tuples all the way down, of strings and numbers: the collector stops tracking them.
Tree = tuple[tuple[ThreadRow, ...], tuple[int, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Layout:
    ids: list[int]
    prefixes: list[str]
    thread_of: dict[int, int]  # message id -> thread key (for collapse/expand)
    sizes: dict[int, int]  # thread key -> number of messages
    trees: dict[int, Tree]  # thread key -> its tree, for threads of several messages


__all__ = ["Layout", "ThreadRow", "Tree", "layout", "prefix", "thread_key"]


def thread_key(row: ThreadRow) -> int:
    return row[THREAD] or -row[ID]


def _when(row: ThreadRow) -> tuple[float, int]:
    return row[DATE], row[ID]


def _parent(row: ThreadRow, by_msgid: dict[str, ThreadRow]) -> ThreadRow | None:
    for candidate in (row[IN_REPLY_TO], *reversed(row[REFS].split())):
        if candidate and candidate != row[MSGID]:
            parent = by_msgid.get(candidate)
            if parent is not None and parent[ID] != row[ID]:
                return parent
    return None


def _walk(rows: Sequence[ThreadRow]) -> list[tuple[ThreadRow, tuple[bool, ...]]]:
    """Depth-first order of one thread: (row, is-last flags of each level down to it)."""
    by_msgid: dict[str, ThreadRow] = {}
    for row in sorted(rows, key=_when):
        if row[MSGID]:
            by_msgid.setdefault(row[MSGID], row)
    children: dict[int, list[ThreadRow]] = {}
    roots: list[ThreadRow] = []
    for row in rows:
        parent = _parent(row, by_msgid)
        if parent is None:
            roots.append(row)
        else:
            children.setdefault(parent[ID], []).append(row)
    for kids in children.values():
        kids.sort(key=_when)
    roots.sort(key=_when)

    out: list[tuple[ThreadRow, tuple[bool, ...]]] = []
    seen: set[int] = set()

    def visit(start: ThreadRow, base: tuple[bool, ...]) -> None:
        stack: list[tuple[ThreadRow, tuple[bool, ...]]] = [(start, base)]
        while stack:
            row, lasts = stack.pop()
            if row[ID] in seen:
                continue
            seen.add(row[ID])
            out.append((row, lasts))
            kids = [k for k in children.get(row[ID], ()) if k[ID] not in seen]
            for i in range(len(kids) - 1, -1, -1):
                stack.append((kids[i], (*lasts, i == len(kids) - 1)))

    if roots:
        first, others = roots[0], roots[1:]
        # Extra roots (a broken chain) hang under the first message, as siblings.
        children.setdefault(first[ID], []).extend(others)
        children[first[ID]].sort(key=_when)
        visit(first, ())
    # Anything unreached sits in a cycle: attach it flat under the thread's start.
    for row in sorted(rows, key=_when):
        if row[ID] not in seen:
            if not out:
                visit(row, ())
            else:
                seen.add(row[ID])
                out.append((row, (True,)))
    return out


def prefix(lasts: tuple[bool, ...]) -> str:
    """The tree drawing before a subject: `├─>`, `└─>` with `│ ` guides for open levels."""
    if not lasts:
        return ""
    lasts = lasts[-MAX_DEPTH:]
    guides = "".join("  " if last else "│ " for last in lasts[:-1])
    return guides + ("└─>" if lasts[-1] else "├─>")


# A thread: its only row (most threads), or a list of its rows.
_Members = ThreadRow | list[ThreadRow]


def _rows_of(members: _Members) -> list[ThreadRow]:
    return members if isinstance(members, list) else [members]


def _placed_by_walk(
    order: Sequence[int], threads: dict[int, _Members], key_of: dict[int, int], descending: bool
) -> list[int]:
    """Thread keys in the order their newest message comes in the newest-first walk of
    `order`: a plain loop instead of a sort of 50,000 tuples, which runs in C for tens of
    milliseconds without ever letting the UI thread have the GIL."""
    placed: list[int] = []
    seen: set[int] = set()
    for mid in order if descending else reversed(order):
        key = key_of.get(mid)
        if key is not None and key not in seen:
            seen.add(key)
            placed.append(key)
    if len(placed) < len(threads):  # rows missing from `order`: after the others
        placed += sorted((k for k in threads if k not in seen), reverse=True)
    if not descending:
        placed.reverse()
    return placed


def _placed_by_sort(threads: dict[int, _Members], descending: bool) -> list[int]:
    def newest(key: int) -> tuple[float, int]:
        members = threads[key]
        if not isinstance(members, list):
            return members[DATE], members[ID]
        return max(r[DATE] for r in members), max(r[ID] for r in members)

    return sorted(threads, key=newest, reverse=descending)


def layout(
    rows: Iterable[ThreadRow],
    descending: bool = True,
    collapsed: frozenset[int] = frozenset(),
    order: Sequence[int] | None = None,
    trees: dict[int, Tree] | None = None,
) -> Layout:
    """Threads ordered by their newest message; messages in tree order inside each thread.

    A collapsed thread shows only its first message, with the thread's size in the prefix.
    `order`: the same messages' ids already sorted by date in the wanted direction (the
    store's list): threads are then placed by walking it, with no sort at all.
    `trees`: an earlier layout's, reused for every thread whose rows are the same (during
    a sync most are: only the new messages' threads are walked again).
    """
    # Written for 100,000 rows, most of them alone in their thread: no list, no call per
    # row on that path.
    threads: dict[int, _Members] = {}
    key_of: dict[int, int] = {}
    get = threads.get
    for row in rows:
        key = row[THREAD] or -row[ID]
        key_of[row[ID]] = key
        members = get(key)
        if members is None:
            threads[key] = row
        elif isinstance(members, list):
            members.append(row)
        else:
            threads[key] = [members, row]
    placed = (
        _placed_by_walk(order, threads, key_of, descending)
        if order is not None
        else _placed_by_sort(threads, descending)
    )
    ids: list[int] = []
    prefixes: list[str] = []
    sizes: dict[int, int] = {}
    new_trees: dict[int, Tree] = {}
    old_trees = trees or {}
    for key in placed:
        members = threads[key]
        if not isinstance(members, list):
            ids.append(members[ID])
            prefixes.append("")
            sizes[key] = 1
            continue
        sizes[key] = len(members)
        tree = old_trees.get(key)
        rows_now = tuple(members)
        if tree is None or tree[0] != rows_now:
            walked = _walk(members)
            drawn = tuple(prefix(lasts) for _, lasts in walked)
            tree = (rows_now, tuple(row[ID] for row, _ in walked), drawn)
        new_trees[key] = tree
        if key in collapsed:
            ids.append(tree[1][0])
            prefixes.append(f"[{len(members)}] ")
        else:
            ids += tree[1]
            prefixes += tree[2]
    return Layout(ids, prefixes, key_of, sizes, new_trees)
