"""The IMAP sync engine against the real Dovecot: both directions, all three sync modes
(QRESYNC, CONDSTORE only, neither), resets, faults."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from servers.dovecot import CAPABILITY_WITHOUT_CONDSTORE, DovecotServer, User
from store_helpers import RecordingHelper, record_helpers

from tuimail.backends.imap import FLAG_ITEMS, ImapConnection
from tuimail.config import AccountConfig, IncomingConfig
from tuimail.errors import NetworkError
from tuimail.models import Flags, TLSMode
from tuimail.store import Store
from tuimail.sync import engine as engine_mod
from tuimail.sync import helper as helper_mod
from tuimail.sync.engine import ImapSession
from tuimail.sync.session import SyncProgress, SyncSummary

pytestmark = pytest.mark.servers

ACCOUNT = "acct"


def message(i: int, subject: str | None = None, body: bytes = b"", date: str = "") -> bytes:
    date = date or "Mon, 01 Jan 2024 10:00:00 +0000"
    text = body or b"Body of message %d.\r\n" % i
    return (
        b"Date: %s\r\nFrom: Sender %d <sender%d@example.org>\r\nTo: me@tuimail.test\r\n"
        b"Message-ID: <msg%d@example.org>\r\nSubject: %s\r\n\r\n%s"
        % (date.encode(), i, i, i, (subject or f"Message {i}").encode(), text)
    )


@dataclass
class Env:
    server: DovecotServer
    user: User
    store: Store
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    def account(
        self, *, bodies: str = "all", port: int | None = None, **kw: object
    ) -> AccountConfig:
        incoming = IncomingConfig(
            host="127.0.0.1",
            port=port or self.server.imaps_port,
            tls=kw.pop("tls", TLSMode.IMPLICIT),  # type: ignore[arg-type]
            username=self.user.name,
            ca_file=self.server.ca_file,
            timeout=10.0,
            bodies=bodies,
            **kw,  # type: ignore[arg-type]
        )
        return AccountConfig(name=ACCOUNT, address=self.user.address, incoming=incoming)

    def session(self, **kw: object) -> ImapSession:
        session = ImapSession(self.account(**kw), self.store)  # type: ignore[arg-type]
        session.connect()
        return session

    def sync(self, **kw: object) -> SyncSummary:
        session = self.session(**kw)
        try:
            return session.sync(None, lambda p: None)
        finally:
            session.close()

    @contextlib.contextmanager
    def other_client(self, folder: str = "INBOX") -> Iterator[IMAPClient]:
        """Another mail client changing things on the server."""
        ctx = ssl.create_default_context(cafile=str(self.server.ca_file))
        client = IMAPClient("127.0.0.1", self.server.imaps_port, ssl_context=ctx, timeout=10)
        client.login(self.user.name, self.user.password)
        client.select_folder(folder)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def local(self, folder: str = "INBOX") -> dict[int, Flags]:
        row = self.store.folder(ACCOUNT, folder)
        assert row is not None
        return self.store.uid_flags(row.id)

    def subjects(self, folder: str = "INBOX") -> list[str]:
        return sorted(m.envelope.subject for m in self.store.list_messages(ACCOUNT, folder))

    def server_uids(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.other_client(folder) as c:
            uids = c.search("ALL")
            if not uids:
                return {}
            return {uid: d[b"FLAGS"] for uid, d in c.fetch(uids, ["FLAGS"]).items()}


SERVER_KINDS = ["qresync", "condstore", "plain"]


@pytest.fixture(scope="module")
def condstore_only(test_ca: object) -> Iterator[DovecotServer]:
    """A Dovecot advertising CONDSTORE but not QRESYNC (the middle sync mode)."""
    server = DovecotServer(test_ca, capability_override=CAPABILITY_WITHOUT_CONDSTORE + " CONDSTORE")  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def no_move(test_ca: object) -> Iterator[DovecotServer]:
    """A Dovecot without MOVE (nor CONDSTORE/QRESYNC): moves go by COPY + EXPUNGE."""
    caps = CAPABILITY_WITHOUT_CONDSTORE.replace(" MOVE", "")
    server = DovecotServer(test_ca, capability_override=caps)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    kind = getattr(request, "param", "qresync")
    if kind == "qresync":
        server = request.getfixturevalue("dovecot")
    elif kind == "condstore":
        server = request.getfixturevalue("condstore_only")
    elif kind == "nomove":
        server = request.getfixturevalue("no_move")
    else:
        server = request.getfixturevalue("dovecot_no_condstore")
    user = server.add_user(f"u{time.monotonic_ns() % 10**10}", "secret-pw")
    monkeypatch.setenv("TUIMAIL_PASSWORD_ACCT", user.password)
    store = Store.open(tmp_path / "store")
    try:
        yield Env(server, user, store, tmp_path, monkeypatch)
    finally:
        store.close()


all_modes = pytest.mark.parametrize("env", SERVER_KINDS, indirect=True)


# ----------------------------------------------------------------------------- basics


@all_modes
def test_initial_and_incremental_sync(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(40)])
    summary = env.sync(bodies="none")
    inbox = next(f for f in summary.folders if f.folder == "INBOX")
    assert inbox.new == 40 and inbox.bodies == 0
    assert len(env.local()) == 40
    row = env.store.folder(ACCOUNT, "INBOX")
    assert row is not None and row.state.uidnext == 41 and row.total == 40
    # headers only: listed, but no body yet
    some = env.store.list_messages(ACCOUNT, "INBOX", limit=1)[0]
    assert some.envelope.subject.startswith("Message ")
    assert env.store.raw(some.id) is None
    # incremental: only the new ones
    env.server.deliver_many(env.user, [message(i) for i in range(40, 45)])
    summary = env.sync(bodies="none")
    inbox = next(f for f in summary.folders if f.folder == "INBOX")
    assert inbox.new == 5
    assert sorted(env.local()) == list(range(1, 46))
    # a resync with nothing new changes nothing
    summary = env.sync(bodies="none")
    assert all(f.new == f.changed == f.removed == 0 for f in summary.folders)


def test_folders_roles_and_changes(env: Env) -> None:
    env.server.create_folder(env.user, "Projects/Alpha")
    env.server.create_folder(env.user, "Entwürfe alt")
    env.sync(bodies="none")
    roles = {f.name: f.role.value for f in env.store.folders(ACCOUNT)}
    assert roles["INBOX"] == "inbox" and roles["Sent"] == "sent" and roles["Trash"] == "trash"
    assert roles["Junk"] == "junk" and roles["Drafts"] == "drafts" and roles["Archive"] == "archive"
    assert "Projects/Alpha" in roles and "Entwürfe alt" in roles  # modified UTF-7 decoded
    env.server.deliver(env.user, message(1), folder="Projects/Alpha")
    env.sync(bodies="none")
    assert env.subjects("Projects/Alpha") == ["Message 1"]
    # deleted and renamed on the server
    env.server.doveadm("mailbox", "delete", "-u", env.user.name, "Entwürfe alt")
    env.server.doveadm("mailbox", "rename", "-u", env.user.name, "Projects/Alpha", "Beta")
    env.sync(bodies="none")
    names = {f.name for f in env.store.folders(ACCOUNT)}
    assert "Entwürfe alt" not in names and "Projects/Alpha" not in names
    assert "Beta" in names
    assert env.subjects("Beta") == ["Message 1"]


def test_bodies_policies(env: Env) -> None:
    old = "Tue, 01 Jan 2019 10:00:00 +0000"
    recent = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(time.time() - 86400))
    env.server.deliver_many(env.user, [message(i, date=old) for i in range(3)])
    env.server.deliver_many(env.user, [message(i, date=recent) for i in range(3, 5)])
    env.sync(bodies="recent", recent_days=30)
    have = {
        m.envelope.subject: env.store.raw(m.id) is not None
        for m in env.store.list_messages(ACCOUNT, "INBOX")
    }
    assert have == {f"Message {i}": i >= 3 for i in range(5)}
    summary = env.sync(bodies="all")
    assert next(f for f in summary.folders if f.folder == "INBOX").bodies == 3
    for m in env.store.list_messages(ACCOUNT, "INBOX"):
        i = int(m.envelope.subject.split()[1])
        assert env.store.raw(m.id) == message(i, date=old if i < 3 else recent)


def test_fetch_body_on_demand(env: Env) -> None:
    env.server.deliver(env.user, message(7, body=b"the full text\r\n"))
    session = env.session(bodies="none")
    try:
        session.sync(None, lambda p: None)
        [m] = env.store.list_messages(ACCOUNT, "INBOX")
        assert env.store.raw(m.id) is None
        session.fetch_body(m.id)
        assert env.store.raw(m.id) == message(7, body=b"the full text\r\n")
    finally:
        session.close()


def test_malformed_message_is_listed_with_the_rest(env: Env) -> None:
    bad = (
        b"From: =?utf-8?b?////?= <\x00broken\r\nSubject: =?x-unknown?q?=ZZ?=\r\n"
        b"Content-Type: multipart/mixed; boundary=\r\nDate: not a date\r\n\r\n\xff\xfe--\r\n"
    )
    env.server.deliver_many(env.user, [message(1), bad, message(2)])
    env.sync(bodies="all")
    assert len(env.local()) == 3
    msgs = env.store.list_messages(ACCOUNT, "INBOX")
    assert {m.envelope.subject for m in msgs} >= {"Message 1", "Message 2"}


# ----------------------------------------------------------------------------- flags


@all_modes
def test_server_flag_changes_show_up(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(10)])
    env.sync(bodies="none")
    with env.other_client() as c:
        c.add_flags([1, 2], [b"\\Seen"])
        c.add_flags([3], [b"$Important", b"\\Flagged"])
        c.add_flags([4], [b"\\Seen"])
    env.sync(bodies="none")
    local = env.local()
    assert local[1].seen and local[2].seen and not local[5].seen
    assert local[3].flagged and local[3].keywords == {"$Important"}
    with env.other_client() as c:
        c.remove_flags([4], [b"\\Seen"])
        c.remove_flags([3], [b"$Important"])
    summary = env.sync(bodies="none")
    local = env.local()
    assert not local[4].seen and local[3].keywords == frozenset() and local[3].flagged
    assert next(f for f in summary.folders if f.folder == "INBOX").changed == 2


@all_modes
def test_local_flags_reach_the_server(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(5)])
    env.sync(bodies="none")
    ids = {m.uid: m.id for m in env.store.list_messages(ACCOUNT, "INBOX")}
    env.store.set_flags([ids[1], ids[2]], add=["seen", "$Work"])
    env.store.set_flags([ids[3]], add=["flagged"])
    summary = env.sync(bodies="none")
    assert summary.pushed == 3
    assert env.store.pending_ops(ACCOUNT) == []
    flags = env.server_uids()
    assert set(flags[1]) == {b"\\Seen", b"$Work"} and set(flags[2]) == {b"\\Seen", b"$Work"}
    assert b"\\Flagged" in flags[3]
    env.store.set_flags([ids[1]], remove=["$Work", "seen"])
    env.sync(bodies="none")
    assert env.server_uids()[1] == ()


@pytest.mark.parametrize("env", ["qresync", "condstore"], indirect=True)
def test_conflict_local_change_wins_for_its_flags_only(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(3)])
    with env.other_client() as c:
        c.add_flags([2], [b"$Old"])
    env.sync(bodies="none")
    ids = {m.uid: m.id for m in env.store.list_messages(ACCOUNT, "INBOX")}
    # Locally: 1 marked seen, $Old taken off 2. Meanwhile on the server (so our STORE with
    # UNCHANGEDSINCE meets [MODIFIED]): 1 flagged and marked unseen, 2 gets $New.
    env.store.set_flags([ids[1]], add=["seen"])
    env.store.set_flags([ids[2]], remove=["$Old"])
    with env.other_client() as c:
        c.add_flags([1], [b"\\Flagged"])
        c.add_flags([2], [b"$New"])
        c.add_flags([3], [b"\\Seen"])
    env.sync(bodies="none")
    server = env.server_uids()
    assert set(server[1]) == {b"\\Seen", b"\\Flagged"}  # ours and theirs
    assert set(server[2]) == {b"$New"}  # our removal of $Old wins, their $New stays
    assert set(server[3]) == {b"\\Seen"}
    local = env.local()
    assert local[1] == Flags(seen=True, flagged=True)
    assert local[2] == Flags(keywords=frozenset({"$New"}))
    assert local[3] == Flags(seen=True)
    assert env.store.pending_ops(ACCOUNT) == []


def test_failed_push_keeps_the_local_change(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(2)])
    env.sync(bodies="none")
    ids = {m.uid: m.id for m in env.store.list_messages(ACCOUNT, "INBOX")}
    env.store.set_flags([ids[1]], add=["seen"])
    # The server marks it flagged; our sync reads that before the change is pushed.
    with env.other_client() as c:
        c.add_flags([1], [b"\\Flagged"])
    session = env.session(bodies="none")
    try:
        # Flags only (no push): the pending change is re-applied on top of the server's.
        session._sync_folder("INBOX", env.store.pending_ops(ACCOUNT), lambda p: None)
        assert env.local()[1] == Flags(seen=True, flagged=True)
        assert len(env.store.pending_ops(ACCOUNT)) == 1
    finally:
        session.close()
    env.sync(bodies="none")
    assert set(env.server_uids()[1]) == {b"\\Seen", b"\\Flagged"}


# ----------------------------------------------------------------------------- moves, deletes


@pytest.mark.parametrize("env", [*SERVER_KINDS, "nomove"], indirect=True)
def test_local_move_and_delete_reach_the_server(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(6)])
    env.sync(bodies="all")
    ids = {m.uid: m.id for m in env.store.list_messages(ACCOUNT, "INBOX")}
    archive = env.store.folder(ACCOUNT, "Archive")
    assert archive is not None
    env.store.move([ids[1], ids[2]], archive.id)
    env.store.delete([ids[3]])
    env.sync(bodies="all")
    assert sorted(env.server_uids("INBOX")) == [4, 5, 6]
    assert len(env.server_uids("Archive")) == 2 and len(env.server_uids("Trash")) == 1
    assert env.subjects("Archive") == ["Message 0", "Message 1"]
    assert env.subjects("Trash") == ["Message 2"]
    # the moved rows carry their new server UIDs: no duplicates after another sync
    env.sync(bodies="all")
    assert len(env.store.list_messages(ACCOUNT, "Archive")) == 2
    assert sorted(env.local("Archive")) == sorted(env.server_uids("Archive"))
    # deleting in Trash expunges
    [trashed] = env.store.list_messages(ACCOUNT, "Trash")
    env.store.delete([trashed.id])
    env.sync(bodies="all")
    assert env.server_uids("Trash") == {} and env.local("Trash") == {}


@all_modes
def test_server_moves_and_expunges_show_up(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(6)])
    env.sync(bodies="none")
    with env.other_client() as c:
        c.move([1, 2], "Archive")
        c.delete_messages([3])
        c.expunge()
    summary = env.sync(bodies="none")
    assert sorted(env.local()) == [4, 5, 6]
    assert env.subjects("Archive") == ["Message 0", "Message 1"]
    assert next(f for f in summary.folders if f.folder == "INBOX").removed == 3


def test_move_of_a_message_deleted_on_the_server(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(2)])
    env.sync(bodies="none")
    ids = {m.uid: m.id for m in env.store.list_messages(ACCOUNT, "INBOX")}
    archive = env.store.folder(ACCOUNT, "Archive")
    assert archive is not None
    env.store.move([ids[1]], archive.id)
    with env.other_client() as c:
        c.delete_messages([1])
        c.expunge()
    summary = env.sync(bodies="none")
    assert env.store.pending_ops(ACCOUNT) == []
    assert env.store.list_messages(ACCOUNT, "Archive") == []
    assert env.server_uids("Archive") == {}
    assert sorted(env.local()) == [2]
    assert [m.uid for m in env.store.list_messages(ACCOUNT, "INBOX")] == [2]
    assert any("deleted on the server" in w for w in summary.warnings)


def test_append_reaches_the_server(env: Env) -> None:
    env.sync(bodies="all")
    drafts = env.store.folder(ACCOUNT, "Drafts")
    assert drafts is not None
    raw = message(99, subject="My draft")
    mid = env.store.append_local(drafts.id, raw, Flags(draft=True, seen=True))
    env.sync(bodies="all")
    assert env.store.pending_ops(ACCOUNT) == []
    server = env.server_uids("Drafts")
    assert len(server) == 1 and set(next(iter(server.values()))) == {b"\\Draft", b"\\Seen"}
    summary = env.store.message(mid)
    assert summary is not None and summary.uid == next(iter(server))
    env.sync(bodies="all")
    assert len(env.store.list_messages(ACCOUNT, "Drafts")) == 1


# ----------------------------------------------------------------------------- resets, faults


def test_uidvalidity_change_rebuilds_the_folder(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(5)])
    env.sync(bodies="all")
    ids = [m.id for m in env.store.list_messages(ACCOUNT, "INBOX")]
    env.store.set_flags(ids[:1], add=["flagged"])  # pending for an old UID
    env.server.reset_mailbox(env.user)
    env.server.deliver_many(env.user, [message(i, subject=f"New {i}") for i in range(3)])
    session = env.session(bodies="all")
    try:
        # Skip the push: the pending op must be dropped by the reset, with a warning.
        pending = env.store.pending_ops(ACCOUNT)
        session.conn.list_folders()  # type: ignore[union-attr]  # the folder's raw name
        result = session._sync_folder("INBOX", pending, lambda p: None)
    finally:
        session.close()
    assert env.subjects() == ["New 0", "New 1", "New 2"]  # no ghosts of the old ones
    assert any("UIDVALIDITY" in w and "1 pending" in w for w in result.warnings)
    assert env.store.pending_ops(ACCOUNT) == []
    for m in env.store.list_messages(ACCOUNT, "INBOX"):
        assert env.store.raw(m.id) is not None


class CuttingProxy:
    """A TCP relay to the real server that cuts the connection after the server has sent
    `limit` bytes (TLS passes through untouched: the certificate still verifies)."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.target_port = target_port
        self.limit = limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            sent = [0]

            def pump(src: socket.socket, dst: socket.socket, count: bool) -> None:
                with contextlib.suppress(OSError):
                    while True:
                        data = src.recv(65536)
                        if not data:
                            break
                        if count:
                            if sent[0] + len(data) > self.limit:
                                dst.sendall(data[: self.limit - sent[0]])
                                break
                            sent[0] += len(data)
                        dst.sendall(data)
                for s in (client, upstream):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

            for args in ((upstream, client, True), (client, upstream, False)):
                t = threading.Thread(target=pump, args=args, daemon=True)
                t.start()
                self.threads.append(t)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("bodies", ["all", "none"])
def test_connection_cut_mid_fetch_then_resumed(
    env: Env, bodies: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_mod, "BATCH_MESSAGES", 40)
    filler = b"x" * 2000 + b"\r\n"
    env.server.deliver_many(env.user, [message(i, body=filler) for i in range(300)])
    proxy = CuttingProxy(env.server.imaps_port, limit=180_000 if bodies == "all" else 25_000)
    try:
        session = ImapSession(env.account(bodies=bodies, port=proxy.port), env.store)
        with pytest.raises(NetworkError):
            session.connect()
            session.sync(["INBOX"], lambda p: None)
        session.close()
    finally:
        proxy.close()
    stored = env.local()
    assert 0 < len(stored) < 300  # some whole batches made it, not everything
    row = env.store.folder(ACCOUNT, "INBOX")
    assert row is not None
    # the state never claims more than what is stored
    assert all(uid in stored for uid in range(1, row.state.uidnext))
    assert row.state.highestmodseq == 0
    env.sync(bodies=bodies)
    msgs = env.store.list_messages(ACCOUNT, "INBOX")
    assert sorted(m.uid for m in msgs) == list(range(1, 301))
    assert len({m.envelope.message_id for m in msgs}) == 300
    if bodies == "all":
        assert all(env.store.raw(m.id) is not None for m in msgs)


def test_starttls_and_plaintext_port(env: Env) -> None:
    env.server.deliver(env.user, message(1))
    summary = env.sync(bodies="all", tls=TLSMode.STARTTLS, port=env.server.imap_port)
    assert summary.new == 1
    logins = env.server.logins(env.user, wait_for=1)
    assert logins and all(r.tls for r in logins)


# ----------------------------------------------------------------------------- IDLE


def test_wait_for_changes(env: Env) -> None:
    session = env.session(bodies="none")
    try:
        session.sync(None, lambda p: None)
        stop = threading.Event()
        t0 = time.monotonic()
        assert session.wait_for_changes(1.5, stop) is False
        assert 1.4 < time.monotonic() - t0 < 3.0
        timer = threading.Timer(0.3, lambda: env.server.deliver(env.user, message(1)))
        timer.start()
        t0 = time.monotonic()
        assert session.wait_for_changes(20, stop) is True
        assert time.monotonic() - t0 < 10
        timer.join()
        # stop is honoured promptly
        threading.Timer(0.3, stop.set).start()
        t0 = time.monotonic()
        session.wait_for_changes(60, stop)
        assert time.monotonic() - t0 < 2.5
        # and the connection is still usable afterwards
        summary = session.sync(["INBOX"], lambda p: None)
        assert summary.new == 1
        # a local change made while idling is replayed on the same connection
        session.wait_for_changes(0.2, stop)
        [m] = env.store.list_messages(ACCOUNT, "INBOX")
        env.store.set_flags([m.id], add=["flagged"])
        assert session.push_pending(lambda p: None) == 1
        assert b"\\Flagged" in env.server_uids()[m.uid]
    finally:
        session.close()


def test_progress_is_reported(env: Env) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(5)])
    seen: list[SyncProgress] = []
    session = env.session(bodies="all")
    try:
        session.sync(["INBOX"], seen.append)
    finally:
        session.close()
    assert any(p.stage == "headers" and p.folder == "INBOX" for p in seen)
    assert seen[-1].folder == "INBOX"
    assert all(p.account == ACCOUNT for p in seen)


@all_modes
def test_each_server_kind_takes_its_sync_mode(env: Env, request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.params["env"]
    env.server.deliver(env.user, message(1))
    session = env.session(bodies="none")
    try:
        session.sync(["INBOX"], lambda p: None)
        assert session.conn is not None
        assert ("QRESYNC" in session.conn.enabled) is (kind == "qresync")
        assert session.conn.has("CONDSTORE") is (kind != "plain")
    finally:
        session.close()
    row = env.store.folder(ACCOUNT, "INBOX")
    assert row is not None
    assert (row.state.highestmodseq > 0) is (kind != "plain")


def test_unchanged_folders_are_not_even_selected(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from tuimail.backends.imap import ImapConnection

    env.server.deliver_many(env.user, [message(i) for i in range(4)])
    env.server.deliver(env.user, message(9), folder="Archive")
    env.sync(bodies="none")
    selected: list[str] = []
    real_select = ImapConnection.select

    def counting(self: ImapConnection, name: str, **kw: object) -> object:
        selected.append(name)
        return real_select(self, name, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ImapConnection, "select", counting)
    env.sync(bodies="none")
    assert selected == []  # LIST-STATUS said nothing changed anywhere
    with env.other_client("Archive") as c:
        c.add_flags([1], [b"\\Seen"])
    env.sync(bodies="none")
    assert selected == ["Archive"]
    assert env.local("Archive")[1].seen
    # bodies still wanted in an unchanged folder (say, after an interrupted sync) are fetched
    selected.clear()
    summary = env.sync(bodies="all")
    assert selected == ["INBOX", "Archive"]
    assert sum(f.bodies for f in summary.folders) == 5
    selected.clear()
    env.sync(bodies="all")
    assert selected == []


def test_subscribed_only(env: Env) -> None:
    env.server.create_folder(env.user, "Lists/unsubscribed", subscribe=False)
    env.server.create_folder(env.user, "Projects", subscribe=True)
    env.sync(bodies="none", subscribed_only=True)
    names = {f.name for f in env.store.folders(ACCOUNT)}
    assert "Projects" in names and "INBOX" in names
    assert "Lists/unsubscribed" not in names
    env.sync(bodies="none")
    assert "Lists/unsubscribed" in {f.name for f in env.store.folders(ACCOUNT)}


def test_plaintext_only_to_loopback_when_allowed(env: Env) -> None:
    from tuimail.errors import AuthError, ConfigError

    env.server.deliver(env.user, message(1))
    with pytest.raises(ConfigError, match="without TLS"):
        env.sync(bodies="none", tls=TLSMode.NONE, port=env.server.imap_port)
    # Allowed on loopback, the link is plaintext; this Dovecot then says LOGINDISABLED
    # (ssl = required), which is respected: no credentials are sent.
    offset = env.server.log_size()
    with pytest.raises(AuthError, match="LOGINDISABLED"):
        env.sync(bodies="none", tls=TLSMode.NONE, port=env.server.imap_port, allow_plaintext=True)
    assert env.server.logins(env.user, since=offset) == []


# ----------------------------------------------------------------------------- helper process


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> list[RecordingHelper]:
    return record_helpers(monkeypatch, engine_mod, "PARALLEL_MIN")


@pytest.mark.parametrize("bodies", ["all", "none"])
def test_big_downloads_are_prepared_in_a_helper_process(
    env: Env, small_batches: list[RecordingHelper], bodies: str
) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(13)])
    assert env.sync(bodies=bodies).new == 13
    [helper] = [h for h in small_batches if h.started]
    assert helper._proc is None  # used, then stopped
    assert env.subjects() == sorted(f"Message {i}" for i in range(13))
    listed = env.store.list_messages(ACCOUNT, "INBOX")
    assert all(m.has_body == (bodies == "all") for m in listed)
    assert len(env.store.search("subject:message")) == 13
    assert (bodies == "all") == bool(env.store.search("body"))
    box = env.store.root / "maildir"
    assert len(list(box.rglob("cur/*"))) == (13 if bodies == "all" else 0)
    assert list(box.rglob("tmp/*")) == []
    row = env.store.folder(ACCOUNT, "INBOX")
    assert row is not None and row.state.uidnext == 14  # the state moved past every batch


def test_a_helper_that_dies_falls_back_to_inline(
    env: Env, small_batches: list[RecordingHelper], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(helper_mod, "_HELPER", "import sys; sys.stdin.read(10); sys.exit(3)")
    env.server.deliver_many(env.user, [message(i) for i in range(10)])
    assert env.sync().new == 10
    assert any(h.started for h in small_batches) and all(h._proc is None for h in small_batches)
    assert env.subjects() == sorted(f"Message {i}" for i in range(10))


def test_a_broken_download_leaves_nothing_prepared_in_tmp(
    env: Env, small_batches: list[RecordingHelper], monkeypatch: pytest.MonkeyPatch
) -> None:
    env.server.deliver_many(env.user, [message(i) for i in range(12)])
    real_fetch = ImapConnection.fetch

    def drop_after_nine(conn: ImapConnection, *args: Any, **kw: Any) -> Iterator[Any]:
        for n, item in enumerate(real_fetch(conn, *args, **kw)):
            if n == 9:  # two batches of 4 went to the helper; the first one is stored
                raise NetworkError("the connection dropped")
            yield item

    monkeypatch.setattr(ImapConnection, "fetch", drop_after_nine)
    with pytest.raises(NetworkError):
        env.sync()
    monkeypatch.setattr(ImapConnection, "fetch", real_fetch)
    box = env.store.root / "maildir"
    assert list(box.rglob("tmp/*")) == []  # prepared batches that were not stored: removed
    assert len(list(box.rglob("cur/*"))) == 4  # the first batch, committed
    assert env.sync().new == 8
    assert env.subjects() == sorted(f"Message {i}" for i in range(12))
    assert list(box.rglob("tmp/*")) == []


def test_a_download_removes_old_debris_from_tmp(env: Env) -> None:
    env.server.deliver_many(env.user, [message(1)])
    env.sync()
    row = env.store.folder(ACCOUNT, "INBOX")
    assert row is not None
    tmp = env.store.folder_dir(row.id) / "tmp"
    old, young = tmp / "1.killed.host", tmp / "2.running.host"
    old.write_bytes(b"half a message")
    young.write_bytes(b"being written")
    two_days_ago = time.time() - 48 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    env.server.deliver_many(env.user, [message(2)])
    assert env.sync().new == 1
    assert not old.exists() and young.exists()


# ----------------------------------------------------------------------------- server renames


def _fetched_in(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, bytes]]:
    """(selected folder, items) of each FETCH from now on."""
    fetched: list[tuple[str | None, bytes]] = []
    real_fetch = ImapConnection.fetch

    def counting(self: ImapConnection, uid_sets: Any, items: bytes, **kw: Any) -> Any:
        fetched.append((self.selected, items))
        return real_fetch(self, uid_sets, items, **kw)

    monkeypatch.setattr(ImapConnection, "fetch", counting)
    return fetched


@all_modes
def test_folder_renamed_on_the_server_is_renamed_locally(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.server.create_folder(env.user, "Projects")
    env.server.deliver_many(env.user, [message(i) for i in range(5)], folder="Projects")
    env.sync(bodies="all")
    before = env.store.folder(ACCOUNT, "Projects")
    assert before is not None
    ids = {m.uid: m.id for m in env.store.list_messages(ACCOUNT, "Projects")}
    env.store.set_flags([ids[2]], add=["seen", "$Work"])  # a local change not pushed yet
    with env.other_client() as c:
        c.rename_folder("Projects", "Clients")
    # A push on its own (the worker's, between syncs) does not give the change up: the
    # folder may have been renamed, which only a sync can tell.
    session = env.session(bodies="all")
    try:
        assert session.push_pending(lambda p: None) == 0
    finally:
        session.close()
    assert len(env.store.pending_ops(ACCOUNT)) == 1
    fetched = _fetched_in(monkeypatch)
    summary = env.sync(bodies="all")
    names = {f.name for f in env.store.folders(ACCOUNT)}
    assert "Projects" not in names and "Clients" in names
    after = env.store.folder(ACCOUNT, "Clients")
    assert after is not None and after.id == before.id and after.total == 5
    assert {m.uid: m.id for m in env.store.list_messages(ACCOUNT, "Clients")} == ids
    assert all(env.store.raw(i) is not None for i in ids.values())  # the files moved too
    result = next(f for f in summary.folders if f.folder == "Clients")
    assert result.new == 0 and result.bodies == 0 and not result.warnings
    # no message fetched again: at most the flags (CONDSTORE/FULL compare them)
    assert {items for folder, items in fetched if folder == "Clients"} <= {FLAG_ITEMS}
    # the local change reached the server under the new name
    assert summary.pushed == 1 and env.store.pending_ops(ACCOUNT) == []
    assert set(env.server_uids("Clients")[2]) == {b"\\Seen", b"$Work"}
    assert env.local("Clients")[2] == Flags(seen=True, keywords=frozenset({"$Work"}))
    assert not summary.warnings


@all_modes
def test_parent_renamed_with_its_child(env: Env) -> None:
    env.server.create_folder(env.user, "Work")
    env.server.create_folder(env.user, "Work/2025")
    env.server.deliver(env.user, message(1), folder="Work")
    env.server.deliver_many(env.user, [message(i) for i in range(2, 5)], folder="Work/2025")
    env.sync(bodies="none")
    parent = [m.id for m in env.store.list_messages(ACCOUNT, "Work")]
    child = [m.id for m in env.store.list_messages(ACCOUNT, "Work/2025")]
    with env.other_client() as c:
        c.rename_folder("Work", "Jobs")
    summary = env.sync(bodies="none")
    names = {f.name for f in env.store.folders(ACCOUNT)}
    assert {"Jobs", "Jobs/2025"} <= names and not {"Work", "Work/2025"} & names
    assert [m.id for m in env.store.list_messages(ACCOUNT, "Jobs")] == parent
    assert [m.id for m in env.store.list_messages(ACCOUNT, "Jobs/2025")] == child
    assert sum(f.new for f in summary.folders) == 0


def test_delete_and_create_of_another_folder_is_not_a_rename(env: Env) -> None:
    env.server.create_folder(env.user, "Old")
    env.server.deliver_many(env.user, [message(i) for i in range(3)], folder="Old")
    env.sync(bodies="none")
    old = env.store.folder(ACCOUNT, "Old")
    assert old is not None
    old_ids = {m.id for m in env.store.list_messages(ACCOUNT, "Old")}
    with env.other_client() as c:
        c.delete_folder("Old")
        c.create_folder("New")
        status = c.folder_status("New", [b"UIDVALIDITY"])
    assert status[b"UIDVALIDITY"] != old.state.uidvalidity
    env.server.deliver(env.user, message(7), folder="New")
    summary = env.sync(bodies="none")
    new = env.store.folder(ACCOUNT, "New")
    assert env.store.folder(ACCOUNT, "Old") is None
    assert new is not None and new.id != old.id
    assert env.subjects("New") == ["Message 7"]
    assert not old_ids & {m.id for m in env.store.list_messages(ACCOUNT, "New")}
    assert next(f for f in summary.folders if f.folder == "New").new == 1
    assert not summary.warnings


def test_folder_deleted_on_the_server_keeps_a_pending_append(env: Env) -> None:
    env.server.create_folder(env.user, "Notes\u202e")  # names are server text (a bidi override)
    env.sync(bodies="all")
    notes = env.store.folder(ACCOUNT, "Notes\u202e")
    assert notes is not None
    raw = message(42, subject="Only here")
    mid = env.store.append_local(notes.id, raw, Flags(seen=True))
    with env.other_client() as c:
        c.delete_folder("Notes\u202e")
    summary = env.sync(bodies="all")
    assert env.store.folder(ACCOUNT, "Notes\u202e") is None
    kept = env.store.message(mid)
    assert kept is not None and kept.folder == "INBOX" and env.store.raw(mid) == raw
    [warning] = summary.warnings
    assert "Notes" in warning and "INBOX" in warning and "\u202e" not in warning
    # uploaded to INBOX in the same sync, and known there under the server's UID
    assert env.store.pending_ops(ACCOUNT) == []
    server = env.server_uids("INBOX")
    assert list(server) == [kept.uid]
    env.sync(bodies="all")
    assert env.subjects("INBOX") == ["Only here"]


def test_moves_out_of_and_into_a_folder_deleted_on_the_server(env: Env) -> None:
    env.server.create_folder(env.user, "Gone")
    env.server.deliver(env.user, message(1), folder="Gone")
    env.server.deliver(env.user, message(2))
    env.sync(bodies="all")
    [out_id] = [m.id for m in env.store.list_messages(ACCOUNT, "Gone")]
    [in_id] = [m.id for m in env.store.list_messages(ACCOUNT, "INBOX")]
    archive = env.store.folder(ACCOUNT, "Archive")
    gone = env.store.folder(ACCOUNT, "Gone")
    assert archive is not None and gone is not None
    env.store.move([out_id], archive.id)
    env.store.move([in_id], gone.id)
    with env.other_client() as c:
        c.delete_folder("Gone")
    env.sync(bodies="all")
    assert env.store.pending_ops(ACCOUNT) == []
    # moved out before the folder went: our copy was uploaded where it was moved to
    assert env.subjects("Archive") == ["Message 1"] and len(env.server_uids("Archive")) == 1
    # moved into it: the move was undone, the message is where the server has it
    assert env.subjects("INBOX") == ["Message 2"] and len(env.server_uids("INBOX")) == 1
    back = env.store.message(in_id)
    assert back is not None and back.folder == "INBOX"
