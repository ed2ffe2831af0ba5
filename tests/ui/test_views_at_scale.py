"""The list's views on the store's bulk reads: the unified inbox in one query and any sort,
threads laid out by a worker for large lists, kept on screen across a collapse or a delete,
and a sync's refresh read and threaded off the UI thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from ui_support import screen_lines, settle

from tuimail.models import Flags
from tuimail.store.store import Store
from tuimail.store.types import NewMessage, SortKey
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens import main as main_module
from tuimail.ui.screens.main import MainScreen


def main_of(app: TuimailApp) -> MainScreen:
    assert app.main is not None
    return app.main


async def test_the_unified_inbox_sorts_by_any_key_across_accounts(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = main_of(app)
        view = main.view
        assert view is not None and view.kind == "unified" and len(view.folder_ids) == 2
        await pilot.press("o")  # by sender, A to Z
        await settle(pilot)
        ml = main.message_list
        assert list(ml.ids) == app.store.list_ids(view.folder_ids, SortKey.FROM, False)
        accounts = {s.account for s in app.store.summaries(list(ml.ids))}
        assert accounts == {"personal", "work"}


@pytest.fixture
def small_sync_limit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every list counts as large (threaded by a worker); records which thread read rows."""
    monkeypatch.setattr(main_module, "SYNC_THREAD_LIMIT", 5)
    readers: list[str] = []
    real = main_module.load_thread_rows

    def recording(*args: object) -> object:
        readers.append(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(main_module, "load_thread_rows", recording)
    return readers


async def test_large_lists_are_threaded_by_a_worker_and_stay_threaded(
    demo_root: Path, small_sync_limit: list[str]
) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        main = main_of(app)
        ml = main.message_list
        await settle(pilot, lambda: bool(main.thread_of))
        assert small_sync_limit and threading.main_thread().name not in small_sync_limit
        prefixes = ml.prefixes
        assert prefixes is not None
        reply = next(i for i, p in enumerate(prefixes) if p)  # a message inside a thread
        ml.move_cursor(reply)
        key = main.thread_of[ml.ids[reply]]
        size = sum(1 for k in main.thread_of.values() if k == key)
        reads = len(small_sync_limit)
        await pilot.press("minus")
        assert ml.prefixes is not None  # the old tree stays until the new one is ready
        await settle(pilot, lambda: f"[{size}] " in (ml.prefixes or ()))
        assert len(small_sync_limit) == reads  # re-laid out from cached rows
        await pilot.press("minus")
        await settle(pilot, lambda: f"[{size}] " not in (ml.prefixes or ()))
        # A delete drops the row from the tree on screen at once; no flat list meanwhile.
        before = ml.row_count
        gone = ml.cursor_id
        await pilot.press("d")
        assert ml.prefixes is not None and gone not in ml.ids
        assert ml.row_count == before - 1
        await settle(pilot)
        assert main.thread_of and gone not in main.thread_of


@dataclass(frozen=True)
class Synced:
    account: str
    result: object = "synced"


async def test_a_sync_refresh_reads_and_threads_off_the_ui_thread(
    demo_root: Path, small_sync_limit: list[str]
) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        main = main_of(app)
        await settle(pilot, lambda: bool(main.thread_of))
        parent = app.store.message(main.message_list.ids[0])
        assert parent is not None and parent.envelope.message_id
        raw = (
            "From: Zoë <zoe@celik.example>\r\nTo: alex@example.org\r\n"
            f"Subject: Re: {parent.envelope.subject}\r\n"
            "Date: Wed, 15 Jan 2025 11:59:30 +0000\r\nMessage-ID: <late-reply@celik.example>\r\n"
            f"In-Reply-To: {parent.envelope.message_id}\r\n"
            f"References: {parent.envelope.message_id}\r\n\r\nYes!\r\n"
        ).encode()
        found: list[int] = []

        def sync() -> None:
            with Store.open(demo_root) as store:
                inbox = store.folder(parent.account, parent.folder)
                assert inbox is not None
                found.extend(
                    store.add_messages(
                        inbox.id, [NewMessage(77_777, Flags(), len(raw), None, raw, True)]
                    )
                )
            app.events(Synced(parent.account))

        small_sync_limit.clear()
        worker = threading.Thread(target=sync, name="account-worker")
        worker.start()
        worker.join()
        await settle(pilot, lambda: found[0] in main.thread_of)
        assert main.thread_of[found[0]] == main.thread_of[parent.id]
        assert small_sync_limit and threading.main_thread().name not in small_sync_limit


async def test_a_sync_refresh_runs_no_query_on_the_ui_thread(demo_root: Path) -> None:
    """Each query would hand the GIL to the sync's threads at every row: the refresh reads
    ids, threads, folder counts and the rows coming on screen in its worker."""
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        main = main_of(app)
        await settle(pilot, lambda: bool(main.thread_of))
        await settle(pilot)
        queries: list[str] = []
        app.store._conn.set_trace_callback(queries.append)  # the UI thread's connection
        raw = (
            b"From: Ann <ann@example.net>\r\nTo: alex@example.org\r\nSubject: Arrived\r\n"
            b"Date: Wed, 15 Jan 2025 11:59:59 +0000\r\nMessage-ID: <arrived@example.net>\r\n"
            b"\r\nHi\r\n"
        )
        found: list[int] = []

        def sync() -> None:
            with Store.open(demo_root) as store:
                inbox = store.folder("personal", "INBOX")
                assert inbox is not None
                found.extend(
                    store.add_messages(
                        inbox.id, [NewMessage(1, Flags(), len(raw), None, raw, True)]
                    )
                )
            app.events(Synced("personal"))

        worker = threading.Thread(target=sync)
        worker.start()
        worker.join()
        await settle(pilot, lambda: found[0] in main.message_list.ids)
        app.store._conn.set_trace_callback(None)
        assert found[0] in main.thread_of
        assert queries == []
        await settle(pilot)  # the status line repaints
        unread = sum(f.unread for f in app.store.folders() if f.role.value == "inbox")
        assert f"{unread} unread" in screen_lines(app)[-2]  # counts read by the worker
        assert all(len(w.description) < 80 for w in app.workers)  # no repr() of 100k ids


async def test_refreshes_run_one_at_a_time_and_none_is_lost(
    demo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        main = main_of(app)
        await settle(pilot, lambda: bool(main.thread_of))
        started: list[int] = []
        real = MainScreen._read_for_refresh

        def counting(self: MainScreen, *args: object) -> object:
            started.append(threading.get_ident())
            assert len(started) - len(finished) == 1  # never two at once
            try:
                return real(self, *args)  # type: ignore[arg-type]
            finally:
                finished.append(1)

        finished: list[int] = []
        monkeypatch.setattr(MainScreen, "_read_for_refresh", counting)
        with Store.open(demo_root) as store:
            inbox = store.folder("work", "INBOX")
            assert inbox is not None
            for n in range(3):  # three syncs in quick succession
                raw = (
                    f"From: b@example.net\r\nSubject: burst {n}\r\nMessage-ID: <b{n}@x>\r\n"
                    "Date: Wed, 15 Jan 2025 11:58:00 +0000\r\n\r\nx\r\n"
                ).encode()
                [mid] = store.add_messages(
                    inbox.id, [NewMessage(500 + n, Flags(), len(raw), None, raw, True)]
                )
                main.store_changed()
        # The first refresh, then (after a pause) one for all that came meanwhile.
        await settle(pilot, lambda: len(started) >= 2 and not main._refreshing)
        assert mid in main.message_list.ids
        assert len(started) == 2
