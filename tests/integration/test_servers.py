"""The test servers are real: TLS verified with the test CA, mail goes in and comes out."""

from __future__ import annotations

import asyncio
import base64
import poplib
import smtplib
import ssl
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from servers.certs import CertAuthority
from servers.dovecot import DovecotServer, User
from servers.fake import FakeServer, close, expect, send, send_raw, starttls
from servers.smtp import SMTPServer

pytestmark = pytest.mark.servers


def _message(subject: str, to: str = "someone@tuimail.test", body: str = "Hello.\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@tuimail.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{time.monotonic_ns()}@tuimail.test>"
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def _imap(server: DovecotServer, ca: CertAuthority, *, implicit: bool) -> IMAPClient:
    ctx = ca.client_context()
    if implicit:
        return IMAPClient(server.host, port=server.imaps_port, ssl_context=ctx, timeout=10)
    client = IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10)
    client.starttls(ctx)
    return client


# ----------------------------------------------------------------------------- IMAP


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_imap_login_append_and_read_back(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User, implicit: bool
) -> None:
    since = dovecot.log_size()
    raw = _message("appended")
    with _imap(dovecot, test_ca, implicit=implicit) as client:
        client.login(mail_user.name, mail_user.password)
        client.append("INBOX", raw, flags=[b"\\Seen"])
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 1
        uid = client.search("ALL")[0]
        data = client.fetch([uid], ["RFC822", "FLAGS"])[uid]
        assert data[b"RFC822"] == raw
        assert b"\\Seen" in data[b"FLAGS"]
        client.logout()
    (login,) = dovecot.logins(mail_user, since, wait_for=1)
    assert login.tls and login.protocol == "imap"


def test_special_use_folders_exist(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User
) -> None:
    with _imap(dovecot, test_ca, implicit=True) as client:
        client.login(mail_user.address, mail_user.password)  # full address works too
        roles = {name: set(flags) for flags, _sep, name in client.list_folders()}
    assert {b"\\Drafts"} <= roles["Drafts"]
    assert {b"\\Sent"} <= roles["Sent"]
    assert {b"\\Trash"} <= roles["Trash"]
    assert {b"\\Junk"} <= roles["Junk"]
    assert {b"\\Archive"} <= roles["Archive"]
    assert "INBOX" in roles


def test_condstore_and_qresync_advertised_after_login(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User
) -> None:
    with _imap(dovecot, test_ca, implicit=False) as client:
        client.login(mail_user.name, mail_user.password)
        caps = set(client.capabilities())
    assert {b"CONDSTORE", b"QRESYNC", b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE"} <= caps


def test_hidden_condstore_instance(
    dovecot_no_condstore: DovecotServer, test_ca: CertAuthority
) -> None:
    user = dovecot_no_condstore.add_user("plainbob", "pw-bob")
    with _imap(dovecot_no_condstore, test_ca, implicit=True) as client:
        client.login(user.name, user.password)
        caps = set(client.capabilities())
    assert b"CONDSTORE" not in caps and b"QRESYNC" not in caps
    assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= caps


def test_deliver_flags_folders_and_internaldate(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User
) -> None:
    dovecot.deliver(mail_user, _message("new"))
    dovecot.deliver(mail_user, _message("seen"), flags="SF", internaldate=1_000_000_000)
    dovecot.deliver(mail_user, _message("archived"), folder="Archive", flags="S")
    dovecot.deliver(mail_user, _message("deep"), folder="Projects/2024")
    with _imap(dovecot, test_ca, implicit=True) as client:
        client.login(mail_user.name, mail_user.password)
        client.select_folder("INBOX", readonly=True)
        fields = ["FLAGS", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]
        fetched = client.fetch(client.search("ALL"), fields)
        by_subject = {
            d[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip().decode(): d for d in fetched.values()
        }
        assert b"\\Seen" not in by_subject["Subject: new"][b"FLAGS"]
        assert {b"\\Seen", b"\\Flagged"} <= set(by_subject["Subject: seen"][b"FLAGS"])
        assert by_subject["Subject: seen"][b"INTERNALDATE"].timestamp() == 1_000_000_000
        assert client.select_folder("Archive")[b"EXISTS"] == 1
        assert client.select_folder("Projects/2024")[b"EXISTS"] == 1


def test_reset_mailbox_is_a_clean_slate(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User
) -> None:
    dovecot.deliver_many(mail_user, (_message(f"m{i}") for i in range(5)))
    dovecot.deliver(mail_user, _message("sent"), folder="Sent", flags="S")
    with _imap(dovecot, test_ca, implicit=True) as client:
        client.login(mail_user.name, mail_user.password)
        before = client.select_folder("INBOX")
        assert before[b"EXISTS"] == 5
    dovecot.reset_mailbox(mail_user)
    with _imap(dovecot, test_ca, implicit=True) as client:
        client.login(mail_user.name, mail_user.password)
        after = client.select_folder("INBOX")
        assert after[b"EXISTS"] == 0
        assert after[b"UIDNEXT"] == 1
        assert after[b"UIDVALIDITY"] != before[b"UIDVALIDITY"]
        assert client.select_folder("Sent")[b"EXISTS"] == 0
    assert list(dovecot.messages(mail_user)) == []


def test_bulk_delivery_of_ten_thousand(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User
) -> None:
    template = _message("bulk")
    start = time.monotonic()
    dovecot.deliver_many(mail_user, (template for _ in range(10_000)))
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"deliver_many took {elapsed:.1f}s for 10k"
    with _imap(dovecot, test_ca, implicit=True) as client:
        client.login(mail_user.name, mail_user.password)
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 10_000


def test_unknown_user_and_wrong_password_are_refused(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User
) -> None:
    from imapclient.exceptions import LoginError

    for name, password in (("nosuchuser", "x"), (mail_user.name, "wrong")):
        with _imap(dovecot, test_ca, implicit=True) as client, pytest.raises(LoginError):
            client.login(name, password)


def test_plain_ports_demand_starttls_before_any_password(
    dovecot: DovecotServer, mail_user: User
) -> None:
    # Through the relay Dovecot sees a remote client, so it behaves as a real server does.
    from imapclient.exceptions import LoginError

    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        caps = set(client.capabilities())
        assert {b"STARTTLS", b"LOGINDISABLED"} <= caps and b"AUTH=PLAIN" not in caps
        with pytest.raises(LoginError):
            client.login(mail_user.name, mail_user.password)
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=10)
    with pytest.raises(poplib.error_proto, match="Plaintext authentication disallowed"):
        pop.user(mail_user.name)
    pop.quit()
    assert dovecot.logins(mail_user) == []


def test_dovecot_direct_port_treats_loopback_as_secure(
    dovecot: DovecotServer, mail_user: User
) -> None:
    # Why the relay exists: straight to Dovecot, 127.0.0.1 -> 127.0.0.1 counts as secure
    # and a password is accepted in the clear.  The log tells such a login from a TLS one.
    since = dovecot.log_size()
    port = dovecot.imap_direct_port
    with IMAPClient(dovecot.host, port=port, ssl=False, timeout=10) as client:
        client.login(mail_user.name, mail_user.password)
    (login,) = dovecot.logins(mail_user, since, wait_for=1)
    assert not login.tls


# ----------------------------------------------------------------------------- POP3


def test_pop3_stls_and_pop3s_retr(
    dovecot: DovecotServer, test_ca: CertAuthority, mail_user: User
) -> None:
    raw = _message("over pop")
    dovecot.deliver(mail_user, raw)
    since = dovecot.log_size()

    plain = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=10)
    assert "STLS" in plain.capa()
    plain.stls(test_ca.client_context())
    plain.user(mail_user.name)
    plain.pass_(mail_user.password)
    assert plain.stat()[0] == 1
    plain.quit()

    secure = poplib.POP3_SSL(
        dovecot.host, dovecot.pop3s_port, context=test_ca.client_context(), timeout=10
    )
    secure.user(mail_user.name)
    secure.pass_(mail_user.password)
    _resp, lines, _octets = secure.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == raw
    secure.quit()

    logins = dovecot.logins(mail_user, since, wait_for=2)
    assert [(r.protocol, r.tls) for r in logins] == [("pop3", True), ("pop3", True)]
    # pop3_no_flag_updates: downloading over POP3 leaves the IMAP copy unseen.
    with _imap(dovecot, test_ca, implicit=True) as client:
        client.login(mail_user.name, mail_user.password)
        client.select_folder("INBOX", readonly=True)
        assert b"\\Seen" not in client.fetch([1], ["FLAGS"])[1][b"FLAGS"]


# ----------------------------------------------------------------------------- SMTP


def _wait_for_inbox(
    dovecot: DovecotServer, ca: CertAuthority, user: User, count: int
) -> list[bytes]:
    with _imap(dovecot, ca, implicit=True) as client:
        client.login(user.name, user.password)
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        assert len(uids) == count
        return [d[b"RFC822"] for d in client.fetch(uids, ["RFC822"]).values()]


def test_smtp_starttls_auth_send_and_read_back_over_imap(
    smtp_server: SMTPServer,
    dovecot: DovecotServer,
    test_ca: CertAuthority,
    mail_user_factory: Callable[[], User],
) -> None:
    sender, rcpt = mail_user_factory(), mail_user_factory()
    raw = _message("via smtp", to=rcpt.address)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=test_ca.client_context())
        client.login(sender.address, sender.password)
        refused = client.sendmail(sender.address, [rcpt.address, "far@example.com"], raw)
    assert refused == {}
    (received,) = smtp_server.received()
    assert received.rcpt_tos == (rcpt.address, "far@example.com")
    assert received.login == sender.address and received.tls
    assert received.data == raw
    (stored,) = _wait_for_inbox(dovecot, test_ca, rcpt, 1)
    assert b"Subject: via smtp" in stored
    assert stored.startswith(b"Return-Path: <" + sender.address.encode() + b">")


def test_aiosmtplib_start_tls_true(
    smtp_server: SMTPServer, test_ca: CertAuthority, mail_user: User
) -> None:
    import aiosmtplib

    async def send() -> None:
        await aiosmtplib.send(
            _message("async", to=mail_user.address),
            sender=mail_user.address,
            recipients=[mail_user.address],
            hostname=smtp_server.host,
            port=smtp_server.port,
            start_tls=True,
            tls_context=test_ca.client_context(),
            username=mail_user.name,
            password=mail_user.password,
            timeout=10,
        )

    asyncio.run(send())
    assert [m.rcpt_tos for m in smtp_server.received()] == [(mail_user.address,)]


def test_smtp_refuses_auth_and_mail_before_starttls(
    smtp_server: SMTPServer, mail_user: User
) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # not even advertised in the clear
        token = base64.b64encode(f"\0{mail_user.name}\0{mail_user.password}".encode())
        code, _msg = client.docmd("AUTH", "PLAIN " + token.decode())
        assert code == 530  # "Must issue a STARTTLS command first"
        code, _msg = client.docmd("MAIL", f"FROM:<{mail_user.address}>")
        assert code == 530
    assert smtp_server.received() == []
    assert smtp_server.failed_logins == []  # the credentials were never even checked


def test_smtp_auth_requires_tls_even_when_starttls_is_optional(
    smtp_factory: Callable[..., SMTPServer],
) -> None:
    server = smtp_factory(users={"erin": "pw-erin"}, require_starttls=False)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        code, _msg = client.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0erin\0pw-erin").decode())
        assert code == 538
    assert server.failed_logins == []


def test_smtp_wrong_password_and_no_auth_are_refused(
    smtp_server: SMTPServer, test_ca: CertAuthority, mail_user: User
) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=test_ca.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(mail_user.name, "wrong")
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail(mail_user.address, [mail_user.address], b"Subject: x\r\n\r\n")
    assert set(smtp_server.failed_logins) == {mail_user.name}  # smtplib tries PLAIN, LOGIN


def test_smtp_partial_rejection_and_data_reply(
    smtp_server: SMTPServer, test_ca: CertAuthority, mail_user: User
) -> None:
    smtp_server.reject_recipient("bad@example.com")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=test_ca.client_context())
        client.login(mail_user.name, mail_user.password)
        refused = client.sendmail(
            mail_user.address, ["good@example.com", "bad@example.com"], _message("partial")
        )
        assert set(refused) == {"bad@example.com"} and refused["bad@example.com"][0] == 550
        smtp_server.set_data_reply("451 4.3.0 try again later")
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail(mail_user.address, ["good@example.com"], _message("later"))
        assert info.value.smtp_code == 451
    assert [m.rcpt_tos for m in smtp_server.received()] == [("good@example.com",)]


def test_smtp_implicit_tls(smtp_factory: Callable[..., SMTPServer], test_ca: CertAuthority) -> None:
    server = smtp_factory(implicit_tls=True, users={"carol": "pw-carol"})
    with smtplib.SMTP_SSL(
        server.host, server.port, context=test_ca.client_context(), timeout=10
    ) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        client.login("carol", "pw-carol")
        client.sendmail("carol@tuimail.test", ["x@example.com"], _message("465"))
    (received,) = server.received()
    assert received.tls and received.login == "carol"
    untrusting = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(server.host, server.port, context=untrusting, timeout=10)


def test_smtp_size_limit(smtp_factory: Callable[..., SMTPServer], test_ca: CertAuthority) -> None:
    server = smtp_factory(users={"dave": "pw"}, max_size=1000)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=test_ca.client_context())
        client.ehlo()
        assert client.esmtp_features["size"] == "1000"
        client.login("dave", "pw")
        big = _message("big", body="x" * 5000)
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as info:
            client.sendmail("dave@tuimail.test", ["x@example.com"], big)
        assert info.value.smtp_code == 552
    assert server.received() == []


# ----------------------------------------------------------------------------- TLS


def test_client_without_the_ca_rejects_the_server(
    dovecot: DovecotServer, smtp_server: SMTPServer
) -> None:
    untrusting = ssl.create_default_context()  # system CAs only
    with (
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=untrusting)
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl_context=untrusting, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL(dovecot.host, dovecot.pop3s_port, context=untrusting, timeout=10)


def test_certificate_names_match_loopback(dovecot: DovecotServer, test_ca: CertAuthority) -> None:
    for host in ("127.0.0.1", "localhost"):
        ctx = test_ca.client_context()
        with IMAPClient(host, port=dovecot.imaps_port, ssl_context=ctx, timeout=10) as client:
            assert b"IMAP4REV1" in client.capabilities()


# ----------------------------------------------------------------------------- fake server

FakeFactory = Callable[..., FakeServer]


def test_fake_imap_starttls_then_login(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    ctx = test_ca.server.server_context()
    server = fake_server(
        [
            send(b"* OK fake ready\r\n"),
            expect(b"CAPABILITY"),  # imaplib always asks at connect
            send(b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK done\r\n"),
            expect(b"STARTTLS"),
            send(b"{tag} OK begin TLS\r\n"),
            starttls(ctx),
            expect(b"CAPABILITY"),
            send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n"),
            expect(b"LOGIN"),
            send(b"{tag} OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n"),
            expect(b"LOGOUT"),
            send(b"* BYE bye\r\n{tag} OK done\r\n"),
            close(),
        ],
        protocol="imap",
    )
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    client.starttls(test_ca.client_context())
    client.login("alice", "s3cret-pass")
    client.logout()
    server.wait(closed=True)
    conv = server.conversation
    assert conv.tls_established and not conv.mismatches
    plain = conv.lines(tls=False)
    assert [line.split(b" ", 1)[1] for line in plain] == [b"CAPABILITY\r\n", b"STARTTLS\r\n"]
    assert any(b"LOGIN" in line and b"s3cret-pass" in line for line in conv.lines(tls=True))
    server.assert_never_sent_in_clear("s3cret-pass")


def test_fake_detects_a_password_sent_in_the_clear(
    fake_server: FakeFactory,
) -> None:
    server = fake_server(
        [
            send(b"* OK no TLS here\r\n"),
            expect(b"CAPABILITY"),
            send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n"),
            expect(b"AUTHENTICATE PLAIN"),
            send(b"+ \r\n"),
            expect(data=True),
            send(b"{tag} OK logged in\r\n"),
        ],
        protocol="imap",
    )
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    client.plain_login("alice", "s3cret-pass")  # a careless client: base64 in the clear
    server.wait()
    with pytest.raises(AssertionError, match="secret sent in the clear"):
        server.assert_never_sent_in_clear("s3cret-pass")


def test_fake_pop3_stls(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    server = fake_server(
        [
            send(b"+OK fake POP3\r\n"),
            expect(b"CAPA"),  # poplib.stls() checks for STLS first
            send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
            expect(b"STLS"),
            send(b"+OK begin TLS\r\n"),
            starttls(test_ca.server.server_context()),
            expect(b"USER alice"),
            send(b"+OK\r\n"),
            expect(b"PASS "),
            send(b"+OK logged in\r\n"),
            expect(b"STAT"),
            send(b"+OK 1 42\r\n"),
            expect(b"QUIT"),
            send(b"+OK bye\r\n"),
            close(),
        ],
        protocol="pop3",
    )
    client = poplib.POP3(server.host, server.port, timeout=10)
    client.stls(test_ca.client_context())
    client.user("alice")
    client.pass_("pop-pass")
    assert client.stat() == (1, 42)
    client.quit()
    server.wait(closed=True)
    assert server.conversation.lines(tls=False) == [b"CAPA\r\n", b"STLS\r\n"]
    server.assert_never_sent_in_clear("pop-pass")


def test_fake_smtp_injection_in_the_starttls_packet(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [
            send(b"220 fake ESMTP\r\n"),
            expect(b"EHLO"),
            send(b"250-fake\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
            expect(b"STARTTLS"),
            # One packet: the real reply and an injected one that a careful client drops.
            send_raw(b"220 go ahead\r\n250 injected\r\n"),
            starttls(test_ca.server.server_context()),
            expect(b"EHLO"),
            send(b"250-fake\r\n250 AUTH PLAIN\r\n"),
            expect(b"AUTH PLAIN"),
            send(b"235 ok\r\n"),
            expect(b"QUIT"),
            send(b"221 bye\r\n"),
            close(),
        ],
        protocol="smtp",
    )
    client = smtplib.SMTP(server.host, server.port, timeout=10)
    client.ehlo()
    # smtplib (3.11) discards its buffered reader on STARTTLS, so the injected line is lost
    # and the handshake succeeds.
    client.starttls(context=test_ca.client_context())
    client.login("alice", "smtp-pass")
    client.quit()
    server.wait(closed=True)
    assert server.conversation.sent[2].data == b"220 go ahead\r\n250 injected\r\n"
    server.assert_never_sent_in_clear("smtp-pass")


def test_fake_reports_mismatch_tls_failure_and_serves_several_connections(
    fake_server: FakeFactory, test_ca: CertAuthority
) -> None:
    server = fake_server(
        [send(b"* OK ready\r\n"), expect(b"NOOP"), send(b"{tag} OK done\r\n")],
        [
            send(b"* OK ready\r\n"),
            expect(b"CAPABILITY"),
            send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n{tag} OK done\r\n"),
            expect(b"STARTTLS"),
            send(b"{tag} OK begin TLS\r\n"),
            starttls(test_ca.expired().server_context()),
        ],
        protocol="imap",
        strict=False,
    )
    # The first script wants NOOP, imaplib sends CAPABILITY: the fake records it, hangs up.
    with pytest.raises(IMAPClient.AbortError):
        IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    second = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        second.starttls(test_ca.client_context())
    server.wait()
    one, two = server.conversations
    assert len(one.mismatches) == 1 and "CAPABILITY" in one.mismatches[0]
    assert two.tls_error is not None and not two.tls_established
    assert server.mismatches == one.mismatches


def test_fake_implicit_tls_and_ipv6(fake_server: FakeFactory, test_ca: CertAuthority) -> None:
    server = fake_server(
        [send(b"+OK secure\r\n"), expect(b"QUIT"), send(b"+OK\r\n"), close()],
        protocol="pop3",
        tls=test_ca.server.server_context(),
        host="::1",
    )
    client = poplib.POP3_SSL("::1", server.port, context=test_ca.client_context(), timeout=10)
    assert client.getwelcome() == b"+OK secure"
    client.quit()
    server.wait(closed=True)
    assert server.conversation.lines() == [b"QUIT\r\n"]
    assert all(c.tls for c in server.received)


def test_fake_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeServer([send(b"x")], host="0.0.0.0")
