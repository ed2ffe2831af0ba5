"""POP3 against a scripted fake server: STLS stripping and injection, credentials never in
the clear, bad certificates, and per-message faults (refusals, over-long lines, replies
that never end, servers that lie about sizes) that must not stop the other downloads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers.certs import CertAuthority
from servers.fake import FakeServer, Step, close, expect, send, send_raw, starttls
from store_helpers import full_message

from tuimail.backends.pop3 import Pop3Client, stuff
from tuimail.config import AccountConfig, IncomingConfig
from tuimail.errors import TLSError
from tuimail.models import Protocol, TLSMode
from tuimail.secrets import Secret
from tuimail.store import Store
from tuimail.sync.pop3_engine import Pop3Session
from tuimail.sync.session import SyncSummary

FakeFactory = Callable[..., FakeServer]
PASSWORD = "pop-pass-8472"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


def account(
    server: FakeServer, ca: CertAuthority, tls: TLSMode = TLSMode.STARTTLS, **options: object
) -> AccountConfig:
    incoming = IncomingConfig(
        host=server.host,
        port=server.port,
        tls=tls,
        username="alice",
        ca_file=ca.ca_file,
        protocol=Protocol.POP3,
        timeout=5.0,
        **options,  # type: ignore[arg-type]
    )
    return AccountConfig(name="pop", address="alice@example.org", incoming=incoming)


def client(server: FakeServer, ca: CertAuthority, tls: TLSMode = TLSMode.STARTTLS) -> Pop3Client:
    from tuimail.backends.tls import client_context

    return Pop3Client(
        server.host, server.port, tls=tls, context=client_context(ca.ca_file), timeout=5
    )


def run_sync(acct: AccountConfig, store: Store) -> SyncSummary:
    session = Pop3Session(acct, store, password=Secret(PASSWORD))
    try:
        session.connect()
        return session.sync(None, lambda p: None)
    finally:
        session.close()


def subjects(store: Store) -> list[str]:
    return sorted(m.envelope.subject for m in store.list_messages(account="pop"))


GREET = send(b"+OK fake POP3 ready <1896.697170952@fake>\r\n")  # an APOP banner: never used


def stls_prelude(ca: CertAuthority, caps_after: bytes = b"USER\r\nUIDL\r\n") -> list[Step]:
    return [
        GREET,
        expect(b"CAPA"),
        send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
        expect(b"STLS"),
        send(b"+OK begin TLS\r\n"),
        starttls(ca.server.server_context()),
        expect(b"CAPA"),
        send(b"+OK\r\n" + caps_after + b".\r\n"),
    ]


def login_user_pass() -> list[Step]:
    return [
        expect(b"USER alice\r\n"),
        send(b"+OK\r\n"),
        expect(b"PASS " + PASSWORD.encode() + b"\r\n"),
        send(b"+OK logged in\r\n"),
    ]


def retr(number: int, raw: bytes) -> list[Step]:
    return [expect(f"RETR {number}\r\n".encode()), send(b"+OK\r\n" + stuff(raw))]


# ----------------------------------------------------------------------------- STLS


@pytest.mark.parametrize(
    "capa_reply",
    [
        b"+OK\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n",  # STLS stripped from the list
        b"-ERR unknown command\r\n",  # no CAPA at all: STLS cannot be assumed
    ],
)
def test_no_stls_offered_aborts_before_sending_anything(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store, capa_reply: bytes
) -> None:
    server = fake_server([GREET, expect(b"CAPA"), send(capa_reply)], protocol="pop3")
    session = Pop3Session(account(server, test_ca), store, password=Secret(PASSWORD))
    with pytest.raises(TLSError, match="does not offer STLS"):
        session.connect()
    server.wait(closed=True)
    assert server.conversation.lines() == [b"CAPA\r\n"]


def test_stls_refused_aborts(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    server = fake_server(
        [
            GREET,
            expect(b"CAPA"),
            send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
            expect(b"STLS"),
            send(b"-ERR not now\r\n"),
        ],
        protocol="pop3",
    )
    session = Pop3Session(account(server, test_ca), store, password=Secret(PASSWORD))
    with pytest.raises(TLSError, match="refused STLS"):
        session.connect()
    server.wait(closed=True)
    assert server.conversation.lines() == [b"CAPA\r\n", b"STLS\r\n"]


def test_responses_injected_behind_the_stls_ok_are_discarded(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [
            GREET,
            expect(b"CAPA"),
            send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
            expect(b"STLS"),
            # One packet: the real answer plus a forged CAPA reply for after the handshake.
            send_raw(b"+OK begin TLS\r\n+OK\r\nSASL EVIL\r\nX-INJECTED\r\n.\r\n"),
            starttls(test_ca.server.server_context()),
            expect(b"CAPA"),
            send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"),
            *login_user_pass(),
            expect(b"QUIT"),
            send(b"+OK bye\r\n"),
            close(),
        ],
        protocol="pop3",
    )
    pop = client(server, test_ca)
    pop.connect()
    assert not pop.capabilities.has("X-INJECTED") and "EVIL" not in pop.capabilities.sasl
    pop.login("alice", Secret(PASSWORD))
    pop.quit()
    server.wait(closed=True)
    server.assert_never_sent_in_clear(PASSWORD)


@pytest.mark.parametrize(
    ("caps_after", "login"),
    [
        (b"USER\r\nUIDL\r\n", login_user_pass()),
        (
            b"USER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n",
            [expect(b"AUTH PLAIN AGFsaWNl"), send(b"+OK logged in\r\n")],
        ),
    ],
)
def test_a_whole_sync_never_sends_credentials_in_the_clear(
    fake_server: FakeFactory,
    test_ca: CertAuthority,
    store: Store,
    caps_after: bytes,
    login: list[Step],
) -> None:
    raw = full_message(1)
    server = fake_server(
        [
            *stls_prelude(test_ca, caps_after),
            *login,
            expect(b"LIST"),
            send(b"+OK\r\n1 %d\r\n.\r\n" % len(raw)),
            expect(b"UIDL"),
            send(b"+OK\r\n1 uid-one\r\n.\r\n"),
            *retr(1, raw),
            expect(b"QUIT"),
            send(b"+OK bye\r\n"),
            close(),
        ],
        protocol="pop3",
    )
    assert run_sync(account(server, test_ca), store).new == 1
    server.wait(closed=True)
    server.assert_never_sent_in_clear(PASSWORD)
    server.assert_never_sent_in_clear("alice")
    assert server.conversation.lines(tls=False) == [b"CAPA\r\n", b"STLS\r\n"]
    [message] = store.list_messages(account="pop")
    assert store.raw(message.id) == raw


@pytest.mark.parametrize("bad", ["wrong_host", "expired", "self_signed", "other_ca"])
@pytest.mark.parametrize("tls", [TLSMode.IMPLICIT, TLSMode.STARTTLS])
def test_bad_certificates_are_refused_before_any_credential(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store, bad: str, tls: TLSMode
) -> None:
    cert = getattr(test_ca, bad)()
    if tls is TLSMode.IMPLICIT:
        server = fake_server([GREET], protocol="pop3", tls=cert.server_context())
    else:
        server = fake_server(
            [
                GREET,
                expect(b"CAPA"),
                send(b"+OK\r\nSTLS\r\n.\r\n"),
                expect(b"STLS"),
                send(b"+OK\r\n"),
                starttls(cert.server_context()),
            ],
            protocol="pop3",
        )
    session = Pop3Session(account(server, test_ca, tls), store, password=Secret(PASSWORD))
    with pytest.raises(TLSError):
        session.connect()
    server.wait(closed=True)
    assert server.conversation.tls_error is not None
    server.assert_never_sent_in_clear(PASSWORD)


# ----------------------------------------------------------------------------- per-message faults


def implicit_login(caps: bytes = b"USER\r\nUIDL\r\n") -> list[Step]:
    return [GREET, expect(b"CAPA"), send(b"+OK\r\n" + caps + b".\r\n"), *login_user_pass()]


def listing(sizes: dict[int, int], uids: dict[int, bytes]) -> list[Step]:
    list_body = b"".join(b"%d %d\r\n" % (n, s) for n, s in sizes.items())
    uidl_body = b"".join(b"%d %s\r\n" % (n, u) for n, u in uids.items())
    return [
        expect(b"LIST"),
        send(b"+OK\r\n" + list_body + b".\r\n"),
        expect(b"UIDL"),
        send(b"+OK\r\n" + uidl_body + b".\r\n"),
    ]


def test_per_message_faults_do_not_stop_the_others(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    limit = 50_000
    msgs = {n: full_message(n) for n in range(1, 9)}
    # Just over the limit: read to its end, refused, and the stream stays usable.
    huge_body = full_message(6, body=("y" * 998 + "\r\n") * 51)
    sizes = {n: len(m) for n, m in msgs.items()}
    sizes[5] = 2 * limit  # LIST says too large: never retrieved
    sizes[6] = 100  # LIST lies: the reply is 51 KB
    uids = {n: b"uid-%d" % n for n in msgs}
    never_ending = b"+OK\r\n" + (b"A" * 998 + b"\r\n") * 100  # 100 KB, no terminator
    first = [
        *implicit_login(),
        *listing(sizes, uids),
        *retr(1, msgs[1]),
        expect(b"RETR 2\r\n"),
        send(b"-ERR [SYS/PERM] message is corrupt\r\n"),
        expect(b"RETR 3\r\n"),
        send(b"+OK " + b"x" * 5000 + b"\r\n" + stuff(msgs[3])),  # over-long status line
    ]
    second = [
        *implicit_login(),
        *listing(sizes, uids),
        *retr(4, msgs[4]),
        expect(b"RETR 6\r\n"),
        send(b"+OK\r\n" + stuff(huge_body)),
        expect(b"RETR 7\r\n"),
        send(never_ending),
    ]
    third = [
        *implicit_login(),
        *listing(sizes, uids),
        *retr(8, msgs[8]),
        expect(b"DELE 1\r\n"),
        send(b"+OK\r\n"),
        expect(b"DELE 4\r\n"),
        send(b"+OK\r\n"),
        expect(b"DELE 8\r\n"),
        send(b"+OK\r\n"),
        expect(b"QUIT"),
        send(b"+OK bye\r\n"),
        close(),
    ]
    server = fake_server(first, second, third, protocol="pop3", tls=test_ca.server.server_context())
    acct = account(server, test_ca, TLSMode.IMPLICIT, max_message_size=limit, leave_on_server=False)
    summary = run_sync(acct, store)
    server.wait(closed=True)
    assert subjects(store) == [f"Message number {n}" for n in (1, 4, 8)]
    assert summary.new == 3
    warnings = "\n".join(summary.folders[0].warnings)
    assert "Message 2 could not be downloaded: the server refused it: -ERR [SYS/PERM]" in warnings
    assert "Message 3 could not be downloaded: the server's reply line was too long" in warnings
    assert "Message 5 (100,000 bytes) is larger than max_message_size" in warnings
    assert "Message 6 could not be downloaded: larger than the 50,000-byte limit" in warnings
    assert "Message 7 could not be downloaded: larger than the 50,000-byte limit" in warnings
    assert store.pop3_seen("pop") == {}  # 1, 4, 8 deleted at QUIT: records forgotten


def test_an_over_long_listing_entry_spoils_only_its_message(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    msgs = {n: full_message(n) for n in (1, 2, 3)}
    uids = {1: b"uid-1", 2: b"u" * 4000, 3: b"uid-3"}
    server = fake_server(
        [
            *implicit_login(),
            *listing({n: len(m) for n, m in msgs.items()}, uids),
            *retr(1, msgs[1]),
            *retr(3, msgs[3]),
            expect(b"QUIT"),
            send(b"+OK\r\n"),
            close(),
        ],
        protocol="pop3",
        tls=test_ca.server.server_context(),
    )
    summary = run_sync(account(server, test_ca, TLSMode.IMPLICIT), store)
    assert subjects(store) == ["Message number 1", "Message number 3"]
    warnings = "\n".join(summary.folders[0].warnings)
    assert "entry too long" in warnings and "without a unique id" in warnings


def test_pipelined_retrieval(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    msgs = {n: full_message(n) for n in range(1, 4)}
    server = fake_server(
        [
            *implicit_login(b"USER\r\nUIDL\r\nPIPELINING\r\n"),
            *listing({n: len(m) for n, m in msgs.items()}, {n: b"u%d" % n for n in msgs}),
            # All three commands arrive before the first reply is sent.
            expect(b"RETR 1\r\n"),
            expect(b"RETR 2\r\n"),
            expect(b"RETR 3\r\n"),
            send(b"".join(b"+OK\r\n" + stuff(msgs[n]) for n in (1, 2, 3))),
            expect(b"QUIT"),
            send(b"+OK\r\n"),
            close(),
        ],
        protocol="pop3",
        tls=test_ca.server.server_context(),
    )
    assert run_sync(account(server, test_ca, TLSMode.IMPLICIT), store).new == 3


def test_server_without_uidl_uses_fingerprints(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    msgs = {n: full_message(n) for n in (1, 2)}
    caps = b"USER\r\nTOP\r\n"
    sizes = b"".join(b"%d %d\r\n" % (n, len(m)) for n, m in msgs.items())

    def session(retrieve: list[int]) -> list[Step]:
        steps = [
            *implicit_login(caps),
            expect(b"LIST"),
            send(b"+OK\r\n" + sizes + b".\r\n"),
        ]
        for n, raw in msgs.items():
            head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            steps += [expect(b"TOP %d 0\r\n" % n), send(b"+OK\r\n" + stuff(head))]
        for n in retrieve:
            steps += retr(n, msgs[n])
        return [*steps, expect(b"QUIT"), send(b"+OK\r\n"), close()]

    server = fake_server(
        session([1, 2]),
        session([]),
        protocol="pop3",
        tls=test_ca.server.server_context(),
    )
    acct = account(server, test_ca, TLSMode.IMPLICIT)
    first = run_sync(acct, store)
    assert first.new == 2 and "does not support UIDL" in first.folders[0].warnings[0]
    assert run_sync(acct, store).new == 0
    assert all(k.startswith("fp ") for k in store.pop3_seen("pop"))


def test_a_top_reply_that_never_ends_switches_to_keys_from_retr(
    fake_server: FakeFactory,
    test_ca: CertAuthority,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuimail.backends import pop3

    # A small header limit keeps the endless reply inside the socket buffers.
    monkeypatch.setattr(pop3, "MAX_HEADER", 20_000)
    msgs = {n: full_message(n) for n in (1, 2)}
    caps = b"USER\r\nTOP\r\n"
    sizes = b"".join(b"%d %d\r\n" % (n, len(m)) for n, m in msgs.items())
    listing_steps = [expect(b"LIST"), send(b"+OK\r\n" + sizes + b".\r\n")]
    head1 = msgs[1].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    first = [
        *implicit_login(caps),
        *listing_steps,
        expect(b"TOP 1 0\r\n"),
        send(b"+OK\r\n" + stuff(head1)),
        expect(b"TOP 2 0\r\n"),
        send(b"+OK\r\n" + (b"X-Junk: " + b"a" * 990 + b"\r\n") * 40),  # no end
    ]
    second = [
        *implicit_login(caps),
        *listing_steps,
        *retr(1, msgs[1]),
        *retr(2, msgs[2]),
        expect(b"QUIT"),
        send(b"+OK\r\n"),
        close(),
    ]
    server = fake_server(first, second, protocol="pop3", tls=test_ca.server.server_context())
    summary = run_sync(account(server, test_ca, TLSMode.IMPLICIT), store)
    assert summary.new == 2
    assert subjects(store) == ["Message number 1", "Message number 2"]
    assert len(store.pop3_seen("pop")) == 2
