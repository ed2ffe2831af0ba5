"""Deleting: to Trash at once (undoable); for good (in Trash, or no Trash) only after a yes."""

from __future__ import annotations

from pathlib import Path

from ui_support import flat_text, settle

from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store.store import Store
from tuimail.store.types import NewMessage
from tuimail.ui.app import TuimailApp
from tuimail.ui.model import Actions, View
from tuimail.ui.screens.main import MainScreen
from tuimail.ui.screens.pickers import ConfirmScreen
from tuimail.ui.screens.viewer import ViewerScreen


def raw_message(n: int) -> bytes:
    return (
        f"From: Sam <sam@example.net>\r\nTo: alex@example.org\r\nSubject: Old news {n}\r\n"
        f"Date: Wed, 15 Jan 2025 10:0{n}:00 +0000\r\nMessage-ID: <old{n}@example.net>\r\n\r\n"
        "Bye.\r\n"
    ).encode()


def fill_trash(root: Path, n: int = 3) -> list[int]:
    """Move n inbox messages to personal's Trash (as if deleted earlier); their ids."""
    with Store.open(root) as store:
        trash = store.folder_by_role("personal", FolderRole.TRASH)
        inbox = store.folder("personal", "INBOX")
        assert trash is not None and inbox is not None
        ids = store.list_ids(inbox.id)[:n]
        store.move(ids, trash.id)
        return ids


def open_trash(app: TuimailApp) -> MainScreen:
    main = app.main
    assert main is not None
    trash = app.store.folder_by_role("personal", FolderRole.TRASH)
    assert trash is not None
    main.open_view(View("folder", "Trash", folder_id=trash.id, role=FolderRole.TRASH))
    return main


def visible(app: TuimailApp, mid: int) -> bool:
    summary = app.store.message(mid)
    return summary is not None and mid in app.store.list_ids(
        app.store.folder(summary.account, summary.folder).id  # type: ignore[union-attr]
    )


async def test_deleting_in_trash_asks_and_no_keeps_the_message(demo_root: Path) -> None:
    ids = fill_trash(demo_root)
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = open_trash(app)
        await settle(pilot, lambda: main.message_list.row_count == 3)
        target = main.message_list.cursor_id
        assert target in ids
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete this message for good?" in flat_text(app)
        assert "cannot be undone" in flat_text(app)
        assert visible(app, target)  # type: ignore[arg-type]
        await pilot.press("n")
        await settle(pilot, lambda: app.screen is main)
        assert visible(app, target)  # type: ignore[arg-type]
        assert main.message_list.row_count == 3
        # Two marked: one question for both; yes deletes them.
        await pilot.press("space", "space", "d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete 2 messages for good?" in flat_text(app)
        await pilot.press("y")
        await settle(pilot, lambda: app.screen is main)
        assert main.message_list.row_count == 1
        assert sum(visible(app, mid) for mid in ids) == 1
        kinds = [op.kind for op in app.store.pending_ops("personal")]
        assert kinds.count("expunge") == 2


async def test_deleting_outside_trash_does_not_ask(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = app.main
        assert main is not None
        target = main.message_list.cursor_id
        await pilot.press("d")
        await settle(pilot)
        assert app.screen is main
        moved = app.store.message(target)  # type: ignore[arg-type]
        assert moved is not None and moved.folder == "Trash"


async def test_the_viewer_asks_too_and_moves_on_after_yes(demo_root: Path) -> None:
    fill_trash(demo_root)
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = open_trash(app)
        await settle(pilot, lambda: main.message_list.row_count == 3)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ViewerScreen))
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        first = viewer.message_id
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is viewer)
        assert viewer.message_id == first and visible(app, first)
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await settle(pilot, lambda: app.screen is viewer and viewer.message_id != first)
        assert not visible(app, first)
        assert main.message_list.row_count == 2


async def test_an_account_without_trash_asks_before_expunging(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store.open(root) as store:
        inbox = store.ensure_folder("local", FolderInfo("INBOX", "/", FolderRole.INBOX))
        [mid] = store.add_messages(
            inbox.id, [NewMessage(1, Flags(seen=True), 100, None, raw_message(1), True)]
        )
    app = TuimailApp(None, root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = app.main
        assert main is not None and main.message_list.cursor_id == mid
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "without a Trash folder" in flat_text(app)
        await pilot.press("y")
        await settle(pilot, lambda: app.screen is main)
        assert main.message_list.row_count == 0
        assert [op.kind for op in app.store.pending_ops("local")] == ["expunge"]


def test_for_good_names_only_what_cannot_be_undone(demo_root: Path) -> None:
    in_trash = fill_trash(demo_root, 2)
    with Store.open(demo_root) as store:
        inbox = store.folder("personal", "INBOX")
        assert inbox is not None
        elsewhere = store.list_ids(inbox.id)[:2]
        actions = Actions(store)
        assert actions.for_good([*elsewhere, *in_trash]) == in_trash
        assert actions.for_good(elsewhere) == []
        change = actions.delete([*elsewhere, *in_trash])
        assert "for good" in change.description and change.undo is None
