"""POP3 download against the real Dovecot: initial and incremental download, delete
policies, interruption at every step (a killed process and a dropped connection), and
certificates that do not verify."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers.dovecot import DovecotServer, User
from store_helpers import RecordingHelper, full_message, record_helpers

from tuimail.config import AccountConfig, IncomingConfig
from tuimail.errors import AuthError, NetworkError, TLSError
from tuimail.models import Protocol, TLSMode
from tuimail.secrets import Secret
from tuimail.store import Store
from tuimail.sync import helper, pop3_engine
from tuimail.sync.pop3_engine import Pop3Session
from tuimail.sync.session import SyncProgress, SyncSummary

pytestmark = pytest.mark.servers

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def pop3_account(
    server: DovecotServer,
    user: User,
    *,
    tls: TLSMode = TLSMode.IMPLICIT,
    ca_file: Path | str | None = "test",
    name: str = "pop",
    **options: Any,
) -> AccountConfig:
    incoming = IncomingConfig(
        host=server.host,
        port=server.pop3s_port if tls is TLSMode.IMPLICIT else server.pop3_port,
        tls=tls,
        username=user.name,
        ca_file=server.ca_file if ca_file == "test" else ca_file,  # type: ignore[arg-type]
        protocol=Protocol.POP3,
        timeout=10.0,
        **options,
    )
    return AccountConfig(name=name, address=user.address, incoming=incoming)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


def sync(
    account: AccountConfig,
    store: Store,
    user: User,
    clock: Callable[[], datetime] | None = None,
    **kwargs: Any,
) -> SyncSummary:
    session = Pop3Session(
        account, store, password=Secret(user.password), clock=clock or Clock(), **kwargs
    )
    try:
        session.connect()
        return session.sync(None, lambda p: None)
    finally:
        session.close()


def subjects(store: Store, account: str = "pop") -> list[str]:
    return sorted(m.envelope.subject for m in store.list_messages(account=account))


def numbered(numbers: range | list[int]) -> list[str]:
    return sorted(f"Message number {n}" for n in numbers)


def on_server(server: DovecotServer, user: User) -> int:
    return len(list(server.messages(user)))


def deliver(server: DovecotServer, user: User, numbers: range) -> None:
    server.deliver_many(user, [full_message(n) for n in numbers])


# ----------------------------------------------------------------------------- downloads


@pytest.mark.parametrize("tls", [TLSMode.IMPLICIT, TLSMode.STARTTLS])
def test_initial_download(
    dovecot: DovecotServer, mail_user: User, store: Store, tls: TLSMode
) -> None:
    deliver(dovecot, mail_user, range(30))
    since = dovecot.log_size()
    progress: list[SyncProgress] = []
    session = Pop3Session(
        pop3_account(dovecot, mail_user, tls=tls), store, password=Secret(mail_user.password)
    )
    session.connect()
    summary = session.sync(None, progress.append)
    session.close()
    assert summary.new == 30 and summary.folders[0].warnings == ()
    assert subjects(store) == numbered(range(30))
    inbox = store.folder("pop", "INBOX")
    assert inbox is not None and inbox.total == inbox.unread == 30
    assert all(m.has_body for m in store.list_messages(account="pop"))
    assert on_server(dovecot, mail_user) == 30  # leave_on_server is the default
    assert progress[-1].done == progress[-1].total == 30
    assert [r.tls for r in dovecot.logins(mail_user, since, wait_for=1)] == [True]


def test_message_bytes_arrive_exactly(
    dovecot: DovecotServer, mail_user: User, store: Store
) -> None:
    tricky = (
        b"From: a@example.org\r\nSubject: dots\r\nMessage-ID: <dots@x>\r\n\r\n"
        b".\r\n..\r\n.leading dot\r\n" + b"long line " * 2000 + b"\r\n\r\n.\r\nend\r\n"
    )
    dovecot.deliver(mail_user, tricky)
    sync(pop3_account(dovecot, mail_user), store, mail_user)
    [message] = store.list_messages(account="pop")
    assert store.raw(message.id) == tricky


def test_incremental_download_fetches_only_new(
    dovecot: DovecotServer, mail_user: User, store: Store
) -> None:
    account = pop3_account(dovecot, mail_user)
    deliver(dovecot, mail_user, range(10))
    assert sync(account, store, mail_user).new == 10
    deliver(dovecot, mail_user, range(10, 15))
    since = dovecot.log_size()
    assert sync(account, store, mail_user).new == 5
    assert sync(account, store, mail_user).new == 0
    assert subjects(store) == numbered(range(15))
    # Only the 5 new messages were retrieved (Dovecot logs retr=COUNT/BYTES at logout).
    log = dovecot.log_since(since)
    assert "retr=5/" in log and "retr=0/" in log


def test_leave_on_server_false_deletes_after_storing(
    dovecot: DovecotServer, mail_user: User, store: Store
) -> None:
    account = pop3_account(dovecot, mail_user, leave_on_server=False)
    deliver(dovecot, mail_user, range(12))
    assert sync(account, store, mail_user).new == 12
    assert on_server(dovecot, mail_user) == 0
    assert store.pop3_seen("pop") == {}  # deleted on the server: records forgotten
    deliver(dovecot, mail_user, range(12, 14))
    assert sync(account, store, mail_user).new == 2
    assert subjects(store) == numbered(range(14))
    assert on_server(dovecot, mail_user) == 0


def test_delete_after_days(dovecot: DovecotServer, mail_user: User, store: Store) -> None:
    account = pop3_account(dovecot, mail_user, delete_after_days=7)
    clock = Clock()
    deliver(dovecot, mail_user, range(4))
    assert sync(account, store, mail_user, clock).new == 4
    clock.now = T0 + timedelta(days=3)
    deliver(dovecot, mail_user, range(4, 6))
    assert sync(account, store, mail_user, clock).new == 2
    assert on_server(dovecot, mail_user) == 6
    clock.now = T0 + timedelta(days=6, hours=23)
    sync(account, store, mail_user, clock)
    assert on_server(dovecot, mail_user) == 6
    clock.now = T0 + timedelta(days=7)  # the first four are due, the last two not yet
    assert sync(account, store, mail_user, clock).new == 0
    assert on_server(dovecot, mail_user) == 2
    clock.now = T0 + timedelta(days=10)
    sync(account, store, mail_user, clock)
    assert on_server(dovecot, mail_user) == 0
    assert subjects(store) == numbered(range(6))  # all kept locally


def test_oversize_message_is_left_on_the_server_and_the_rest_download(
    dovecot: DovecotServer, mail_user: User, store: Store
) -> None:
    account = pop3_account(dovecot, mail_user, max_message_size=20_000, leave_on_server=False)
    deliver(dovecot, mail_user, range(2))
    dovecot.deliver(mail_user, full_message(99, body="x" * 30_000 + "\r\n"))
    deliver(dovecot, mail_user, range(2, 4))
    summary = sync(account, store, mail_user)
    assert summary.new == 4
    [warning] = summary.folders[0].warnings
    assert "larger than max_message_size" in warning
    assert subjects(store) == numbered(range(4))
    assert on_server(dovecot, mail_user) == 1  # only the big one stays


def test_wrong_password(dovecot: DovecotServer, mail_user: User, store: Store) -> None:
    session = Pop3Session(pop3_account(dovecot, mail_user), store, password=Secret("wrong"))
    with pytest.raises(AuthError, match="refused the login"):
        session.connect()


def test_password_from_the_environment(
    dovecot: DovecotServer, mail_user: User, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUIMAIL_PASSWORD_POP", mail_user.password)
    deliver(dovecot, mail_user, range(1))
    session = Pop3Session(pop3_account(dovecot, mail_user), store)
    session.connect()
    assert session.sync(None, lambda p: None).new == 1
    session.close()


# ----------------------------------------------------------------------------- certificates


@pytest.mark.parametrize("tls", [TLSMode.IMPLICIT, TLSMode.STARTTLS])
def test_certificate_that_does_not_verify_is_refused(
    dovecot: DovecotServer, mail_user: User, store: Store, tls: TLSMode
) -> None:
    # Without the test CA as ca_file, Dovecot's certificate chains to nothing we trust.
    since = dovecot.log_size()
    account = pop3_account(dovecot, mail_user, tls=tls, ca_file=None)
    session = Pop3Session(account, store, password=Secret(mail_user.password))
    with pytest.raises(TLSError, match="could not be verified"):
        session.connect()
    assert dovecot.logins(mail_user, since) == []


# ----------------------------------------------------------------------------- interruption


class Crash(BaseException):
    """Stands for the process dying at a checkpoint (in-process variant)."""


def killer(step: str, after: int) -> Callable[[str], None]:
    """A checkpoint that SIGKILLs the process the `after`-th time `step` is reached."""
    count = 0

    def checkpoint(reached: str) -> None:
        nonlocal count
        if reached == step:
            count += 1
            if count >= after:
                os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


def run_killed(account: AccountConfig, store_root: Path, user: User, step: str, after: int) -> int:
    """Sync in a child process that is killed at `step`; returns its exit code."""
    ctx = multiprocessing.get_context("fork")

    def child() -> None:
        with Store.open(store_root) as s:
            session = Pop3Session(
                account, s, password=Secret(user.password), checkpoint=killer(step, after)
            )
            session.connect()
            session.sync(None, lambda p: None)
        os._exit(0)

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(60)
    assert proc.exitcode is not None
    return proc.exitcode


@pytest.mark.parametrize(
    ("step", "after", "leave"),
    [
        # mid-download: some batches stored, the current one not
        ("retrieved", 7, False),
        ("retrieved", 7, True),
        # after a batch is durably stored, before any DELE
        ("stored", 1, False),
        ("stored", 1, True),
        # after the last batch, before DELE
        ("stored", 3, False),
        # after DELE, before QUIT: the server must undo the DELEs
        ("deleted", 1, False),
    ],
)
def test_killed_at_any_step_then_rerun_gives_the_exact_set(
    dovecot: DovecotServer,
    mail_user: User,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    after: int,
    leave: bool,
) -> None:
    monkeypatch.setattr(pop3_engine, "BATCH_MESSAGES", 5)
    account = pop3_account(dovecot, mail_user, leave_on_server=leave)
    deliver(dovecot, mail_user, range(15))
    root = tmp_path / "store"
    assert run_killed(account, root, mail_user, step, after) == -signal.SIGKILL
    if step == "deleted":
        assert on_server(dovecot, mail_user) == 15  # no QUIT: DELEs rolled back
    with Store.open(root) as s:
        sync(account, s, mail_user)
        assert subjects(s) == numbered(range(15))
        ids = [m.envelope.message_id for m in s.list_messages(account="pop")]
        assert len(ids) == len(set(ids)) == 15
        inbox = s.folder("pop", "INBOX")
        assert inbox is not None and inbox.total == 15
        # Every indexed message has exactly one file, and there are no strays.
        files = list((root / "maildir").rglob("cur/*"))
        assert len(files) == 15
    assert on_server(dovecot, mail_user) == (15 if leave else 0)


def test_dropped_connection_mid_retr_then_rerun(
    dovecot: DovecotServer,
    mail_user: User,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pop3_engine, "BATCH_MESSAGES", 2)
    account = pop3_account(dovecot, mail_user, leave_on_server=False)
    deliver(dovecot, mail_user, range(4))
    # 24 MB more than socket buffers hold: the server is still sending when it is kicked.
    big = [full_message(n, body=("z" * 998 + "\r\n") * 3000) for n in range(4, 12)]
    dovecot.deliver_many(mail_user, big)
    kicked = False

    def kick(reached: str) -> None:
        nonlocal kicked
        if reached == "stored" and not kicked:
            kicked = True
            dovecot.kick(mail_user)

    with pytest.raises(NetworkError):
        sync(account, store, mail_user, checkpoint=kick)
    assert 2 <= len(subjects(store)) < 12
    assert on_server(dovecot, mail_user) == 12  # nothing deleted without QUIT
    sync(account, store, mail_user)
    assert subjects(store) == numbered(range(12))
    assert on_server(dovecot, mail_user) == 0
    assert len(list((store.root / "maildir").rglob("cur/*"))) == 12


def test_crash_after_store_before_dele_in_process(
    dovecot: DovecotServer, mail_user: User, store: Store
) -> None:
    account = pop3_account(dovecot, mail_user, leave_on_server=False)
    deliver(dovecot, mail_user, range(6))

    def crash(reached: str) -> None:
        if reached == "deleted":
            raise Crash

    with pytest.raises(Crash):
        sync(account, store, mail_user, checkpoint=crash)
    assert on_server(dovecot, mail_user) == 6
    summary = sync(account, store, mail_user)
    assert summary.new == 0
    assert on_server(dovecot, mail_user) == 0
    assert subjects(store) == numbered(range(6))


# ----------------------------------------------------------------------------- parallel parsing


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> list[RecordingHelper]:
    return record_helpers(monkeypatch, pop3_engine, "PARALLEL_INDEX_MIN")


def test_big_downloads_are_prepared_in_a_helper_process(
    dovecot: DovecotServer, mail_user: User, store: Store, small_batches: list[RecordingHelper]
) -> None:
    deliver(dovecot, mail_user, range(13))
    assert sync(pop3_account(dovecot, mail_user, leave_on_server=False), store, mail_user).new == 13
    [helper] = small_batches
    assert helper.started and helper._proc is None  # used, then stopped
    assert subjects(store) == numbered(range(13))
    messages = store.list_messages(account="pop")
    assert all(m.preview and m.has_body for m in messages)
    assert store.search("body message") and len(store.search("subject:number")) == 13
    assert on_server(dovecot, mail_user) == 0
    box = store.root / "maildir"
    assert len(list(box.rglob("cur/*"))) == 13 and list(box.rglob("tmp/*")) == []


def test_a_helper_that_dies_falls_back_to_inline(
    dovecot: DovecotServer,
    mail_user: User,
    store: Store,
    small_batches: list[RecordingHelper],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(helper, "_HELPER", "import sys; sys.stdin.read(10); sys.exit(3)")
    deliver(dovecot, mail_user, range(10))
    assert sync(pop3_account(dovecot, mail_user), store, mail_user).new == 10
    assert small_batches[0].started and small_batches[0]._proc is None
    assert subjects(store) == numbered(range(10))


# ----------------------------------------------------------------------------- session life


def test_a_stale_connection_from_connect_is_replaced(
    dovecot: DovecotServer, mail_user: User, store: Store
) -> None:
    deliver(dovecot, mail_user, range(3))
    since = dovecot.log_size()
    session = Pop3Session(
        pop3_account(dovecot, mail_user), store, password=Secret(mail_user.password)
    )
    session.connect()
    session._opened_at -= pop3_engine.FRESH_FOR + 1  # as if the sync came much later
    assert session.sync(None, lambda p: None).new == 3
    session.close()
    assert len(dovecot.logins(mail_user, since, wait_for=2)) == 2


def test_no_connection_is_held_while_waiting(
    dovecot: DovecotServer, mail_user: User, store: Store
) -> None:
    import threading

    session = Pop3Session(
        pop3_account(dovecot, mail_user), store, password=Secret(mail_user.password)
    )
    session.connect()
    assert session._client is not None
    stop = threading.Event()
    stop.set()
    assert session.wait_for_changes(10, stop) is False
    assert session._client is None


def test_the_account_worker_drives_a_pop3_account(
    dovecot: DovecotServer, mail_user: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuimail.account.worker import Reply, SyncRequest, run_requests

    monkeypatch.setenv("TUIMAIL_PASSWORD_POP", mail_user.password)
    deliver(dovecot, mail_user, range(5))
    events: list[object] = []
    account = pop3_account(dovecot, mail_user, leave_on_server=False)
    [reply] = run_requests(account, tmp_path / "store", [SyncRequest()], events.append)
    assert isinstance(reply, Reply) and reply.ok, reply.error
    assert reply.result.new == 5
    assert on_server(dovecot, mail_user) == 0
    with Store.open(tmp_path / "store") as s:
        assert subjects(s) == numbered(range(5))


def test_a_failed_sync_leaves_no_prepared_files_behind(
    dovecot: DovecotServer, mail_user: User, store: Store, small_batches: list[RecordingHelper]
) -> None:
    deliver(dovecot, mail_user, range(13))
    account = pop3_account(dovecot, mail_user, leave_on_server=False)
    stored = 0

    def crash(reached: str) -> None:
        nonlocal stored
        if reached == "stored":
            stored += 1
            if stored == 1:
                raise Crash  # a batch is in the helper right now

    with pytest.raises(Crash):
        sync(account, store, mail_user, checkpoint=crash)
    box = store.root / "maildir"
    assert list(box.rglob("tmp/*")) == []
    assert len(list(box.rglob("cur/*"))) == len(subjects(store)) == 4
    assert on_server(dovecot, mail_user) == 13
    sync(account, store, mail_user)
    assert subjects(store) == numbered(range(13))
    assert len(list(box.rglob("cur/*"))) == 13 and list(box.rglob("tmp/*")) == []
    assert on_server(dovecot, mail_user) == 0
