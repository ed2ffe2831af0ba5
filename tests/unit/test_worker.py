"""The account worker: one reply per request, events in order, errors and reconnection.

The protocol engines are tested against Dovecot; here a scripted session stands in for one
so the worker's own rules (threading, replies, backoff) are tested in isolation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tuimail.account import worker as w
from tuimail.config import AccountConfig
from tuimail.errors import AuthError, NetworkError
from tuimail.sync.session import FolderResult, ProgressFn, SyncProgress, SyncSummary


class ScriptedSession:
    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])  # exceptions to raise from connect/sync, in order
        self.calls: list[str] = []
        self.thread_names: set[str] = set()
        self.changes = threading.Event()

    def _step(self, name: str) -> None:
        self.calls.append(name)
        self.thread_names.add(threading.current_thread().name)
        if self.script and self.script[0][0] == name:
            _, exc = self.script.pop(0)
            raise exc

    def connect(self) -> None:
        self._step("connect")

    def close(self) -> None:
        self.calls.append("close")

    def sync(self, folders: Sequence[str] | None, progress: ProgressFn) -> SyncSummary:
        self._step("sync")
        progress(SyncProgress("a", "INBOX", "headers", 1, 1))
        return SyncSummary("a", (FolderResult("INBOX", new=2),))

    def fetch_body(self, message_id: int) -> None:
        self._step("fetch_body")

    def push_pending(self, progress: ProgressFn) -> int:
        self._step("push")
        return 3

    def wait_for_changes(self, timeout: float, stop: threading.Event) -> bool:
        self.calls.append("wait")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.changes.is_set():
                self.changes.clear()
                return True
            if stop.wait(0.02):
                return False
        return False


class NullStore:
    def close(self) -> None:
        pass


ACCOUNT = AccountConfig(name="a", address="a@example.com")


def make_worker(
    session: ScriptedSession, events: list[w.Event], watch: bool = False
) -> w.AccountWorker:
    return w.AccountWorker(
        ACCOUNT,
        Path("/nonexistent"),
        events.append,
        watch=watch,
        session_factory=lambda account, store: session,
        open_store=lambda root: NullStore(),  # type: ignore[arg-type,return-value]
    )


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def replies(events: list[w.Event]) -> list[w.Reply]:
    return [e for e in events if isinstance(e, w.Reply)]


def test_each_request_gets_exactly_one_reply_in_order() -> None:
    session = ScriptedSession()
    events: list[w.Event] = []
    worker = make_worker(session, events).start()
    ids = [
        worker.submit(w.SyncRequest()),
        worker.submit(w.PushRequest()),
        worker.submit(w.FetchBodyRequest(message_id=7)),
    ]
    wait_for(lambda: len(replies(events)) == 3)
    worker.stop()
    assert [r.request_id for r in replies(events)] == ids
    assert all(r.ok for r in replies(events))
    assert replies(events)[1].result == 3
    assert session.calls[:4] == ["connect", "sync", "push", "fetch_body"]
    assert session.thread_names == {"account-a"}  # the connection is only touched by its thread
    kinds = [type(e).__name__ for e in events]
    assert "ProgressEvent" in kinds and "FolderSyncedEvent" in kinds
    assert any(isinstance(e, w.NewMailEvent) and e.count == 2 for e in events)
    assert isinstance(events[-1], w.StatusEvent) and events[-1].state == "stopped"
    assert session.calls[-1] == "close"


def test_network_error_replies_failure_then_reconnects() -> None:
    session = ScriptedSession([("sync", NetworkError("cut"))])
    events: list[w.Event] = []
    worker = make_worker(session, events).start()
    worker.submit(w.SyncRequest())
    worker.submit(w.SyncRequest())
    wait_for(lambda: len(replies(events)) == 2)
    worker.stop()
    first, second = replies(events)
    assert not first.ok and isinstance(first.error, NetworkError)
    assert second.ok
    assert session.calls.count("connect") == 2  # dropped and reconnected
    assert any(isinstance(e, w.StatusEvent) and e.state == "offline" for e in events)


def test_auth_error_is_reported_with_its_message() -> None:
    session = ScriptedSession([("connect", AuthError("wrong password for a"))])
    events: list[w.Event] = []
    worker = make_worker(session, events).start()
    worker.submit(w.SyncRequest())
    wait_for(lambda: len(replies(events)) == 1)
    worker.stop()
    (r,) = replies(events)
    assert not r.ok and isinstance(r.error, AuthError) and "wrong password" in r.error.message
    assert any(isinstance(e, w.ErrorEvent) for e in events)


def test_watch_mode_syncs_on_server_change_and_stops_promptly() -> None:
    session = ScriptedSession()
    events: list[w.Event] = []
    worker = make_worker(session, events, watch=True).start()
    wait_for(lambda: "wait" in session.calls)  # first sync done, now waiting
    syncs = session.calls.count("sync")
    session.changes.set()
    wait_for(lambda: session.calls.count("sync") == syncs + 1)
    # a request while waiting is served promptly
    rid = worker.submit(w.PushRequest())
    wait_for(lambda: any(r.request_id == rid for r in replies(events)), timeout=2.0)
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 2.0
    assert not worker.alive


def test_a_broken_listener_does_not_kill_the_worker() -> None:
    session = ScriptedSession()
    seen: list[w.Event] = []

    def listener(event: w.Event) -> None:
        seen.append(event)
        if isinstance(event, w.ProgressEvent):
            raise RuntimeError("listener bug")

    worker = w.AccountWorker(
        ACCOUNT,
        Path("/x"),
        listener,
        session_factory=lambda a, s: session,
        open_store=lambda root: NullStore(),
    )  # type: ignore[arg-type,return-value]
    worker.start()
    worker.submit(w.SyncRequest())
    wait_for(lambda: len(replies(seen)) == 1)
    worker.stop()
    assert replies(seen)[0].ok


@pytest.mark.parametrize("n", [1, 5])
def test_run_requests_collects_all_replies(n: int) -> None:
    session = ScriptedSession()
    events: list[w.Event] = []
    got = w.run_requests(
        ACCOUNT,
        Path("/x"),
        [w.SyncRequest() for _ in range(n)],
        events.append,
        session_factory=lambda a, s: session,
        open_store=lambda root: NullStore(),
    )  # type: ignore[arg-type,return-value]
    assert len(got) == n and all(r.ok for r in got)
