"""The SMTP backend against a scripted fake server: STARTTLS stripping, refusal and
injection, bad certificates, smuggling sequences on the wire, a connection lost after DATA,
SMTPUTF8 not offered. Nothing secret, and no MAIL FROM, may ever go out in the clear."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from servers.certs import CertAuthority
from servers.fake import FakeServer, close, expect, send, send_raw, sleep, starttls

from tuimail import config as config_mod
from tuimail.account.sending import flush
from tuimail.backends.smtp import DeliveryUncertain, MessageNotSendable, SMTPClient, data_payload
from tuimail.config import OutgoingConfig
from tuimail.errors import NetworkError, TLSError
from tuimail.models import TLSMode
from tuimail.secrets import Secret
from tuimail.store import Store

pytestmark = pytest.mark.servers

PASSWORD = "s3cret-Pa55"
USER = "me@example.test"
PLAIN = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())

FakeFactory = Callable[..., FakeServer]


def _config(
    server: FakeServer, ca: CertAuthority, tls: TLSMode = TLSMode.STARTTLS
) -> OutgoingConfig:
    return OutgoingConfig(
        host=server.host, port=server.port, tls=tls, username=USER, ca_file=ca.ca_file, timeout=5.0
    )


def _client(config: OutgoingConfig) -> SMTPClient:
    return SMTPClient(config, account="t", secret=lambda: Secret(PASSWORD), secret_is_token=False)


def _connect(config: OutgoingConfig) -> None:
    async def go() -> None:
        client = _client(config)
        try:
            await client.connect()
        finally:
            await client.close()

    asyncio.run(go())


def _greeting_and_tls(ca: CertAuthority, *, injected: bytes = b"") -> list[object]:
    return [
        send(b"220 fake.test ESMTP\r\n"),
        expect(b"EHLO"),
        send(b"250-fake.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
        expect(b"STARTTLS"),
        send_raw(b"220 2.0.0 go ahead\r\n" + injected),
        starttls(ca.server.server_context()),
        expect(b"EHLO"),
        send(b"250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n"),
        expect(b"AUTH PLAIN " + PLAIN),
        send(b"235 2.7.0 ok\r\n"),
    ]


def _assert_nothing_after_starttls_in_clear(server: FakeServer) -> None:
    clear = server.client_bytes(tls=False)
    for command in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
        assert command not in clear.upper(), server.transcript()
    server.assert_never_sent_in_clear(PASSWORD)


# ----------------------------------------------------------------------------- STARTTLS


def test_starttls_stripped_from_ehlo(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    server = fake_server(
        [
            send(b"220 fake.test ESMTP\r\n"),
            expect(b"EHLO"),
            # A man in the middle deleted STARTTLS; AUTH is offered in the clear.
            send(b"250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
        ],
        protocol="smtp",
    )
    with pytest.raises(TLSError, match="does not offer STARTTLS"):
        _connect(_config(server, test_ca))
    server.wait(closed=True)
    assert server.client_bytes().upper().startswith(b"EHLO")
    assert server.conversation.lines() == [server.conversation.lines()[0]]  # only the EHLO
    _assert_nothing_after_starttls_in_clear(server)


@pytest.mark.parametrize(
    "reply", [b"454 4.7.0 TLS not available now\r\n", b"502 5.5.1 unknown\r\n"]
)
def test_starttls_refused(fake_server: FakeFactory, test_ca: CertAuthority, reply: bytes) -> None:
    server = fake_server(
        [
            send(b"220 fake.test ESMTP\r\n"),
            expect(b"EHLO"),
            send(b"250-fake.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
            expect(b"STARTTLS"),
            send(reply),
        ],
        protocol="smtp",
    )
    with pytest.raises(TLSError, match="refused STARTTLS"):
        _connect(_config(server, test_ca))
    server.wait(closed=True)
    _assert_nothing_after_starttls_in_clear(server)


def test_response_injected_before_the_handshake_is_discarded(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    """A plaintext "250" queued behind the 220 must not answer the encrypted EHLO: the
    client would otherwise read the attacker's extension list (say, without AUTH)."""
    script = [
        *_greeting_and_tls(test_ca, injected=b"250-evil\r\n250 AUTH EVIL\r\n"),
        expect(b"MAIL FROM:<" + USER.encode() + b">"),
        send(b"250 ok\r\n"),
        expect(b"RCPT TO:<you@example.test>"),
        send(b"250 ok\r\n"),
        expect(b"DATA"),
        send(b"354 go\r\n"),
        expect(b"Subject: hi"),
        expect(b"\r\n"),
        expect(b"body"),
        expect(b".\r\n"),
        send(b"250 queued\r\n"),
        expect(b"QUIT"),
        send(b"221 bye\r\n"),
        close(),
    ]
    server = fake_server(script, protocol="smtp")

    async def go() -> None:
        async with _client(_config(server, test_ca)) as client:
            assert client.authenticated_with == "plain"
            result = await client.send(USER, ["you@example.test"], b"Subject: hi\r\n\r\nbody\r\n")
            assert result.delivered

    asyncio.run(go())
    server.wait(closed=True)
    assert server.conversation.lines(tls=False) == [
        server.conversation.lines(tls=False)[0],
        b"STARTTLS\r\n",
    ]
    _assert_nothing_after_starttls_in_clear(server)


@pytest.mark.parametrize("bad", ["self_signed", "expired", "wrong_host", "other_ca"])
def test_bad_certificate_after_starttls(
    fake_server: FakeFactory, test_ca: CertAuthority, bad: str
) -> None:
    cert = getattr(test_ca, bad)()
    server = fake_server(
        [
            send(b"220 fake.test ESMTP\r\n"),
            expect(b"EHLO"),
            send(b"250-fake.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
            expect(b"STARTTLS"),
            send(b"220 go ahead\r\n"),
            starttls(cert.server_context()),
        ],
        protocol="smtp",
        strict=False,
    )
    with pytest.raises(TLSError):
        _connect(_config(server, test_ca))
    server.wait(closed=True)
    assert not server.conversation.tls_established
    _assert_nothing_after_starttls_in_clear(server)


def test_implicit_tls_with_untrusted_certificate(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [send(b"220 fake.test ESMTP\r\n")],
        protocol="smtp",
        tls=test_ca.self_signed().server_context(),
        strict=False,
    )
    with pytest.raises(TLSError, match="could not be verified"):
        _connect(_config(server, test_ca, TLSMode.IMPLICIT))
    assert server.client_bytes() == b""


def test_busy_greeting_is_a_network_error(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    server = fake_server([send(b"421 4.3.2 too busy, try later\r\n"), close()], protocol="smtp")
    with pytest.raises(NetworkError, match="not accepting mail"):
        _connect(_config(server, test_ca))


# ----------------------------------------------------------------------------- the data


def _session_receiving(ca: CertAuthority, payload_lines: int, final: bytes) -> list[object]:
    return [
        *_greeting_and_tls(ca),
        expect(b"MAIL FROM:"),
        send(b"250 ok\r\n"),
        expect(b"RCPT TO:"),
        send(b"250 ok\r\n"),
        expect(b"DATA"),
        send(b"354 go\r\n"),
        *[expect(None) for _ in range(payload_lines)],
        send(final),
    ]


SMUGGLING_BODY = (
    b"Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\nRCPT TO:<victim@y>\nDATA\n"
    b"forged\r\n.\r\nQUIT\r\nnext\r.\rand\n.\r\nend\r\n.\n..\n"
)


def test_smuggling_sequences_never_end_the_data_on_the_wire(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    payload = data_payload(SMUGGLING_BODY)
    lines = payload.count(b"\r\n")
    server = fake_server(
        [*_session_receiving(test_ca, lines, b"250 ok\r\n"), expect(b"QUIT"), send(b"221 bye\r\n")],
        protocol="smtp",
    )

    async def go() -> None:
        async with _client(_config(server, test_ca)) as client:
            assert (await client.send(USER, ["you@example.test"], SMUGGLING_BODY)).delivered

    asyncio.run(go())
    server.wait(closed=True)
    wire = server.client_bytes(tls=True)
    data = wire[wire.index(b"DATA\r\n") + 6 : wire.rindex(b"QUIT")]
    assert data == payload
    # What any server, strict or lenient about bare CR/LF, would take as the end of data
    # occurs exactly once, at the end.
    ends = [m.start() for m in re.finditer(rb"(\r\n|\n|\r)\.(\r\n|\n|\r)", b"\r\n" + data)]
    assert ends == [len(data) - 3]
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", data)


def test_connection_lost_after_data_is_uncertain(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    body = b"Subject: lost\r\n\r\nhello\r\n"
    lines = data_payload(body).count(b"\r\n")
    script = [*_session_receiving(test_ca, lines, b"")[:-1], close()]
    server = fake_server(script, protocol="smtp")
    attempts: list[int] = []

    async def go() -> None:
        async with _client(_config(server, test_ca)) as client:
            await client.send(
                USER, ["you@example.test"], body, before_data=lambda: attempts.append(1)
            )

    with pytest.raises(DeliveryUncertain, match="may or may not"):
        asyncio.run(go())
    assert attempts == [1]


def test_connection_lost_before_354_is_not_uncertain(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    script = [
        *_greeting_and_tls(test_ca),
        expect(b"MAIL"),
        send(b"250 ok\r\n"),
        expect(b"RCPT"),
        send(b"250 ok\r\n"),
        expect(b"DATA"),
        close(),
    ]
    server = fake_server(script, protocol="smtp")

    async def go() -> None:
        async with _client(_config(server, test_ca)) as client:
            await client.send(USER, ["you@example.test"], b"Subject: x\r\n\r\nbody\r\n")

    with pytest.raises(NetworkError):
        asyncio.run(go())


def test_final_reply_timeout_is_uncertain_in_the_outbox(
    fake_server: FakeFactory,
    test_ca: CertAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the whole flow: the item becomes "uncertain" and a later flush leaves it."""
    import tuimail.backends.smtp as smtp_mod

    monkeypatch.setattr(smtp_mod, "MIN_DATA_TIMEOUT", 0.5)
    body = (
        b"From: me@example.test\r\nTo: you@example.test\r\nSubject: slow\r\n"
        b"Message-ID: <slow@x>\r\n\r\nhello\r\n"
    )
    lines = data_payload(body).count(b"\r\n")
    script = [*_session_receiving(test_ca, lines, b"")[:-1], sleep(3)]
    server = fake_server(script, protocol="smtp", strict=False)
    monkeypatch.setenv("TUIMAIL_PASSWORD_W", PASSWORD)
    config, problems = config_mod.parse(
        {
            "accounts": {
                "w": {
                    "address": USER,
                    "outgoing": {
                        "host": server.host,
                        "port": server.port,
                        "tls": "starttls",
                        "ca_file": str(test_ca.ca_file),
                        "timeout": 0.5,
                    },
                }
            }
        }
    )
    assert not problems
    with Store.open(tmp_path / "store") as store:
        item = store.outbox_add("w", body, USER, ["you@example.test"])
        report = asyncio.run(flush(store, config))
        [outcome] = report.outcomes
        assert outcome.status == "uncertain" and outcome.item_id == item
        [left] = store.outbox_items()
        assert left.state == "uncertain" and left.attempts == 1
        # Not resent by a later flush (the fake server would not even answer).
        assert asyncio.run(flush(store, config, ignore_schedule=True)).outcomes == []


def test_smtputf8_needed_but_not_offered(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    server = fake_server(
        [*_greeting_and_tls(test_ca), expect(b"QUIT"), send(b"221 bye\r\n")], protocol="smtp"
    )

    async def go() -> None:
        async with _client(_config(server, test_ca)) as client:
            with pytest.raises(MessageNotSendable, match="SMTPUTF8"):
                await client.send(USER, ["jörg@example.test"], b"Subject: x\r\n\r\nbody\r\n")

    asyncio.run(go())
    server.wait(closed=True)
    assert b"MAIL" not in server.client_bytes()


def test_smtputf8_used_when_offered(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    body = "Subject: grüße\r\n\r\nbody\r\n".encode()
    lines = data_payload(body).count(b"\r\n")
    script = [
        *_greeting_and_tls(test_ca)[:7],
        send(b"250-fake.test\r\n250-AUTH PLAIN\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n"),
        *_greeting_and_tls(test_ca)[8:],
        expect(re.compile(rb"^MAIL FROM:<me@example\.test> BODY=8BITMIME SMTPUTF8\r\n$")),
        send(b"250 ok\r\n"),
        expect("RCPT TO:<jörg@example.test>\r\n".encode()),
        send(b"250 ok\r\n"),
        expect(b"DATA"),
        send(b"354 go\r\n"),
        *[expect(None) for _ in range(lines)],
        send(b"250 ok\r\n"),
        expect(b"QUIT"),
        send(b"221 bye\r\n"),
    ]
    server = fake_server(script, protocol="smtp")

    async def go() -> None:
        async with _client(_config(server, test_ca)) as client:
            assert (await client.send(USER, ["jörg@example.test"], body)).delivered

    asyncio.run(go())


# ----------------------------------------------------------------------------- OAuth2


def _oauth_script(ca: CertAuthority, mechanism: bytes, initial: bytes, ok: bool) -> list[object]:
    steps: list[object] = [
        *_greeting_and_tls(ca)[:7],
        send(b"250-fake.test\r\n250-AUTH PLAIN " + mechanism + b"\r\n250 8BITMIME\r\n"),
        expect(b"AUTH " + mechanism + b" " + initial),
    ]
    if ok:
        steps += [send(b"235 2.7.0 ok\r\n"), expect(b"QUIT"), send(b"221 bye\r\n")]
    else:
        # The error challenge (base64 JSON), then the final refusal after the client's reply.
        steps += [
            send(b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
            expect(None, data=True),
            send(b"535 5.7.8 bad token\r\n"),
        ]
    return steps


@pytest.mark.parametrize("ok", [True, False], ids=["accepted", "refused"])
def test_xoauth2_with_a_token_command(
    fake_server: FakeFactory, test_ca: CertAuthority, ok: bool
) -> None:
    from tuimail.errors import AuthError

    token = "ya29.token-value"
    initial = base64.b64encode(f"user={USER}\x01auth=Bearer {token}\x01\x01".encode())
    server = fake_server(_oauth_script(test_ca, b"XOAUTH2", initial, ok), protocol="smtp")
    config = OutgoingConfig(
        host=server.host,
        port=server.port,
        tls=TLSMode.STARTTLS,
        username=USER,
        ca_file=test_ca.ca_file,
        oauth2_token_command=f"echo {token}",
        timeout=5.0,
    )

    async def go() -> str:
        async with SMTPClient(config, account="t") as client:  # the real token command runs
            return client.authenticated_with

    if ok:
        assert asyncio.run(go()) == "xoauth2"
    else:
        with pytest.raises(AuthError, match="refused the login"):
            asyncio.run(go())
    server.wait(closed=True)
    server.assert_never_sent_in_clear(token)


def test_oauthbearer(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    from tuimail.backends.smtp import oauthbearer_initial

    server = fake_server(
        _oauth_script(
            test_ca, b"OAUTHBEARER", oauthbearer_initial(USER, "tok", "127.0.0.1", 0)[:8], True
        ),
        protocol="smtp",
    )
    config = OutgoingConfig(
        host=server.host,
        port=server.port,
        tls=TLSMode.STARTTLS,
        username=USER,
        ca_file=test_ca.ca_file,
        auth="oauthbearer",
        timeout=5.0,
    )

    async def go() -> str:
        client = SMTPClient(config, account="t", secret=lambda: Secret("tok"), secret_is_token=True)
        async with client:
            return client.authenticated_with

    assert asyncio.run(go()) == "oauthbearer"
    [auth] = [line for line in server.conversation.lines(tls=True) if line.startswith(b"AUTH")]
    decoded = base64.b64decode(auth.split()[2])
    expected = f"n,a={USER},\x01host=127.0.0.1\x01port={server.port}\x01auth=Bearer tok\x01\x01"
    assert decoded == expected.encode()


@pytest.mark.parametrize("when", ["at once", "after the client hello"])
def test_hang_up_during_the_tls_handshake_is_a_network_error(
    test_ca: CertAuthority, when: str
) -> None:
    """A server (or a network) dropping the connection mid-handshake: a lost connection to
    retry later, not a TLS setting to fix (asyncio reports it as a reset; a blocking ssl
    socket would raise ssl.SSLEOFError, which smtp.py maps the same way)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            if when != "at once":
                conn.recv(65536)
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    config = OutgoingConfig(
        host="127.0.0.1", port=port, tls=TLSMode.IMPLICIT, username=USER, ca_file=test_ca.ca_file,
        timeout=5.0,
    )  # fmt: skip
    try:
        with pytest.raises(NetworkError) as info:
            _connect(config)
        assert not isinstance(info.value, TLSError)
        assert "lost" in str(info.value) or "refused" not in str(info.value)
    finally:
        thread.join(5)
        listener.close()
