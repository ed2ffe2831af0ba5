"""The SMTP backend against the real test submission server (aiosmtpd: STARTTLS required
before AUTH, AUTH PLAIN/LOGIN, LMTP delivery into Dovecot)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from servers.certs import CertAuthority
from servers.dovecot import DovecotServer, User
from servers.smtp import SMTPServer

from tuimail.backends.smtp import SMTPClient
from tuimail.config import OutgoingConfig
from tuimail.errors import AuthError, ConfigError, NetworkError, TLSError
from tuimail.models import TLSMode
from tuimail.secrets import Secret

pytestmark = pytest.mark.servers


def _config(
    server: SMTPServer,
    user: User,
    *,
    tls: TLSMode = TLSMode.STARTTLS,
    ca_file: Path | None = None,
    auth: str = "auto",
    port: int | None = None,
) -> OutgoingConfig:
    return OutgoingConfig(
        host=server.host,
        port=port or server.port,
        tls=tls,
        username=user.name,
        auth=auth,
        ca_file=ca_file if ca_file is not None else server.ca_file,
        timeout=10.0,
    )


def _client(config: OutgoingConfig, password: str) -> SMTPClient:
    return SMTPClient(
        config, account="test", secret=lambda: Secret(password), secret_is_token=False
    )


def _message(sender: str, to: str, subject: str = "Hello", body: str = "Hi.\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


def test_send_over_starttls_with_auth(smtp_server: SMTPServer, mail_user: User) -> None:
    raw = _message(mail_user.address, mail_user.address)

    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            assert client.encrypted
            assert client.authenticated_with == "plain"
            attempts: list[int] = []
            result = await client.send(
                mail_user.address, [mail_user.address], raw, before_data=lambda: attempts.append(1)
            )
            assert result.delivered, result.describe()
            assert attempts == [1]

    asyncio.run(go())
    [received] = smtp_server.received()
    assert received.tls and received.login == mail_user.name
    assert received.rcpt_tos == (mail_user.address,)
    assert received.data.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("mechanism", ["plain", "login"])
def test_explicit_auth_mechanisms(smtp_server: SMTPServer, mail_user: User, mechanism: str) -> None:
    async def go() -> str:
        config = _config(smtp_server, mail_user, auth=mechanism)
        async with _client(config, mail_user.password) as client:
            return client.authenticated_with

    assert asyncio.run(go()) == mechanism


def test_many_messages_over_one_connection(
    smtp_server: SMTPServer, mail_user: User, dovecot: DovecotServer
) -> None:
    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            for i in range(5):
                raw = _message(mail_user.address, mail_user.address, f"number {i}")
                result = await client.send(mail_user.address, [mail_user.address], raw)
                assert result.delivered

    asyncio.run(go())
    assert [m.data.count(b"Subject: number") for m in smtp_server.received()] == [1] * 5
    assert len(list(dovecot.messages(mail_user))) == 5  # delivered over LMTP


def test_wrong_password_is_an_auth_error(smtp_server: SMTPServer, mail_user: User) -> None:
    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), "wrong"):
            pass

    with pytest.raises(AuthError) as info:
        asyncio.run(go())
    assert "wrong" not in str(info.value)  # the secret never appears in a message
    assert smtp_server.failed_logins == [mail_user.name]
    assert smtp_server.received() == []


def test_untrusted_certificate_is_a_tls_error_before_auth(
    smtp_server: SMTPServer, mail_user: User, tmp_path: Path, test_ca: CertAuthority
) -> None:
    # A CA file that does not contain the test CA: the server's certificate cannot verify.
    other = CertAuthority(tmp_path / "other")

    async def go() -> None:
        async with _client(
            _config(smtp_server, mail_user, ca_file=other.ca_file), mail_user.password
        ):
            pass

    with pytest.raises(TLSError, match="could not be verified"):
        asyncio.run(go())
    assert smtp_server.failed_logins == []


def test_implicit_tls(smtp_factory: Callable[..., SMTPServer], mail_user: User) -> None:
    server = smtp_factory(implicit_tls=True, users={mail_user.name: mail_user.password})

    async def go() -> None:
        async with _client(
            _config(server, mail_user, tls=TLSMode.IMPLICIT), mail_user.password
        ) as c:
            assert c.encrypted
            result = await c.send(mail_user.address, ["x@elsewhere.test"], _message("a@b", "x@c"))
            assert result.delivered

    asyncio.run(go())
    assert len(server.received()) == 1


def test_implicit_tls_against_a_starttls_port_fails_cleanly(
    smtp_server: SMTPServer, mail_user: User
) -> None:
    async def go() -> None:
        async with _client(
            _config(smtp_server, mail_user, tls=TLSMode.IMPLICIT), mail_user.password
        ):
            pass

    with pytest.raises((TLSError, NetworkError)):
        asyncio.run(go())


def test_plaintext_refused_unless_allowed_on_loopback(
    smtp_server: SMTPServer, mail_user: User
) -> None:
    async def go() -> None:
        async with _client(_config(smtp_server, mail_user, tls=TLSMode.NONE), mail_user.password):
            pass

    with pytest.raises(ConfigError):
        asyncio.run(go())


def test_server_down_is_a_network_error(mail_user: User, smtp_server: SMTPServer) -> None:
    from servers.dovecot import free_port

    config = _config(smtp_server, mail_user, port=free_port("127.0.0.1"))

    async def go() -> None:
        async with _client(config, mail_user.password):
            pass

    with pytest.raises(NetworkError, match="refused the connection"):
        asyncio.run(go())


def test_one_refused_recipient_means_nobody_gets_it(
    smtp_server: SMTPServer, mail_user: User
) -> None:
    smtp_server.reject_recipient("bad@tuimail.test")
    recipients = ["good@tuimail.test", "bad@tuimail.test", "other@tuimail.test"]

    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            called: list[int] = []
            raw = _message(mail_user.address, ", ".join(recipients))
            result = await client.send(
                mail_user.address, recipients, raw, before_data=lambda: called.append(1)
            )
            assert not result.delivered and not result.transient
            assert result.stage == "RCPT"
            assert [(r.address, r.accepted) for r in result.recipients] == [
                ("good@tuimail.test", True),
                ("bad@tuimail.test", False),
                ("other@tuimail.test", True),
            ]
            assert "bad@tuimail.test: 550" in result.describe()
            assert called == []  # never reached DATA
            # The connection is still good for the next message.
            again = await client.send(mail_user.address, ["good@tuimail.test"], raw)
            assert again.delivered

    asyncio.run(go())
    assert [m.rcpt_tos for m in smtp_server.received()] == [("good@tuimail.test",)]


def test_temporary_recipient_refusal_is_transient(smtp_server: SMTPServer, mail_user: User) -> None:
    smtp_server.reject_recipient("busy@tuimail.test", "450 4.2.1 mailbox busy")

    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            result = await client.send(
                mail_user.address, ["busy@tuimail.test"], _message("a@b", "c@d")
            )
            assert result.transient and result.stage == "RCPT"

    asyncio.run(go())


@pytest.mark.parametrize(
    ("reply", "transient"), [("451 4.3.0 try later", True), ("554 5.7.1 spam", False)]
)
def test_data_refusal(
    smtp_server: SMTPServer, mail_user: User, reply: str, transient: bool
) -> None:
    smtp_server.set_data_reply(reply)

    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            result = await client.send(
                mail_user.address, ["x@tuimail.test"], _message("a@b", "c@d")
            )
            assert result.stage == "DATA" and not result.delivered
            assert result.transient is transient
            assert result.code == int(reply[:3])

    asyncio.run(go())


def test_message_over_the_size_limit_is_refused_before_mail_from(
    smtp_factory: Callable[..., SMTPServer], mail_user: User
) -> None:
    from tuimail.errors import MessageTooLarge

    server = smtp_factory(users={mail_user.name: mail_user.password}, max_size=2000)

    async def go() -> None:
        async with _client(_config(server, mail_user), mail_user.password) as client:
            with pytest.raises(MessageTooLarge):
                await client.send(
                    mail_user.address, ["x@tuimail.test"], b"Subject: x\r\n\r\n" + b"a" * 3000
                )
            small = await client.send(
                mail_user.address, ["x@tuimail.test"], b"Subject: x\r\n\r\nok"
            )
            assert small.delivered

    asyncio.run(go())


def test_non_ascii_addresses_use_smtputf8_when_offered(
    smtp_factory: Callable[..., SMTPServer], mail_user: User
) -> None:
    # No LMTP behind this one: the test server's LMTP client speaks ASCII only.
    smtp_server = smtp_factory(users={mail_user.name: mail_user.password})

    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            assert client.supports("smtputf8")
            raw = "From: a@b\r\nTo: jörg@tuimail.test\r\nSubject: grüße\r\n\r\nhi\r\n".encode()
            result = await client.send(mail_user.address, ["jörg@tuimail.test"], raw)
            assert result.delivered, result.describe()
            # An internationalized domain alone goes out as IDNA, without SMTPUTF8.
            result = await client.send(mail_user.address, ["a@bücher.test"], _message("a@b", "c@d"))
            assert result.delivered

    asyncio.run(go())
    first, second = smtp_server.received()
    assert first.rcpt_tos == ("jörg@tuimail.test",)
    assert "Subject: grüße".encode() in first.data
    assert second.rcpt_tos == ("a@xn--bcher-kva.test",)


def test_smuggling_sequences_reach_the_server_as_body_text(
    smtp_server: SMTPServer, mail_user: User
) -> None:
    """aiosmtpd ends DATA only at CRLF.CRLF; what it stored must be the whole body."""
    body = (
        b"Subject: smuggle\r\n\r\nline\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\n"
        b"DATA\r\n.\r\nmore\r.\rand\r\n..\r\nend\n"
    )

    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            assert (await client.send(mail_user.address, ["x@tuimail.test"], body)).delivered

    asyncio.run(go())
    [received] = smtp_server.received()
    assert received.rcpt_tos == ("x@tuimail.test",)
    expected = (
        b"Subject: smuggle\r\n\r\nline\r\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\n"
        b"DATA\r\n.\r\nmore\r\n.\r\nand\r\n..\r\nend\r\n"
    )
    assert received.data == expected


def test_a_failing_before_data_hook_resets_the_transaction(
    smtp_server: SMTPServer, mail_user: User
) -> None:
    class Claimed(Exception):
        pass

    def refuse() -> None:
        raise Claimed

    async def go() -> None:
        async with _client(_config(smtp_server, mail_user), mail_user.password) as client:
            raw = _message(mail_user.address, "x@tuimail.test")
            with pytest.raises(Claimed):
                await client.send(mail_user.address, ["x@tuimail.test"], raw, before_data=refuse)
            # The next message on the same connection is not a "nested MAIL".
            assert (await client.send(mail_user.address, ["y@tuimail.test"], raw)).delivered

    asyncio.run(go())
    assert [m.rcpt_tos for m in smtp_server.received()] == [("y@tuimail.test",)]
