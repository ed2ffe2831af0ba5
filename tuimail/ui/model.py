"""What the screens show and do, over the store: views, folder tree, actions with undo.

No Textual here, so the logic is tested without a terminal. Everything runs on the thread
that owns the `Store` (the UI thread); each call is one short local transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tuimail.errors import NotFoundError, UnsupportedError
from tuimail.models import Flags, FolderRole, MessageSummary
from tuimail.store.types import FolderRow, SortKey, ThreadRow

if TYPE_CHECKING:
    from tuimail.store.store import Store

ViewKind = Literal["folder", "unified", "search"]


@dataclass(frozen=True, slots=True)
class View:
    """What the message list shows: a folder, all inboxes, or search results."""

    kind: ViewKind
    title: str
    folder_id: int = 0
    folder_ids: tuple[int, ...] = ()
    query: str = ""
    role: FolderRole = FolderRole.NONE

    @property
    def is_sent(self) -> bool:
        """Sent and Drafts list who mail went *to*."""
        return self.role in (FolderRole.SENT, FolderRole.DRAFTS)


UNIFIED_TITLE = "All inboxes"


# ------------------------------------------------------------------ folder tree


@dataclass(slots=True)
class FolderNode:
    """One line of the folder tree; `folder` is None for a path segment with no folder."""

    label: str  # last path segment (raw, unsanitized)
    path: str
    folder: FolderRow | None = None
    children: list[FolderNode] = field(default_factory=list)

    @property
    def unread(self) -> int:
        return self.folder.unread if self.folder else 0


@dataclass(slots=True)
class AccountNode:
    name: str
    folders: list[FolderNode]

    @property
    def unread(self) -> int:
        def walk(nodes: list[FolderNode]) -> int:
            return sum(n.unread + walk(n.children) for n in nodes)

        return walk(self.folders)


def build_tree(rows: Sequence[FolderRow]) -> list[AccountNode]:
    """Accounts -> nested folders (split on each folder's delimiter), roles first.

    `rows` come from `store.folders()`, already in role-then-name order; that order is kept
    at every level. A folder whose parent path does not exist as a folder gets a plain
    group node, so `Lists/python-dev` shows under `Lists` either way.
    """
    accounts: dict[str, AccountNode] = {}
    for row in rows:
        account = accounts.setdefault(row.account, AccountNode(row.account, []))
        parts = row.name.split(row.delimiter) if row.delimiter else [row.name]
        if row.role is not FolderRole.NONE:
            parts = [row.name]  # role folders stay at the top level, whatever their path
        level = account.folders
        path = ""
        for depth, part in enumerate(parts):
            path = part if not path else path + (row.delimiter or "/") + part
            last = depth == len(parts) - 1
            node = next(
                (n for n in level if n.label == part and (n.folder is None or not last)), None
            )
            if node is None:
                node = FolderNode(part, path)
                level.append(node)
            if last:
                node.folder = row
            level = node.children
    return list(accounts.values())


def inbox_ids(rows: Sequence[FolderRow]) -> tuple[int, ...]:
    return tuple(r.id for r in rows if r.role is FolderRole.INBOX)


# ------------------------------------------------------------------ loading ids


def load_ids(
    store: Store,
    view: View,
    sort: SortKey = SortKey.DATE,
    descending: bool = True,
    unread_only: bool = False,
    flagged_only: bool = False,
    limit: int | None = None,
) -> list[int]:
    """The view's ids in this order (a folder or the unified inbox: only the first `limit`
    if given; a search always gives all its hits)."""
    if view.kind == "folder":
        return store.list_ids(view.folder_id, sort, descending, unread_only, flagged_only, limit)
    if view.kind == "unified":
        # One query across the inboxes, in any sort order (not a merge of per-folder lists).
        return store.list_ids(view.folder_ids, sort, descending, unread_only, flagged_only, limit)
    ids = store.search(view.query)
    if not descending:
        ids.reverse()
    return ids


def load_thread_rows(
    store: Store,
    view: View,
    ids: Sequence[int],
    known: Mapping[int, ThreadRow] | None = None,
) -> list[ThreadRow]:
    """Thread data for exactly `ids` (the view's list, maybe filtered), in that order: read
    per folder with `thread_rows`, a few columns per message, never whole summaries.

    `known`: rows read before (the last refresh). When most of `ids` are known, only the
    others are read: a sync's refresh then costs what arrived, not the folder's size.
    """
    if known:
        missing = [mid for mid in ids if mid not in known]
        if len(missing) <= len(ids) // 2:
            fresh = {row[0]: row for row in store.thread_rows_of(missing)}
            fresh.update(known)
            return [fresh[mid] for mid in ids if mid in fresh]
    if view.kind == "folder":
        rows = store.thread_rows(view.folder_id)
    elif view.kind == "unified":
        rows = store.thread_rows(view.folder_ids)
    else:  # search results span any folders: read them by id
        rows = store.thread_rows_of(ids)
    by_id = {row[0]: row for row in rows}
    return [by_id[mid] for mid in ids if mid in by_id]


# ------------------------------------------------------------------ actions and undo


@dataclass(frozen=True, slots=True)
class Change:
    """What an action did, enough to describe it and to undo it."""

    description: str
    ids: tuple[int, ...]
    removed: bool  # the messages left the current view (moved, deleted)
    undo: Callable[[], str] | None  # returns a description of what undoing did


class Actions:
    """The list's actions on the store, each undoable once (the last one)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.last: Change | None = None

    def _summaries(self, ids: Sequence[int]) -> list[MessageSummary]:
        return self.store.summaries(ids)

    def _record(self, change: Change) -> Change:
        self.last = change
        return change

    def set_flag(self, ids: Sequence[int], flag: str, on: bool) -> Change:
        """Add or remove one flag; undo restores each message's previous state."""
        before = {s.id: getattr(s.flags, flag) for s in self._summaries(ids)}
        if on:
            self.store.set_flags(ids, add=(flag,))
        else:
            self.store.set_flags(ids, remove=(flag,))
        changed = [mid for mid, was in before.items() if was != on]

        def undo() -> str:
            if on:
                self.store.set_flags(changed, remove=(flag,))
            else:
                self.store.set_flags(changed, add=(flag,))
            return f"Restored {_count(len(changed))}"

        word = {"seen": ("read", "unread"), "flagged": ("flagged", "unflagged")}.get(
            flag, (flag, "not " + flag)
        )
        return self._record(
            Change(f"Marked {_count(len(ids))} {word[0 if on else 1]}", tuple(ids), False, undo)
        )

    def toggle_flag(self, ids: Sequence[int], flag: str) -> Change:
        """Set `flag` on all of them unless all already have it (then clear it)."""
        rows = self._summaries(ids)
        on = not all(getattr(s.flags, flag) for s in rows)
        return self.set_flag(ids, flag, on)

    def _move_by_account(
        self, ids: Sequence[int], dest_for: Callable[[str], FolderRow], verb: str
    ) -> Change:
        rows = self._summaries(ids)
        origins: dict[int, list[int]] = {}
        groups: dict[int, list[int]] = {}
        for s in rows:
            dest = dest_for(s.account)
            folder = self.store.folder(s.account, s.folder)
            if folder is None or folder.id == dest.id:
                continue
            groups.setdefault(dest.id, []).append(s.id)
            origins.setdefault(folder.id, []).append(s.id)
        for dest_id, group in groups.items():
            self.store.move(group, dest_id)
        moved = tuple(mid for group in groups.values() for mid in group)

        def undo() -> str:
            for origin_id, group in origins.items():
                self.store.move(group, origin_id)
            return f"Moved {_count(len(moved))} back"

        return self._record(Change(f"{verb} {_count(len(moved))}", moved, True, undo))

    def move(self, ids: Sequence[int], dest: FolderRow) -> Change:
        def dest_for(account: str) -> FolderRow:
            if account != dest.account:
                raise UnsupportedError(
                    f"Messages of account {account!r} cannot be moved to a folder of "
                    f"{dest.account!r}; copy them instead.",
                    "Cannot move across accounts",
                )
            return dest

        return self._move_by_account(ids, dest_for, f"Moved to {dest.name}:")

    def copy(self, ids: Sequence[int], dest: FolderRow) -> Change:
        new_ids = self.store.copy(ids, dest.id)
        # Copies are new messages; undoing would delete them, which the user should see.
        return self._record(
            Change(f"Copied {_count(len(new_ids))} to {dest.name}", tuple(ids), False, None)
        )

    def _role_folder(self, role: FolderRole, action: str) -> Callable[[str], FolderRow]:
        def find(account: str) -> FolderRow:
            row = self.store.folder_by_role(account, role)
            if row is None:
                raise NotFoundError(
                    f"Account {account!r} has no {role.value} folder, so messages cannot be "
                    f"{action}. Mark a folder as {role.value} on the server, or move them "
                    "with m.",
                    f"No {role.value} folder",
                )
            return row

        return find

    def archive(self, ids: Sequence[int]) -> Change:
        return self._move_by_account(
            ids, self._role_folder(FolderRole.ARCHIVE, "archived"), "Archived"
        )

    def _delete_plan(self, ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """(to Trash, for good): a message already in its account's Trash, or in an account
        without one, is deleted for good (flagged \\Deleted and expunged)."""
        in_trash: list[int] = []
        to_trash: list[int] = []
        trash_of: dict[str, FolderRow | None] = {}
        for s in self._summaries(ids):
            if s.account not in trash_of:
                trash_of[s.account] = self.store.folder_by_role(s.account, FolderRole.TRASH)
            trash = trash_of[s.account]
            (in_trash if trash is None or trash.name == s.folder else to_trash).append(s.id)
        return to_trash, in_trash

    def for_good(self, ids: Sequence[int]) -> list[int]:
        """Which of `ids` `delete` would remove for good (not undoable): ask first."""
        return self._delete_plan(ids)[1]

    def delete(self, ids: Sequence[int]) -> Change:
        """To the account's Trash (undoable); in Trash itself, deleted for good."""
        to_trash, in_trash = self._delete_plan(ids)
        change: Change | None = None
        if to_trash:
            change = self._move_by_account(
                to_trash, self._role_folder(FolderRole.TRASH, "deleted"), "Deleted"
            )
        if in_trash:
            self.store.delete(in_trash)
            description = f"Deleted {_count(len(in_trash))} for good"
            if change is not None:
                description = change.description + "; " + description
            change = Change(description, tuple(ids), True, None)
            self.last = change
        return change or Change("Nothing to delete", (), False, None)

    def undo(self) -> str | None:
        """Undo the last action; None when there is nothing (more) to undo."""
        change, self.last = self.last, None
        if change is None or change.undo is None:
            return None
        return change.undo()


def _count(n: int) -> str:
    return "1 message" if n == 1 else f"{n:,} messages"


def flags_summary(flags: Flags) -> str:
    return " ".join(flags.names()) or "-"
