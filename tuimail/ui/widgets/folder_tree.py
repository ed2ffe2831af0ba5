"""The folder pane: accounts and their folders (roles first), unread counts, all inboxes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tuimail.models import FolderRole
from tuimail.store.types import FolderRow
from tuimail.ui.model import UNIFIED_TITLE, AccountNode, FolderNode, View, build_tree, inbox_ids
from tuimail.ui.text import clean

ROLE_NAMES = {
    FolderRole.INBOX: "Inbox",
    FolderRole.DRAFTS: "Drafts",
    FolderRole.SENT: "Sent",
    FolderRole.ARCHIVE: "Archive",
    FolderRole.JUNK: "Junk",
    FolderRole.TRASH: "Trash",
}


def folder_title(row: FolderRow) -> str:
    """A folder's name for people: role folders by role, others by their (sanitized) path."""
    return ROLE_NAMES.get(row.role) or clean(row.name)


def _label(name: str, unread: int, bold: bool = False) -> Text:
    text = Text(clean(name), style="bold" if bold else "", end="", no_wrap=True)
    if unread:
        text.append(f" {unread:,}", style="bold")
    return text


class FolderTree(Tree[View | None]):
    """Accounts → folders; selecting a folder posts `FolderTree.Opened(view)`."""

    DEFAULT_CSS = """
    FolderTree {
        background: $panel;
        padding: 0;
        & > .tree--cursor { text-style: bold; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l,right", "open_folder", "Open", show=False),
    ]

    class Opened(Message):
        def __init__(self, view: View) -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("Folders"), id=id)
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = False
        self._folder_nodes: dict[int, TreeNode[View | None]] = {}
        self._rows: list[FolderRow] = []

    def load(self, rows: Sequence[FolderRow], current: View | None = None) -> None:
        """(Re)build from `store.folders()`; keeps the cursor on `current`."""
        self._rows = list(rows)
        self.clear()
        self._folder_nodes.clear()
        tree = build_tree(rows)
        inboxes = inbox_ids(rows)
        if len(tree) > 1 and inboxes:
            unread = sum(r.unread for r in rows if r.id in inboxes)
            self.root.add_leaf(
                _label(UNIFIED_TITLE, unread, bold=True),
                data=View("unified", UNIFIED_TITLE, folder_ids=inboxes, role=FolderRole.INBOX),
            )
        for account in tree:
            node = self.root.add(_label(account.name, 0, bold=True), data=None, expand=True)
            self._add_folders(node, account, account.folders)
        self.select_view(current)

    def _add_folders(
        self, parent: TreeNode[View | None], account: AccountNode, nodes: list[FolderNode]
    ) -> None:
        for folder_node in nodes:
            row = folder_node.folder
            view = None
            name = folder_node.label
            if row is not None:
                name = ROLE_NAMES.get(row.role) or folder_node.label
                title = f"{clean(account.name)}/{folder_title(row)}"
                view = View("folder", title, folder_id=row.id, role=row.role)
            label = _label(name, folder_node.unread)
            if folder_node.children:
                node = parent.add(label, data=view, expand=True)
                self._add_folders(node, account, folder_node.children)
            else:
                node = parent.add_leaf(label, data=view)
            if row is not None:
                self._folder_nodes[row.id] = node

    def update_counts(self, rows: Sequence[FolderRow]) -> None:
        """Refresh unread counts in place (cheap: the store keeps the counters)."""
        by_id = {r.id: r for r in rows}
        if {r.id for r in rows} != {r.id for r in self._rows}:
            current = self.cursor_node.data if self.cursor_node else None
            self.load(rows, current)
            return
        before = {r.id: r.unread for r in self._rows}
        self._rows = list(rows)
        # Only changed labels: a sync refreshes this often, and each label repaints.
        for fid, node in self._folder_nodes.items():
            row = by_id[fid]
            if before.get(fid) == row.unread:
                continue
            name = ROLE_NAMES.get(row.role) or row.name.split(row.delimiter or "/")[-1]
            node.set_label(_label(name, row.unread))
        for node in self.root.children:
            if node.data is not None and node.data.kind == "unified":
                ids = node.data.folder_ids
                unread = sum(by_id[i].unread for i in ids if i in by_id)
                if unread != sum(before.get(i, 0) for i in ids):
                    node.set_label(_label(UNIFIED_TITLE, unread, bold=True))

    def select_view(self, view: View | None) -> None:
        if view is None:
            return
        target: TreeNode[View | None] | None = None
        if view.kind == "folder":
            target = self._folder_nodes.get(view.folder_id)
        elif view.kind == "unified":
            target = next(
                (n for n in self.root.children if n.data and n.data.kind == "unified"), None
            )
        if target is not None:
            self.move_cursor(target, animate=False)

    def first_inbox(self) -> View | None:
        """What to open at start: all inboxes if there are several accounts, else the inbox."""
        for node in self.root.children:
            if node.data is not None:
                return node.data
        for row in self._rows:
            if row.role is FolderRole.INBOX:
                return self._folder_nodes[row.id].data
        return next((n.data for n in self._folder_nodes.values() if n.data), None)

    def action_open_folder(self) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None:
            self.post_message(self.Opened(node.data))

    def on_tree_node_selected(self, event: Tree.NodeSelected[View | None]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.Opened(event.node.data))
