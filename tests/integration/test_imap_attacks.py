"""IMAP against a scripted fake server: STARTTLS stripping, refusal and injection, PREAUTH,
credentials never in the clear, hostile sizes, unrequested data, a BYE mid-fetch."""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers.certs import CertAuthority
from servers.fake import FakeServer, Step, close, expect, send, starttls

from tuimail.backends.imap import HEADER_ITEMS, ImapConnection
from tuimail.config import AccountConfig, IncomingConfig
from tuimail.errors import AuthError, NetworkError, ProtocolError, TLSError
from tuimail.models import Flags, FolderInfo, FolderRole, FolderState, Protocol, TLSMode
from tuimail.secrets import Secret
from tuimail.store import NewMessage, Store
from tuimail.sync.engine import ImapSession

FakeFactory = Callable[..., FakeServer]
PASSWORD = "imap-pass-5521"
USER = "alice"
PLAIN_B64 = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUIMAIL_PASSWORD_FAKE", PASSWORD)


def incoming(
    server: FakeServer, ca: CertAuthority, tls: TLSMode = TLSMode.STARTTLS, **kw: object
) -> IncomingConfig:
    kw.setdefault("timeout", 5.0)
    return IncomingConfig(
        host=server.host,
        port=server.port,
        tls=tls,
        username=USER,
        ca_file=ca.ca_file,
        protocol=Protocol.IMAP,
        **kw,  # type: ignore[arg-type]
    )


def account(server: FakeServer, ca: CertAuthority, **kw: object) -> AccountConfig:
    return AccountConfig(
        name="fake", address="alice@example.org", incoming=incoming(server, ca, **kw)
    )


def connect(
    server: FakeServer, ca: CertAuthority, tls: TLSMode = TLSMode.STARTTLS
) -> ImapConnection:
    conn = ImapConnection(incoming(server, ca, tls))
    conn.connect()
    conn.login(USER, password=Secret(PASSWORD))
    return conn


GREETING = send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake ready\r\n")
PRE_CAPS = b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK done\r\n"
AFTER_LOGIN_CAPS = b"IMAP4rev1 UIDPLUS MOVE IDLE"


def tls_prelude(ca: CertAuthority, caps: bytes = b"IMAP4rev1 AUTH=PLAIN SASL-IR") -> list[Step]:
    return [
        GREETING,
        expect(b"CAPABILITY"),
        send(PRE_CAPS),
        expect(b"STARTTLS"),
        send(b"{tag} OK begin TLS now\r\n"),
        starttls(ca.server.server_context()),
        expect(b"CAPABILITY"),
        send(b"* CAPABILITY " + caps + b"\r\n{tag} OK done\r\n"),
    ]


def login_plain() -> list[Step]:
    return [
        expect(b"AUTHENTICATE PLAIN " + PLAIN_B64),
        send(b"{tag} OK [CAPABILITY " + AFTER_LOGIN_CAPS + b"] logged in\r\n"),
    ]


def list_inbox() -> list[Step]:
    return [
        expect(b'LIST "" "*"'),
        send(b'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK done\r\n'),
    ]


def select_inbox(exists: int, uidnext: int, uidvalidity: int = 7) -> list[Step]:
    return [
        expect(b'SELECT "INBOX"'),
        send(
            b"* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n"
            b"{tag} OK [READ-WRITE] done\r\n" % (exists, uidvalidity, uidnext)
        ),
    ]


def fetch_body(uid: int, raw: bytes, seq: int | None = None) -> bytes:
    return (
        b"* %d FETCH (UID %d FLAGS (\\Seen) RFC822.SIZE %d "
        b'INTERNALDATE "01-Jan-2024 10:00:00 +0000" BODY[] {%d}\r\n%s)\r\n'
        % (
            seq or uid,
            uid,
            len(raw),
            len(raw),
            raw,
        )
    )


def raw_message(i: int) -> bytes:
    return (
        b"From: s%d@example.org\r\nSubject: Fake %d\r\nMessage-ID: <f%d@x>\r\n\r\nbody %d\r\n"
        % (
            i,
            i,
            i,
            i,
        )
    )


def logout() -> list[Step]:
    return [expect(b"LOGOUT"), send(b"* BYE bye\r\n{tag} OK done\r\n"), close()]


def sent_commands(server: FakeServer) -> list[bytes]:
    """What the client sent, without tags."""
    out = []
    for chunk in server.received:
        parts = chunk.data.split(b" ", 1)
        out.append(parts[1] if len(parts) == 2 else chunk.data)
    return out


# ----------------------------------------------------------------------------- STARTTLS


@pytest.mark.parametrize(
    "caps",
    [
        b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n",  # STARTTLS stripped
        b"* CAPABILITY IMAP4rev1 LOGINDISABLED\r\n{tag} OK done\r\n",
    ],
)
def test_starttls_not_offered_aborts_before_anything_else(
    fake_server: FakeFactory, test_ca: CertAuthority, caps: bytes
) -> None:
    server = fake_server(
        [send(b"* OK fake ready\r\n"), expect(b"CAPABILITY"), send(caps)], protocol="imap"
    )
    with pytest.raises(TLSError, match="does not offer STARTTLS"):
        connect(server, test_ca)
    server.wait(closed=True)
    assert sent_commands(server) == [b"CAPABILITY\r\n"]


@pytest.mark.parametrize("answer", [b"{tag} NO not today\r\n", b"{tag} BAD what\r\n"])
def test_starttls_refused_aborts(
    fake_server: FakeFactory, test_ca: CertAuthority, answer: bytes
) -> None:
    server = fake_server(
        [GREETING, expect(b"CAPABILITY"), send(PRE_CAPS), expect(b"STARTTLS"), send(answer)],
        protocol="imap",
    )
    with pytest.raises(TLSError, match="refused STARTTLS"):
        connect(server, test_ca)
    server.wait(closed=True)
    assert sent_commands(server) == [b"CAPABILITY\r\n", b"STARTTLS\r\n"]
    server.assert_never_sent_in_clear(PASSWORD)


def test_preauth_on_a_starttls_account_is_refused(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [
            send(b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back\r\n"),
            expect(b"CAPABILITY"),
            send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n{tag} OK done\r\n"),
        ],
        protocol="imap",
    )
    with pytest.raises(TLSError, match="PREAUTH"):
        connect(server, test_ca)
    server.wait(closed=True)
    assert b"STARTTLS\r\n" not in sent_commands(server)
    assert all(
        not c.startswith((b"LOGIN", b"AUTHENTICATE", b"SELECT")) for c in sent_commands(server)
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_responses_injected_around_the_starttls_ok_are_ignored(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store, where: str
) -> None:
    injected = b'* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n* LIST () "/" Injected\r\n'
    ok = b"{tag} OK begin TLS now\r\n"
    # After TLS the server offers no AUTH=PLAIN: a client that believed the injected
    # capability would send AUTHENTICATE PLAIN; ours must use LOGIN.
    script = [
        GREETING,
        expect(b"CAPABILITY"),
        send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n{tag} OK done\r\n"),
        expect(b"STARTTLS"),
        send(injected + ok if where == "before" else ok + injected),  # one packet
        starttls(test_ca.server.server_context()),
        expect(b"CAPABILITY"),
        send(b"* CAPABILITY IMAP4rev1 LITERAL+\r\n{tag} OK done\r\n"),
        expect(b"LOGIN {5+}"),
        expect(None, data=True),  # alice {14+}
        expect(PASSWORD.encode(), data=True),
        send(b"{tag} OK [CAPABILITY " + AFTER_LOGIN_CAPS + b"] logged in\r\n"),
        *list_inbox(),
        *select_inbox(0, 1),
        *logout(),
    ]
    server = fake_server(script, protocol="imap")
    session = ImapSession(account(server, test_ca, bodies="none"), store)
    session.connect()
    session.sync(None, lambda p: None)
    session.close()
    server.wait(closed=True)
    assert [f.name for f in store.folders("fake")] == ["INBOX"]  # no injected folder
    server.assert_never_sent_in_clear(PASSWORD)
    assert all(c.tls for c in server.received if b"LOGIN" in c.data or PASSWORD.encode() in c.data)


def test_credentials_only_after_tls(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    server = fake_server([*tls_prelude(test_ca), *login_plain(), *logout()], protocol="imap")
    conn = connect(server, test_ca)
    assert "UIDPLUS" in conn.caps  # the capabilities of the tagged OK after login
    conn.logout()
    server.wait(closed=True)
    server.assert_never_sent_in_clear(PASSWORD)
    [auth] = [c for c in server.received if b"AUTHENTICATE" in c.data]
    assert auth.tls


def test_login_refused_is_an_auth_error_without_the_password(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [
            *tls_prelude(test_ca),
            expect(b"AUTHENTICATE PLAIN"),
            send(b"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        ],
        protocol="imap",
    )
    with pytest.raises(AuthError) as info:
        connect(server, test_ca)
    assert "Authentication failed" in info.value.message
    assert PASSWORD not in info.value.message


def test_logindisabled_without_sasl_refuses_to_log_in(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server([*tls_prelude(test_ca, caps=b"IMAP4rev1 LOGINDISABLED")], protocol="imap")
    with pytest.raises(AuthError, match="LOGINDISABLED"):
        connect(server, test_ca)
    assert not any(b"LOGIN " in c or b"AUTHENTICATE" in c for c in sent_commands(server))


def test_bad_certificate_is_refused_before_any_credential(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [send(b"* OK ready\r\n")], protocol="imap", tls=test_ca.self_signed().server_context()
    )
    with pytest.raises(TLSError, match="could not be verified"):
        connect(server, test_ca, TLSMode.IMPLICIT)
    assert server.client_bytes() == b""


def test_xoauth2_token(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    token = "ya29.token-xyz"
    blob = base64.b64encode(f"user={USER}\x01auth=Bearer {token}\x01\x01".encode())
    server = fake_server(
        [
            *tls_prelude(test_ca, caps=b"IMAP4rev1 AUTH=XOAUTH2 AUTH=PLAIN SASL-IR"),
            expect(b"AUTHENTICATE XOAUTH2 " + blob),
            send(b"{tag} OK logged in\r\n"),
            expect(b"CAPABILITY"),
            send(b"* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n"),
        ],
        protocol="imap",
    )
    conn = ImapConnection(incoming(server, test_ca))
    conn.connect()
    conn.login(USER, token=Secret(token))
    conn.close()
    server.assert_never_sent_in_clear(token)


# ----------------------------------------------------------------------------- hostile data


def logged_in(ca: CertAuthority) -> list[Step]:
    return [*tls_prelude(ca), *login_plain()]


def test_huge_literal_claim_is_refused_with_bounded_memory(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [
            *logged_in(test_ca),
            *select_inbox(1, 2),
            expect(b"UID FETCH 1:*"),
            send(b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (DATE)] {2147483648}\r\n" + b"x" * 4096),
        ],
        protocol="imap",
    )
    conn = connect(server, test_ca)
    conn.select("INBOX")
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="2147483648"):
            list(conn.fetch([b"1:*"], HEADER_ITEMS))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    assert not conn.connected  # the stream cannot be trusted any more


def test_oversized_literal_is_skipped_and_listed_without_body(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    big = raw_message(2) + b"x" * (1024 * 1024 + 10)
    header = b"From: s2@example.org\r\nSubject: Fake 2\r\n\r\n"
    server = fake_server(
        [
            *logged_in(test_ca),
            *list_inbox(),
            *select_inbox(2, 3),
            expect(b"UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])"),
            send(fetch_body(1, raw_message(1)) + fetch_body(2, big) + b"{tag} OK done\r\n"),
            expect(b"UID FETCH 2 (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS"),
            send(
                b"* 2 FETCH (UID 2 FLAGS () RFC822.SIZE %d BODY[HEADER.FIELDS (FROM SUBJECT)] "
                b"{%d}\r\n%s)\r\n{tag} OK done\r\n" % (len(big), len(header), header)
            ),
            *logout(),
        ],
        protocol="imap",
    )
    session = ImapSession(
        account(server, test_ca, bodies="all", max_message_size=1024 * 1024), store
    )
    session.connect()
    summary = session.sync(None, lambda p: None)
    session.close()
    [inbox] = summary.folders
    assert inbox.new == 2 and inbox.bodies == 1
    assert any("larger than max_message_size" in w for w in inbox.warnings)
    msgs = {m.uid: m for m in store.list_messages("fake", "INBOX")}
    assert store.raw(msgs[1].id) == raw_message(1)
    assert store.raw(msgs[2].id) is None and msgs[2].envelope.subject == "Fake 2"


def _seeded(store: Store) -> int:
    """A local INBOX that already holds UIDs 1-2 (UIDVALIDITY 7, UIDNEXT 3)."""
    store.sync_folders("fake", [FolderInfo("INBOX", role=FolderRole.INBOX)])
    row = store.folder("fake", "INBOX")
    assert row is not None
    store.add_messages(
        row.id,
        [NewMessage(uid, Flags(), 10, None, raw_message(uid), True) for uid in (1, 2)],
    )
    store.set_folder_state(row.id, FolderState(7, 3, 0))
    return row.id


def test_unrequested_fetch_data_is_ignored(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    folder_id = _seeded(store)
    server = fake_server(
        [
            *logged_in(test_ca),
            *list_inbox(),
            *select_inbox(3, 4),
            expect(b"UID FETCH 1:2 (UID FLAGS)"),
            send(
                b"* 1 FETCH (UID 1 FLAGS ())\r\n* 2 FETCH (UID 2 FLAGS ())\r\n"
                b"* 3 FETCH (FLAGS (\\Deleted))\r\n"  # no UID: unsolicited, ignored
                b"* 9 FETCH (UID 77 FLAGS (\\Seen))\r\n"  # a UID we never asked about
                b"{tag} OK done\r\n"
            ),
            expect(b"UID FETCH 3:* "),
            send(
                # UID 1 again with different content (`3:*` never covers it): ignored
                fetch_body(1, raw_message(666))
                + b"* 3 FETCH (UID 3 X-GM-LABELS (\\Important) FLAGS () RFC822.SIZE 10 "
                b'ENVELOPE (NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL) '
                b'INTERNALDATE "01-Jan-2024 10:00:00 +0000" BODY[] {%d}\r\n%s)\r\n'
                % (len(raw_message(3)), raw_message(3))
                + b"{tag} OK done\r\n"
            ),
            *logout(),
        ],
        protocol="imap",
    )
    session = ImapSession(account(server, test_ca, bodies="all"), store)
    session.connect()
    session.sync(None, lambda p: None)
    session.close()
    assert sorted(store.uid_flags(folder_id)) == [1, 2, 3]
    msgs = {m.uid: m for m in store.list_messages("fake", "INBOX")}
    assert store.raw(msgs[1].id) == raw_message(1)
    assert store.raw(msgs[3].id) == raw_message(3)
    assert not any(f.deleted or f.seen for f in store.uid_flags(folder_id).values())


def test_bye_mid_fetch_stores_nothing_partial(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    folder_id = _seeded(store)
    server = fake_server(
        [
            *logged_in(test_ca),
            *list_inbox(),
            *select_inbox(4, 5),
            expect(b"UID FETCH 1:2 (UID FLAGS)"),
            send(b"* 1 FETCH (UID 1 FLAGS ())\r\n* 2 FETCH (UID 2 FLAGS ())\r\n{tag} OK done\r\n"),
            expect(b"UID FETCH 3:* "),
            send(
                fetch_body(3, raw_message(3))
                + b"* BYE server shutting down\r\n"
                + b"* 4 FETCH (UID 4 FLAGS () BODY[] {100}\r\nonly part of it"
            ),
            close(),
        ],
        protocol="imap",
    )
    session = ImapSession(account(server, test_ca, bodies="all"), store)
    session.connect()
    with pytest.raises(NetworkError, match="shutting down"):
        session.sync(None, lambda p: None)
    session.close()
    assert sorted(store.uid_flags(folder_id)) == [1, 2]
    row = store.folder("fake", "INBOX")
    assert row is not None and row.state == FolderState(7, 3, 0)


def test_timeout_is_a_network_error(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    from servers.fake import sleep

    server = fake_server([*logged_in(test_ca), expect(b"NOOP"), sleep(3)], protocol="imap")
    conn = ImapConnection(incoming(server, test_ca, timeout=0.5))
    conn.connect()
    conn.login(USER, password=Secret(PASSWORD))
    with pytest.raises(NetworkError):
        conn.noop()
    assert not conn.connected


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        (b"{tag} NO [INUSE] mailbox busy, try later\r\n", True),
        (b"{tag} NO [SERVERBUG] oops\r\n", True),
        (b"{tag} BAD [CANNOT] no such flag here\r\n", False),
    ],
)
def test_refused_replay_is_kept_or_dropped(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store, answer: bytes, kept: bool
) -> None:
    _seeded(store)
    [m] = [m for m in store.list_messages("fake", "INBOX") if m.uid == 1]
    store.set_flags([m.id], add=["flagged"])
    server = fake_server(
        [
            *logged_in(test_ca),
            *select_inbox(2, 3),
            expect(b"UID STORE 1 +FLAGS.SILENT (\\Flagged)"),
            send(answer),
            *logout(),
        ],
        protocol="imap",
    )
    session = ImapSession(account(server, test_ca, bodies="none"), store)
    session.connect()
    assert session.push_pending(lambda p: None) == 0
    session.close()
    ops = store.pending_ops("fake")
    if kept:
        [op] = ops
        code = answer.split(b"[")[1].split(b"]")[0].decode()
        assert op.attempts == 1 and f"[{code}]" in op.last_error
    else:
        assert ops == []


def test_wait_without_idle_polls_with_noop(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    import threading

    server = fake_server(
        [
            *tls_prelude(test_ca),
            expect(b"AUTHENTICATE PLAIN " + PLAIN_B64),
            send(b"{tag} OK [CAPABILITY IMAP4rev1 UIDPLUS] logged in\r\n"),  # no IDLE
            *select_inbox(2, 3),
            expect(b"NOOP"),
            send(b"* 3 EXISTS\r\n{tag} OK done\r\n"),
            *logout(),
        ],
        protocol="imap",
    )
    session = ImapSession(account(server, test_ca, bodies="none"), store)
    session.connect()
    assert session.wait_for_changes(5, threading.Event()) is True
    session.close()
