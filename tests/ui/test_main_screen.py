"""The main screen on the demo mailbox: open, navigate, read, act, undo, search, filter."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.widgets import Input
from ui_support import screen_lines, screen_text, settle, stray_controls

from tuimail.models import FolderRole
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.main import MainScreen
from tuimail.ui.screens.viewer import ViewerScreen
from tuimail.ui.widgets.folder_tree import FolderTree
from tuimail.ui.widgets.message_list import MessageList
from tuimail.ui.widgets.message_view import MessageView


def main_of(app: TuimailApp) -> MainScreen:
    main = app.main
    assert main is not None
    return main


async def test_opens_on_all_inboxes_at_80x24(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: app.query_one("#preview", MessageView).reading is not None)
        main = main_of(app)
        assert main.view is not None and main.view.kind == "unified"
        lines = screen_lines(app)
        assert len(lines) == 24
        assert any("All inboxes" in line for line in lines[-3:])  # status line
        assert "From:" in screen_text(app)  # the preview shows the first message
        assert main.has_class("-no-sidebar")  # 80 columns: the folder pane starts hidden
        assert stray_controls(app) == []


async def test_folder_pane_and_sent_folder_show_recipients(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = main_of(app)
        assert not main.has_class("-no-sidebar")
        text = screen_text(app)
        for name in ("personal", "work", "Inbox", "Sent", "Archive", "python-dev"):
            assert name in text
        sent = app.store.folder_by_role("personal", FolderRole.SENT)
        assert sent is not None
        tree = app.query_one(FolderTree)
        tree.select_view(main.view.__class__("folder", "x", folder_id=sent.id))
        tree.action_open_folder()
        await settle(pilot)
        assert main.view is not None and main.view.folder_id == sent.id
        first = screen_lines(app)[0]
        assert "→ " in first  # Sent lists who it went to


async def test_navigate_preview_and_pager(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        ml = app.query_one("#messages", MessageList)
        preview = app.query_one("#preview", MessageView)
        await pilot.press("j", "j")
        await settle(pilot, lambda: preview.message_id == ml.cursor_id)
        assert ml.cursor == 2
        assert preview.message_id == ml.cursor_id
        second = ml.cursor_id
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        summary = app.store.message(second)  # type: ignore[arg-type]
        assert summary is not None and summary.flags.seen  # opening marks it read
        sender = summary.envelope.from_[0].addr
        assert sender in screen_text(app)  # the real address is always shown
        await pilot.press("n")
        await settle(pilot)
        assert ml.cursor == 3
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_delete_undo_and_flags(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = main_of(app)
        ml = main.message_list
        target = ml.cursor_id
        assert target is not None
        before = ml.row_count
        await pilot.press("d")
        await settle(pilot)
        assert ml.row_count == before - 1 and target not in ml.ids
        moved = app.store.message(target)
        assert moved is not None and moved.folder == "Trash"
        assert "u to undo" in screen_text(app)
        await pilot.press("u")
        await settle(pilot)
        back = app.store.message(target)
        assert back is not None and back.folder == "INBOX"
        assert target in ml.ids
        ml.move_to_id(target)
        was_flagged = back.flags.flagged
        await pilot.press("F")
        await settle(pilot)
        now = app.store.message(target)
        assert now is not None and now.flags.flagged is not was_flagged
        await pilot.press("u")
        again = app.store.message(target)
        assert again is not None and again.flags.flagged is was_flagged


async def test_marks_apply_to_many(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        ml = main_of(app).message_list
        first, second = ml.ids[0], ml.ids[1]
        await pilot.press("space", "space")  # marks two, cursor moves on
        assert ml.marked == {first, second}
        await pilot.press("a")  # archive both
        await settle(pilot)
        for mid in (first, second):
            row = app.store.message(mid)
            assert row is not None and row.folder == "Archive"
        assert ml.marked == frozenset()


async def test_move_with_fuzzy_picker(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        ml = main_of(app).message_list
        target = ml.cursor_id
        summary = app.store.message(target)  # type: ignore[arg-type]
        assert summary is not None
        await pilot.press("m")
        await settle(pilot)
        await pilot.press(*"pyth")
        await settle(pilot)
        picked = screen_text(app)
        if summary.account == "personal":
            assert "Lists/python-dev" in picked
            await pilot.press("enter")
            await settle(pilot)
            row = app.store.message(target)  # type: ignore[arg-type]
            assert row is not None and row.folder == "Lists/python-dev"
        else:  # a work message: personal folders are not offered
            assert "python-dev" not in picked
            await pilot.press("escape")


async def test_search_shows_a_virtual_folder_and_escape_returns(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = main_of(app)
        await pilot.press("slash")
        await pilot.press(*"from:mallory", "enter")
        await settle(pilot)
        assert main.view is not None and main.view.kind == "search"
        assert main.message_list.row_count == 1
        assert "Search: from:mallory" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert main.view is not None and main.view.kind == "unified"


async def test_bad_search_keeps_the_view_and_says_why(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = main_of(app)
        await pilot.press("slash")
        await pilot.press(*"before:notadate", "enter")
        await settle(pilot)
        assert main.view is not None and main.view.kind == "unified"
        assert app._notifications  # the UsageError's message is shown


async def test_quick_filter_narrows_as_you_type(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = main_of(app)
        total = main.message_list.row_count
        await pilot.press("l", *"lisbon")
        await pilot.pause(0.4)
        narrowed = main.message_list.row_count
        assert 0 < narrowed < total
        assert app.query_one("#filter", Input).value == "lisbon"
        await pilot.press("enter", "escape")
        await settle(pilot)
        assert main.message_list.row_count == total


async def test_sort_and_threads_toggle(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = main_of(app)
        assert main.thread_of  # threads on by default
        await pilot.press("o")
        await settle(pilot)
        assert main.sort.value == "from" and not main.thread_of
        assert "from" in screen_lines(app)[-2]
        await pilot.press("o", "o", "o", "t")  # back to date, threads off
        await settle(pilot)
        assert main.sort.value == "date" and not main.thread_of


@dataclass(frozen=True)
class FakeStatus:
    """Shaped like the worker's events: the app reads them by attribute."""

    account: str
    state: str
    detail: str = ""


async def test_account_events_from_a_thread_reach_the_status_line(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        worker = threading.Thread(target=app.events, args=(FakeStatus("work", "syncing"),))
        worker.start()
        worker.join()
        await settle(pilot)
        assert app.account_status["work"].state == "syncing"
        assert "work syncing" in screen_lines(app)[-2]


async def test_help_lists_bindings(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        text = screen_text(app)
        for words in ("Reply", "Delete", "Undo", "Search", "Move"):
            assert words in text
        await pilot.press("escape")


@dataclass(frozen=True)
class FakeSynced:
    account: str
    result: object = "synced"


async def test_sync_events_bring_new_mail_into_the_list(demo_root: Path) -> None:
    from tuimail.models import Flags
    from tuimail.store.store import Store
    from tuimail.store.types import NewMessage

    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = main_of(app)
        raw = (
            b"From: New Person <new@example.net>\r\nTo: alex@example.org\r\n"
            b"Subject: Fresh from the server\r\nDate: Wed, 15 Jan 2025 11:59:00 +0000\r\n"
            b"Message-ID: <fresh@example.net>\r\n\r\nHello!\r\n"
        )

        def sync() -> None:  # what a worker thread does: its own store, then an event
            with Store.open(demo_root) as store:
                inbox = store.folder("personal", "INBOX")
                assert inbox is not None
                [new_id] = store.add_messages(
                    inbox.id, [NewMessage(99_999, Flags(), len(raw), None, raw, True)]
                )
            app.events(FakeSynced("personal"))
            found.append(new_id)

        found: list[int] = []
        worker = threading.Thread(target=sync)
        worker.start()
        worker.join()
        await settle(pilot, lambda: found[0] in main.message_list.ids)
        assert found[0] in main.message_list.ids
        assert "Fresh from the server" in screen_text(app)


async def test_key_bindings_come_from_the_config(demo_root: Path) -> None:
    from tuimail.config import Config, UIConfig

    config = Config(ui=UIConfig(keys={"next": "n", "delete": "x"}))
    app = TuimailApp(config, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        ml = main_of(app).message_list
        await pilot.press("n")
        assert ml.cursor == 1
        target = ml.cursor_id
        await pilot.press("x")
        await settle(pilot)
        moved = app.store.message(target)  # type: ignore[arg-type]
        assert moved is not None and moved.folder == "Trash"


async def test_sync_warnings_are_notified_sanitized_and_once(demo_root: Path) -> None:
    from tuimail.account.worker import FolderSyncedEvent, Reply
    from tuimail.mail.sanitize import sanitize_line
    from tuimail.sync.session import FolderResult, SyncSummary

    large = "2 messages larger than max_message_size were listed without body"
    alert = "Server alert: [b]Mailbox[/b] [@click=app.quit]over quota[/] \x1b[2J\u202e"
    folder = FolderResult("INBOX", warnings=(large,))
    summary = SyncSummary("personal", folders=(folder,), warnings=(alert,))
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        before = len(app._notifications)
        # What a worker sends, from its thread: the folder's result, then the sync's reply.
        worker = threading.Thread(
            target=lambda: (
                app.events(FolderSyncedEvent("personal", folder)),
                app.events(Reply("personal", 1, ok=True, result=summary)),
            )
        )
        worker.start()
        worker.join()
        await settle(pilot, lambda: len(app._notifications) >= before + 2)
        await settle(pilot)
        said = [n for n in app._notifications if n.title == "personal: sync warning"]
        assert [n.message for n in said] == [large, sanitize_line(alert)]  # each once
        assert all(not n.markup and n.severity == "warning" for n in said)
        assert "\x1b" not in said[1].message and "\u202e" not in said[1].message
        assert app.is_running  # the [@click=app.quit] text was not run as an action
        assert stray_controls(app) == []


async def test_many_sync_warnings_are_summed_up(demo_root: Path) -> None:
    from tuimail.account.worker import Reply
    from tuimail.sync.session import SyncSummary

    warnings = tuple(f"Server alert: notice {i}" for i in range(1, 8))
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.events(Reply("work", 7, ok=True, result=SyncSummary("work", warnings=warnings)))
        await settle(pilot, lambda: any("more" in n.message for n in app._notifications))
        said = [n.message for n in app._notifications if n.title == "work: sync warning"]
        assert said[:3] == list(warnings[:3])
        assert said[3:] == ["…and 4 more: `tuimail sync` lists them all."]


async def test_full_collections_are_rarer_while_the_app_runs(demo_root: Path) -> None:
    import gc

    from tuimail.ui.app import FULL_GC_EVERY

    before = gc.get_threshold()
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app._freeze_startup_objects()  # (what a timer does 2 s after start)
        assert gc.get_threshold() == (*before[:2], FULL_GC_EVERY)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


async def test_first_paint_reads_a_few_rows_then_the_whole_view(
    demo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuimail.ui.screens import main
    from tuimail.ui.widgets.status_bar import StatusBar

    monkeypatch.setattr(main, "FIRST_ROWS", 10)
    limits: list[int | None] = []
    load_ids = main.load_ids

    def recording(*args: object, limit: int | None = None) -> list[int]:
        limits.append(limit)
        return load_ids(*args, limit=limit)  # type: ignore[arg-type]

    totals: list[object] = []
    update_info = StatusBar.update_info

    def recording_info(bar: StatusBar, **changes: object) -> None:
        if "total" in changes:
            totals.append(changes["total"])
        update_info(bar, **changes)

    monkeypatch.setattr(main, "load_ids", recording)
    monkeypatch.setattr(StatusBar, "update_info", recording_info)
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen) and screen.view is not None
        whole = main.load_ids(app.store, screen.view)
        assert len(whole) > 10
        assert limits[:2] == [10, None]
        ml = screen.query_one(MessageList)
        assert list(ml.ids) == whole or screen.thread_of  # (threads reorder the rows)
        assert ml.row_count == len(whole)
        # The status line never counted only the rows read first (0: before any view).
        assert set(totals) - {0} == {len(whole)}
