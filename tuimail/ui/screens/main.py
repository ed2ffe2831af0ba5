"""The main screen: folder tree | message list | preview, a status line and the key help.

Layouts: "panes" (list with a preview under it) and "pager" (mutt-style: the list alone,
Enter opens the message full-screen). The folder pane shows by default from 100 columns up;
`b` toggles it at any width.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input
from textual.worker import get_current_worker

from tuimail.errors import TuimailError
from tuimail.models import FolderRole, MessageSummary
from tuimail.store.types import FolderRow, SortKey, ThreadRow
from tuimail.ui import threads
from tuimail.ui.compositor import RowCompositor
from tuimail.ui.model import Actions, Change, View, load_ids, load_thread_rows
from tuimail.ui.widgets.folder_tree import FolderTree
from tuimail.ui.widgets.message_list import MessageList
from tuimail.ui.widgets.message_view import MessageView
from tuimail.ui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tuimail.ui.app import TuimailApp

SORTS = (SortKey.DATE, SortKey.FROM, SortKey.SUBJECT, SortKey.SIZE)
# Lists up to this size are threaded on the spot (~12 ms); larger ones show flat first and
# are threaded by a worker thread (100k: ~0.3 s to read thread rows, ~0.4 s to lay out).
SYNC_THREAD_LIMIT = 2000
# Above this the list stays flat: laying out a million rows would take seconds and ~200 MB.
THREAD_LIMIT = 250_000
PREVIEW_DELAY = 0.08  # s: holding j does not parse every message it passes
POSITION_DELAY = 0.05
MARK_READ_DELAY = 1.5  # s a message stays in the preview before it counts as read
REFRESH_PAUSE = 0.3  # s at least between two sync-driven refreshes
# The first paint reads only this many ids (a few screens); the rest come right after it is
# on screen (100k ids: ~50 ms less before the first paint).
FIRST_ROWS = 200


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="open", show=False),
        Binding("r", "reply", "Reply", id="reply"),
        Binding("R", "reply_all", "Reply all", id="reply_all", show=False),
        Binding("f", "forward", "Forward", id="forward", show=False),
        Binding("c", "compose", "Compose", id="compose"),
        Binding("d,delete", "delete", "Delete", id="delete"),
        Binding("a", "archive", "Archive", id="archive", show=False),
        Binding("m", "move", "Move", id="move"),
        Binding("C", "copy", "Copy", id="copy", show=False),
        Binding("N", "toggle_read", "Read/unread", id="toggle_read", show=False),
        Binding("F", "toggle_flag", "Flag", id="toggle_flag", show=False),
        Binding("u", "undo", "Undo", id="undo"),
        Binding("slash", "search", "Search", id="search"),
        Binding("l", "filter", "Filter", id="filter", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("o", "cycle_sort", "Sort", id="sort", show=False),
        Binding("O", "reverse_sort", "Reverse", id="reverse", show=False),
        Binding("t", "toggle_threads", "Threads", id="threads", show=False),
        Binding("minus", "toggle_thread", "Collapse", id="collapse", show=False),
        Binding("b", "toggle_sidebar", "Folders", id="sidebar", show=False),
        Binding("z", "toggle_layout", "Layout", id="layout", show=False),
        Binding("dollar_sign", "sync", "Sync", id="sync", show=False),
        Binding("tab", "focus_next", "Next pane", show=False),
        Binding("shift+tab", "focus_previous", "Previous pane", show=False),
    ]

    DEFAULT_CSS = """
    MainScreen { layout: vertical; }
    MainScreen #panes { height: 1fr; }
    MainScreen #folders { width: 26; border-right: vkey $border-blurred; }
    MainScreen #folders:focus { border-right: vkey $border; }
    MainScreen #right { width: 1fr; }
    MainScreen #messages { height: 1fr; }
    MainScreen.-panes #messages { height: 45%; min-height: 5; }
    MainScreen #preview { height: 1fr; border-top: hkey $border-blurred; display: none; }
    MainScreen.-panes #preview { display: block; }
    MainScreen #preview:focus-within { border-top: hkey $border; }
    MainScreen #search, MainScreen #filter { display: none; height: 1; border: none;
        padding: 0 1; background: $boost; }
    MainScreen #search.-active, MainScreen #filter.-active { display: block; }
    MainScreen.-no-sidebar #folders { display: none; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._compositor = RowCompositor()  # a cursor move renders two rows, not the screen
        self.view: View | None = None
        self.previous_view: View | None = None
        self.sort = SortKey.DATE
        self.descending = True
        self.threaded = True
        self.collapsed: frozenset[int] = frozenset()
        self.base_ids: list[int] = []  # the view's ids before the quick filter
        self.thread_of: dict[int, int] = {}
        self.filter_text = ""
        self._sidebar_forced: bool | None = None
        # Plain event-loop timers for what follows the cursor: a Textual timer is a task and
        # a message per firing, and one was set for every few key presses (about a third of
        # a cursor move's CPU went to them and to the Highlighted message).
        self._preview_timer: asyncio.TimerHandle | None = None
        self._preview_due = 0.0  # time.monotonic() when the preview follows the cursor
        self._read_timer: Timer | None = None
        self._filter_timer: Timer | None = None
        self._position_timer: asyncio.TimerHandle | None = None
        self._generation = 0  # bumps on every reload: late thread layouts are dropped
        # The thread rows of the list last threaded, keyed by that very list object: a
        # collapse or a delete re-lays out without reading the store again.
        self._rows_cache: tuple[list[int], list[ThreadRow]] | None = None
        self._refreshing = False  # a sync-driven refresh is running in a worker
        self._folders: dict[int, FolderRow] = {}  # the last folder rows read, by id
        self._trees: dict[int, threads.Tree] = {}  # the last layout's, for the next one
        self._refresh_again = False  # and the store changed again meanwhile
        self._partial = False  # the list holds only the first FIRST_ROWS ids of the view

    @property
    def mail_app(self) -> TuimailApp:
        from tuimail.ui.app import TuimailApp

        assert isinstance(self.app, TuimailApp)
        return self.app

    # ------------------------------------------------------------------ composition

    def compose(self) -> ComposeResult:
        app = self.mail_app
        # Before the widgets mount, so their styles are worked out once: a class set in
        # on_mount would style the whole screen again (~50 ms at start).
        self.set_class(app.ui_config.layout != "pager", "-panes", update=False)
        with Horizontal(id="panes"):
            yield FolderTree(id="folders")
            with Vertical(id="right"):
                yield Input(id="search", placeholder="Search: words, from:, subject:, is:unread…")
                yield Input(id="filter", placeholder="Filter this list as you type")
                yield MessageList(app.store, id="messages")
                yield MessageView(app.load_message, app.read_message, id="preview")
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        ui = self.mail_app.ui_config
        self.message_list.on_highlight = self._cursor_moved
        self.threaded = ui.threads
        self.sort = SortKey(ui.sort) if ui.sort in SortKey._value2member_map_ else SortKey.DATE
        self.message_list.page_scroll = ui.page_scroll
        self.reload_folders()
        tree = self.query_one(FolderTree)
        first = tree.first_inbox()
        if first is not None:
            self.open_view(first, first_rows=FIRST_ROWS)
        else:
            self.status.update_info(title="No folders yet", message="Sync an account to begin")
        self.message_list.focus()

    # The widgets are looked up once: these run on every key press.
    @cached_property
    def message_list(self) -> MessageList:
        return self.query_one("#messages", MessageList)

    @cached_property
    def preview(self) -> MessageView:
        return self.query_one("#preview", MessageView)

    @cached_property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def panes(self) -> bool:
        return self.has_class("-panes")

    def on_resize(self, event: Resize) -> None:
        if self._sidebar_forced is None:
            self.set_class(event.size.width < 100, "-no-sidebar")

    # ------------------------------------------------------------------ loading

    def reload_folders(self, rows: Sequence[FolderRow] | None = None) -> None:
        """The folder tree's counts and the status line, from `rows` (read by a worker)
        or from the store."""
        if rows is None:
            rows = self.mail_app.store.folders()
        self._folders = {r.id: r for r in rows}
        tree = self.query_one(FolderTree)
        if tree.root.children:
            tree.update_counts(rows)
        else:
            tree.load(rows, self.view)
        self._update_status()

    def open_view(
        self, view: View, *, keep: int | None = None, first_rows: int | None = None
    ) -> None:
        if self.view is not None and view != self.view and self.view.kind != "search":
            self.previous_view = self.view
        changed = view != self.view
        self.view = view
        if changed:
            self.collapsed = frozenset()
            self.message_list.clear_marks()
            self._set_filter_text("")
        self.reload(keep=keep, first_rows=first_rows)

    def _threads_apply(self, view: View, count: int) -> bool:
        return (
            self.threaded
            and self.sort is SortKey.DATE
            and view.kind != "search"
            and count <= THREAD_LIMIT
        )

    def reload(
        self,
        *,
        keep: int | None = None,
        ids: list[int] | None = None,
        layout: threads.Layout | None = None,
        summaries: Sequence[MessageSummary] | None = None,
        first_rows: int | None = None,
    ) -> None:
        """Re-read the view's ids (after a sort change, an action, a sync); `ids` (and their
        thread `layout`, the `summaries` of the rows coming on screen) when a worker has
        read them already. `first_rows`: read only that many ids now, flat, and the whole
        view once they are on screen."""
        view = self.view
        if view is None:
            return
        self._generation += 1
        self._partial = False
        app = self.mail_app
        if ids is None:
            try:
                ids = load_ids(app.store, view, self.sort, self.descending, limit=first_rows)
            except TuimailError as exc:
                app.report(exc)
                return
            if first_rows is not None and len(ids) >= first_rows and not self.filter_text:
                self._partial = True
                generation = self._generation
                self.call_after_refresh(lambda: self._load_rest(generation))
        self.base_ids = ids
        if self.filter_text:
            ids = self._filtered(ids, self.filter_text) or []
            layout = None  # laid out for the unfiltered list
        if keep is None:
            keep = self.message_list.cursor_id
        use_threads = not self._partial and self._threads_apply(view, len(ids))
        cached = self._cached_rows(ids)
        if use_threads and layout is not None:
            self._show_layout(layout, keep)
        elif use_threads and len(ids) <= SYNC_THREAD_LIMIT:
            rows = cached if cached is not None else load_thread_rows(app.store, view, ids)
            self._rows_cache = (ids, rows)
            result = threads.layout(rows, self.descending, self.collapsed, ids, self._trees)
            self._show_layout(result, keep)
        else:
            if not (use_threads and self.thread_of and cached is not None):
                # (Same list, re-laid out, e.g. a collapse: the old layout stays meanwhile.)
                self.thread_of = {}
                self.message_list.set_ids(ids, keep=keep, sent=view.is_sent)
            if use_threads:
                # After the flat list has painted: the first paint never waits for threads.
                generation = self._generation
                self.call_after_refresh(
                    lambda: self._thread_in_background(ids, cached, keep, generation)
                )
        if summaries is None:
            self.message_list.invalidate()
        else:
            self.message_list.prime(summaries, only=True)
        self._update_status()

    def _load_rest(self, generation: int) -> None:
        """After the first paint: the whole view, unless another reload came first."""
        if self._partial and generation == self._generation:
            self.reload()

    def _cached_rows(self, ids: list[int]) -> list[ThreadRow] | None:
        cache = self._rows_cache
        return cache[1] if cache is not None and cache[0] is ids else None

    def _show_layout(self, result: threads.Layout, keep: int | None) -> None:
        self.thread_of = result.thread_of
        self._trees = result.trees
        view = self.view
        self.message_list.set_ids(
            result.ids, prefixes=result.prefixes, keep=keep, sent=bool(view and view.is_sent)
        )

    # (A description of our own: by default Textual builds one from the repr() of every
    # argument, on the UI thread: 100,000 ids took ~0.1 s.)
    @work(thread=True, exclusive=True, group="threads", description="thread layout")
    def _thread_in_background(
        self,
        ids: list[int],
        rows: list[ThreadRow] | None,
        keep: int | None,
        generation: int,
    ) -> None:
        """Large lists: thread rows read with the worker's own Store (one per thread) unless
        cached, and laid out here, off the UI thread."""
        from tuimail.store.store import Store

        view, descending, collapsed, trees = (
            self.view,
            self.descending,
            self.collapsed,
            self._trees,
        )
        if view is None:
            return
        worker = get_current_worker()
        if rows is None:
            with Store.open(self.mail_app.store_root) as store:
                rows = load_thread_rows(store, view, ids)
        if worker.is_cancelled:
            return
        result = threads.layout(rows, descending, collapsed, ids, trees)
        found = rows

        def apply() -> None:
            if (
                generation == self._generation
                and (self.descending, self.collapsed) == (descending, collapsed)
                and self.threaded
            ):
                self._rows_cache = (ids, found)
                current = self.message_list.cursor_id
                self._show_layout(result, current if current is not None else keep)
                self._update_status()

        if not worker.is_cancelled:
            self.app.call_from_thread(apply)

    def _update_status(self) -> None:
        view = self.view
        ml = self.message_list
        unread, total = 0, ml.row_count  # from the folder rows last read: no query here
        if view is not None and view.kind in ("folder", "unified"):
            fids = view.folder_ids if view.kind == "unified" else (view.folder_id,)
            rows = [self._folders[f] for f in fids if f in self._folders]
            unread = sum(r.unread for r in rows)
            if self._partial:  # (the first paint: the list holds its first rows only)
                total = sum(r.total for r in rows)
        self.status.update_info(
            title=view.title if view else "",
            total=total,
            position=ml.cursor + 1 if ml.row_count else 0,
            unread=unread,
            marked=len(ml.marked),
            sort=self.sort.value,
            descending=self.descending,
            threads=bool(self.thread_of),
            filter=self.filter_text,
        )

    # ------------------------------------------------------------------ list events

    @on(FolderTree.Opened)
    def _folder_opened(self, event: FolderTree.Opened) -> None:
        self.open_view(event.view)
        self.message_list.focus()

    def _cursor_moved(self, message_id: int | None) -> None:
        """(The message list calls this at every cursor move: see MessageList.on_highlight.)"""
        # The status line's position follows a moment later: while a key is held it is
        # redrawn once per POSITION_DELAY, not at every row.
        if self._position_timer is None:
            self._position_timer = self._later(POSITION_DELAY, self._update_position)
        if self._read_timer is not None:
            self._read_timer.stop()
            self._read_timer = None
        if not self.panes:
            return
        if message_id is None:
            if self._preview_timer is not None:
                self._preview_timer.cancel()
                self._preview_timer = None
            self.preview.clear()
            return
        # The preview follows PREVIEW_DELAY after the last move. Holding j does not stop and
        # start a timer per row (a task each): the one timer running looks again when due.
        self._preview_due = time.monotonic() + PREVIEW_DELAY
        if self._preview_timer is None:
            self._preview_timer = self._later(PREVIEW_DELAY, self._preview_when_due)

    def _later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)

    def on_unmount(self) -> None:
        for handle in (self._preview_timer, self._position_timer):
            if handle is not None:
                handle.cancel()

    def _preview_when_due(self) -> None:
        wait = self._preview_due - time.monotonic()
        if wait > 0.002:
            self._preview_timer = self._later(wait, self._preview_when_due)
            return
        self._preview_timer = None
        mid = self.message_list.cursor_id
        if mid is not None and self.panes:
            self._show_preview(mid)

    def _update_position(self) -> None:
        self._position_timer = None
        ml = self.message_list
        self.status.update_info(position=ml.cursor + 1 if ml.row_count else 0)

    def _show_preview(self, message_id: int) -> None:
        if self.message_list.cursor_id != message_id:
            return
        self.preview.show(message_id)
        summary = self.preview.summary
        if summary is not None and not summary.flags.seen and self.preview.reading is not None:
            self._read_timer = self.set_timer(
                MARK_READ_DELAY, lambda: self._mark_read_if_still_shown(message_id)
            )

    def _mark_read_if_still_shown(self, message_id: int) -> None:
        if self.preview.message_id == message_id and self.message_list.cursor_id == message_id:
            self.mark_seen([message_id])

    def mark_seen(self, ids: Sequence[int]) -> None:
        """Reading a message marks it read (not undoable: it is not a user action)."""
        try:
            self.mail_app.store.set_flags(ids, add=("seen",))
        except TuimailError as exc:
            self.mail_app.report(exc)
            return
        self.message_list.invalidate(ids)
        self.reload_folders()

    @on(MessageList.Selected)
    def _selected(self, event: MessageList.Selected) -> None:
        self.action_open()

    @on(MessageList.MarksChanged)
    def _marks_changed(self, event: MessageList.MarksChanged) -> None:
        self.status.update_info(marked=event.count)

    # ------------------------------------------------------------------ actions

    def _targets(self) -> list[int]:
        return self.message_list.target_ids()

    def _apply(self, change: Change) -> None:
        ml = self.message_list
        if change.removed and change.ids:
            gone = set(change.ids)
            cursor = ml.cursor
            shown = ml.prefixes
            ids = [i for i in ml.ids if i not in gone]
            prefixes = None
            if shown is not None:  # the tree as it was, less the rows gone, until re-laid out
                prefixes = [p for i, p in zip(ml.ids, shown, strict=True) if i not in gone]
            cached = self._cached_rows(self.base_ids)
            self.base_ids = [i for i in self.base_ids if i not in gone]
            if cached is not None:
                self._rows_cache = (self.base_ids, [r for r in cached if r[0] not in gone])
            ml.clear_marks()
            ml.set_ids(
                ids,
                cursor=min(cursor, max(len(ids) - 1, 0)),
                prefixes=prefixes,
                sent=bool(self.view and self.view.is_sent),
            )
            if self.thread_of:
                self.reload(keep=ml.cursor_id, ids=self.base_ids)
        else:
            ml.invalidate(change.ids)
        if self.preview.message_id in change.ids:
            self.preview.show(self.preview.message_id, force=True)
        self.reload_folders()
        hint = " — u to undo" if change.undo is not None else ""
        self.status.update_info(message=change.description + hint)
        self.mail_app.changes_made()

    def _run(self, action: str, *args: object, ids: list[int] | None = None) -> None:
        ids = self._targets() if ids is None else ids
        if not ids:
            return
        actions: Actions = self.mail_app.actions
        try:
            change: Change = getattr(actions, action)(ids, *args)
        except TuimailError as exc:
            self.mail_app.report(exc)
            return
        self._apply(change)

    def action_toggle_read(self) -> None:
        self._run("toggle_flag", "seen")

    def action_toggle_flag(self) -> None:
        self._run("toggle_flag", "flagged")

    def action_delete(self) -> None:
        self.request_delete()

    def request_delete(self, then: Callable[[], None] | None = None) -> None:
        """Delete the targets: to Trash at once (undoable); what would go for good (in
        Trash, or an account without one) only after a yes. `then` runs once deleted."""
        ids = self._targets()
        if not ids:
            return
        app = self.mail_app
        try:
            final = app.actions.for_good(ids)
        except TuimailError as exc:
            app.report(exc)
            return

        def delete() -> None:
            self._run("delete", ids=ids)
            if then is not None:
                then()

        if not final:
            delete()
            return
        n = len(final)
        question = "Delete this message for good?" if n == 1 else f"Delete {n:,} messages for good?"
        in_trash = self.view is not None and self.view.role is FolderRole.TRASH
        where = (
            ("It is" if n == 1 else "They are") + " in Trash already"
            if in_trash
            else "Messages in Trash, or in an account without a Trash folder, are removed"
        )
        rest = len(ids) - n
        also = f" The other {rest:,} go to Trash." if rest else ""
        detail = f"{where}: this cannot be undone.{also}"

        def answer(yes: bool | None) -> None:
            if yes:
                delete()
            else:
                self.status.update_info(message="Nothing deleted")

        from tuimail.ui.screens.pickers import ConfirmScreen

        self.app.push_screen(ConfirmScreen(question, detail), answer)

    def action_archive(self) -> None:
        self._run("archive")

    def _pick_folder(self, title: str, then: str) -> None:
        from tuimail.ui.screens.pickers import FolderPicker

        ids = self._targets()
        if not ids:
            return
        accounts = {s.account for s in self.mail_app.store.summaries(ids[:200])}
        rows = [r for r in self.mail_app.store.folders() if then == "copy" or r.account in accounts]

        def chosen(row: FolderRow | None) -> None:
            if row is not None:
                self._run(then, row)

        self.app.push_screen(FolderPicker(rows, title), chosen)

    def action_move(self) -> None:
        self._pick_folder("Move to folder", "move")

    def action_copy(self) -> None:
        self._pick_folder("Copy to folder", "copy")

    def action_undo(self) -> None:
        try:
            done = self.mail_app.actions.undo()
        except TuimailError as exc:
            self.mail_app.report(exc)
            return
        if done is None:
            self.status.update_info(message="Nothing to undo")
            return
        self.reload()
        self.reload_folders()
        self.status.update_info(message=done)
        self.mail_app.changes_made()

    def action_open(self) -> None:
        from tuimail.ui.screens.viewer import ViewerScreen

        mid = self.message_list.cursor_id
        if mid is None:
            return
        self.app.push_screen(ViewerScreen(self, mid))

    def current_summary(self) -> MessageSummary | None:
        mid = self.message_list.cursor_id
        return self.message_list.summary(mid) if mid is not None else None

    def action_reply(self) -> None:
        self.mail_app.start_compose("reply", self.message_list.cursor_id)

    def action_reply_all(self) -> None:
        self.mail_app.start_compose("reply_all", self.message_list.cursor_id)

    def action_forward(self) -> None:
        self.mail_app.start_compose("forward", self.message_list.cursor_id)

    def action_compose(self) -> None:
        self.mail_app.start_compose("new", None)

    def action_sync(self) -> None:
        self.mail_app.request_sync()

    # ------------------------------------------------------------------ view options

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.descending = self.sort in (SortKey.DATE, SortKey.SIZE)
        self.reload()

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self.reload()

    def action_toggle_threads(self) -> None:
        self.threaded = not self.threaded
        self.reload()
        self.status.update_info(
            message="Threads on" + ("" if self.sort is SortKey.DATE else " (when sorted by date)")
            if self.threaded
            else "Threads off"
        )

    def action_toggle_thread(self) -> None:
        mid = self.message_list.cursor_id
        key = self.thread_of.get(mid) if mid is not None else None
        if key is None:
            return
        self.collapsed = self.collapsed - {key} if key in self.collapsed else self.collapsed | {key}
        self.reload(keep=mid, ids=self.base_ids)  # same list: its thread rows are cached

    def action_toggle_sidebar(self) -> None:
        hidden = not self.has_class("-no-sidebar")
        self._sidebar_forced = not hidden
        self.set_class(hidden, "-no-sidebar")
        if not hidden:
            self.query_one(FolderTree).focus()
        elif self.query_one(FolderTree).has_focus:
            self.message_list.focus()

    def action_toggle_layout(self) -> None:
        self.toggle_class("-panes")
        if self.panes and self.message_list.cursor_id is not None:
            self.preview.show(self.message_list.cursor_id)

    # ------------------------------------------------------------------ search and filter

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.add_class("-active")
        if self.view is not None and self.view.kind == "search":
            search.value = self.view.query
        search.focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-active")
        box.focus()

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        box = self.query_one("#filter", Input)
        if search.has_class("-active"):
            search.remove_class("-active")
            self.message_list.focus()
        elif box.has_class("-active") or self.filter_text:
            box.remove_class("-active")
            self._set_filter_text("")
            self.reload()
            self.message_list.focus()
        elif self.message_list.marked:
            self.message_list.clear_marks()
        elif self.view is not None and self.view.kind == "search" and self.previous_view:
            self.open_view(self.previous_view)

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        event.input.remove_class("-active")
        self.message_list.focus()
        if not query:
            return
        try:
            self.mail_app.store.search(query, limit=1)  # validate first: keep the view on error
        except TuimailError as exc:
            self.mail_app.report(exc)
            return
        self.open_view(View("search", f"Search: {query}", query=query))

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        text = event.value
        self._filter_timer = self.set_timer(0.15, lambda: self._apply_filter(text))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("-active")
        self.message_list.focus()

    def _set_filter_text(self, text: str) -> None:
        self.filter_text = text
        box = self.query_one("#filter", Input)
        if box.value != text:
            box.value = text

    def _filtered(self, ids: Sequence[int], text: str) -> list[int] | None:
        """`ids` narrowed to messages matching `text` (words as prefixes); None if the
        text is not a valid query yet (e.g. an open quote while typing)."""
        words = text.split()
        if not words:
            return list(ids)
        query = " ".join(words)
        if not query.endswith(("*", '"')) and ":" not in words[-1]:
            query += "*"
        try:
            hits = set(self.mail_app.store.search(query))
        except TuimailError:
            return None
        return [i for i in ids if i in hits]

    def _apply_filter(self, text: str) -> None:
        if text.strip() == self.filter_text.strip():
            return
        ids = self._filtered(self.base_ids, text)
        if ids is None:
            return
        self.filter_text = text.strip()
        keep = self.message_list.cursor_id
        if self.thread_of and not self.filter_text:
            self.reload(keep=keep)
            return
        self.message_list.set_ids(ids, keep=keep, sent=bool(self.view and self.view.is_sent))
        self._update_status()

    # ------------------------------------------------------------------ from the app

    def store_changed(self) -> None:
        """The store changed under us (a sync, another process): repaint from it.

        The view's ids (and threads) are re-read by a worker thread with its own Store, so
        a sync that lands thousands of messages never stalls typing. One refresh runs at a
        time; changes meanwhile make one more, started after a pause three times as long as
        the last refresh took: during a long sync the refresh work (Python, competing with
        the UI thread for the GIL) runs at most a quarter of the time.
        """
        view = self.view
        if view is None:
            self.reload_folders()
            return
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        self._generation += 1
        ml = self.message_list
        # The thread rows of the list on screen: the refresh reads only what is new since.
        shown = self._cached_rows(self.base_ids)
        self._reload_in_background(
            view,
            self.sort,
            self.descending,
            self._generation,
            ml.cursor_id,
            ml.viewport(),
            (shown, self._trees),
        )

    def _refresh_done(self, cost: float) -> None:
        self._refreshing = False
        if self._refresh_again:
            self._refresh_again = False
            self.set_timer(max(REFRESH_PAUSE, 3 * cost), self.store_changed)

    @work(thread=True, exclusive=True, group="reload", description="refresh from the store")
    def _reload_in_background(
        self,
        view: View,
        sort: SortKey,
        descending: bool,
        generation: int,
        keep: int | None,
        viewport: tuple[int, int, int],
        known: tuple[list[ThreadRow] | None, dict[int, threads.Tree]],
    ) -> None:
        """Everything a sync-driven refresh costs happens here, off the UI thread: the ids
        (100k: ~50 ms), for a threaded list the rows of the new messages and the layout
        (threads unchanged since the last one are reused: 50k, ~0.1 s), the folder counts
        and the rows coming on screen. The UI thread only swaps the new list in."""
        started = time.perf_counter()
        apply: Callable[[], None] | None = None
        try:
            apply = self._read_for_refresh(
                view, sort, descending, generation, keep, viewport, known
            )
        finally:
            cost = time.perf_counter() - started

            def finish() -> None:
                if apply is not None:
                    apply()
                self._refresh_done(cost)

            with contextlib.suppress(RuntimeError):  # the app is gone
                self.app.call_from_thread(finish)

    def _read_for_refresh(
        self,
        view: View,
        sort: SortKey,
        descending: bool,
        generation: int,
        keep: int | None,
        viewport: tuple[int, int, int],
        known: tuple[list[ThreadRow] | None, dict[int, threads.Tree]],
    ) -> Callable[[], None] | None:
        """(In the worker thread.) Read the view again, the folder counts, and the rows that
        will be on screen; returns what to do on the UI thread, which then runs no query: a
        query there would hand the GIL to the sync's threads at every row it steps."""
        from tuimail.store.store import Store

        worker = get_current_worker()
        ml = self.message_list
        collapsed, threaded, filtered = self.collapsed, self.threaded, bool(self.filter_text)
        layout: threads.Layout | None = None
        rows: list[ThreadRow] | None = None
        with Store.open(self.mail_app.store_root) as store:
            try:
                folders = store.folders()
                ids = load_ids(store, view, sort, descending)
            except TuimailError:
                return None  # the next event or keypress tries again
            unchanged = ids == self.base_ids  # a list is swapped, never changed in place
            if (
                not unchanged
                and not filtered
                and threaded
                and sort is SortKey.DATE
                and view.kind != "search"
                and len(ids) <= THREAD_LIMIT
            ):
                shown, trees = known
                by_id = {row[0]: row for row in shown} if shown else None
                rows = load_thread_rows(store, view, ids, by_id)
                if worker.is_cancelled:
                    return None
                layout = threads.layout(rows, descending, collapsed, ids, trees)
            shown_ids = layout.ids if layout is not None else ids
            try:
                visible = store.summaries(ml.window(shown_ids, keep, viewport))
            except TuimailError:
                visible = []
        if worker.is_cancelled:
            return None

        def apply() -> None:
            self.reload_folders(folders)
            # Dropped if the user changed view, sort or filter meanwhile.
            if generation != self._generation or self.view != view:
                return
            if ids == self.base_ids:
                ml.prime(visible, only=True)  # flags may have changed
                return
            still = (self.collapsed, self.threaded, bool(self.filter_text)) == (
                collapsed,
                threaded,
                filtered,
            )
            if rows is not None:
                self._rows_cache = (ids, rows)
            fresh = layout if still else None
            self.reload(keep=ml.cursor_id, ids=ids, layout=fresh, summaries=visible)

        return apply
