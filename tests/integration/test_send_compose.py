"""Composed messages end to end: `tuimail send` mailx-style as a subprocess, and replies built
by the composer, through the outbox and the test SMTP server, read back over IMAP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient
from servers.certs import CertAuthority
from servers.dovecot import DovecotServer, User
from servers.smtp import SMTPServer

from tuimail import config as config_mod
from tuimail import locations
from tuimail.account.sending import flush
from tuimail.mail.compose import compose, envelope_recipients, message_bytes, reply
from tuimail.mail.parse import parse_message
from tuimail.models import Address
from tuimail.store import Store

pytestmark = pytest.mark.servers

RUNNER = """
import sys
from tuimail.cli import main
sys.exit(main(sys.argv[1:]))
"""


def write_config(user: User, smtp: SMTPServer, dovecot: DovecotServer) -> Path:
    path = locations.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[accounts.work]
address = "{user.address}"
name = "Zoë Sender"
aliases = ["alias@tuimail.test"]
signature = "Zoë\\nhttps://example.org"

[accounts.work.incoming]
host = "{dovecot.host}"
port = {dovecot.imap_port}
tls = "starttls"
username = "{user.name}"
ca_file = "{smtp.ca_file}"

[accounts.work.outgoing]
host = "{smtp.host}"
port = {smtp.port}
tls = "starttls"
username = "{user.name}"
ca_file = "{smtp.ca_file}"
""",
        encoding="utf-8",
    )
    return path


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )


@pytest.fixture
def sender(
    smtp_server: SMTPServer,
    dovecot: DovecotServer,
    mail_user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> User:
    monkeypatch.setenv("TUIMAIL_PASSWORD_WORK", mail_user.password)
    write_config(mail_user, smtp_server, dovecot)
    return mail_user


def fetch_inbox(dovecot: DovecotServer, ca: CertAuthority, user: User) -> list[EmailMessage]:
    with IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl_context=ca.client_context()) as imap:
        imap.login(user.name, user.password)
        imap.select_folder("INBOX")
        uids = imap.search("ALL")
        data = imap.fetch(uids, ["RFC822"]) if uids else {}
    return [
        message_from_bytes(data[u][b"RFC822"], policy=policy.default)  # type: ignore[misc]
        for u in sorted(data)
    ]


def test_plain_message_prints_its_message_id_and_arrives(
    sender: User, smtp_server: SMTPServer, dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    done = run("send", "-s", "Lunch?", "--", sender.address, stdin=b"See you at 12.\n")
    assert done.returncode == 0, done.stderr
    message_id = done.stdout.decode().strip()
    assert message_id.startswith("<") and message_id.endswith("@tuimail.test>")
    [msg] = fetch_inbox(dovecot, test_ca, sender)
    assert msg["Message-ID"] == message_id
    assert msg["Subject"] == "Lunch?"
    assert msg["From"] == f"Zoë Sender <{sender.address}>"
    text = msg.get_content().replace("\r\n", "\n")
    assert text == "See you at 12.\n\n-- \nZoë\nhttps://example.org\n"
    assert msg["Date"] and msg["Bcc"] is None


def test_non_ascii_cc_bcc_attachments_html(
    sender: User, smtp_server: SMTPServer, dovecot: DovecotServer, tmp_path: Path
) -> None:
    report = tmp_path / "Bericht für März.pdf"
    report.write_bytes(b"%PDF-1.4 " + bytes(range(256)))
    notes = tmp_path / "notes.txt"
    notes.write_text("Grüße aus Köln — ☕\n", encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text("<p>Grüße <b>aus</b> Köln</p>", encoding="utf-8")
    done = run(
        "send",
        "-s", "Grüße 📎",
        "-c", "Ann Ärger <cc@tuimail.test>",
        "-b", "secret@tuimail.test",
        "-a", str(report),
        "--html", str(page),
        "--body-file", str(notes),
        "--json",
        "--", sender.address,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "sent"
    [received] = smtp_server.received()
    assert received.rcpt_tos == (sender.address, "cc@tuimail.test", "secret@tuimail.test")
    assert b"secret@tuimail.test" not in received.data  # Bcc only on the envelope
    assert received.data.isascii()  # RFC 2047/2231 and transfer encodings
    msg = message_from_bytes(received.data, policy=policy.default)
    assert msg["Subject"] == "Grüße 📎"
    assert msg["Cc"] == "Ann Ärger <cc@tuimail.test>"
    body = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n").startswith("Grüße aus Köln — ☕\n")
    assert html is not None and "<b>aus</b>" in html.get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "Bericht für März.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == report.read_bytes()


def test_from_alias_and_bad_input_queue_nothing(
    sender: User, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    done = run(
        "send", "-s", "x", "--from", "alias@tuimail.test", "--", sender.address, stdin=b"hi\n"
    )
    assert done.returncode == 0, done.stderr
    [received] = smtp_server.received()
    assert received.mail_from == "alias@tuimail.test"
    sent = message_from_bytes(received.data, policy=policy.default)
    assert sent["From"] == "Zoë Sender <alias@tuimail.test>"  # the account's name, the alias

    for args, needle in [
        (["-s", "x", "--", "good@tuimail.test", "bad@@tuimail.test"], "bad@@tuimail.test"),
        (["-s", "x", "-c", "nobody", "--", "good@tuimail.test"], "nobody"),
        (
            ["-s", "x", "-a", str(tmp_path / "missing.pdf"), "--", "good@tuimail.test"],
            "missing.pdf",
        ),
        (["-s", "x"], "No recipients"),
        (["-s", "x", "-t"], "-t reads a complete message"),
    ]:
        bad = run("send", *args, stdin=b"hi\n")
        assert bad.returncode == 2, (args, bad.stderr)
        assert needle in bad.stderr.decode()
    assert json.loads(run("outbox", "--json").stdout or b"null") is None  # nothing queued
    assert len(smtp_server.received()) == 1


def test_body_not_utf8_is_refused(sender: User) -> None:
    done = run("send", "-s", "x", "--", sender.address, stdin=b"caf\xe9\n")
    assert done.returncode == 2
    assert b"not UTF-8" in done.stderr


def test_reply_threading_and_no_header_injection_from_the_subject(
    sender: User,
    smtp_server: SMTPServer,
    dovecot: DovecotServer,
    test_ca: CertAuthority,
    tmp_path: Path,
) -> None:
    hostile = (
        b"From: Mallory <mallory@tuimail.test>\r\n"
        b"To: " + sender.address.encode() + b"\r\n"
        b"Subject: =?utf-8?q?Invoice=0D=0ABcc:_victim@evil.test=0D=0AX-Injected:_yes?=\r\n"
        b"Message-ID: <parent@tuimail.test>\r\n"
        b"References: <root@tuimail.test> <middle@tuimail.test>\r\n"
        b"In-Reply-To: <middle@tuimail.test>\r\n"
        b"\r\nPlease pay.\r\n"
    )
    original = parse_message(hostile)
    me = Address("Zoë Sender", sender.address)
    draft = reply(original, me=[me], reply_all=True)
    msg = compose(
        from_=me,
        to=[Address("", sender.address)],  # deliver to ourselves to read it back
        cc=draft.cc,
        subject=draft.subject,
        body="Paid.\n\n" + draft.body,
        in_reply_to=draft.in_reply_to,
        references=draft.references,
    )
    raw = message_bytes(msg)
    config, problems = config_mod.load(locations.config_file())
    assert not problems
    with Store.open(locations.store_dir()) as store:
        store.outbox_add("work", raw, sender.address, envelope_recipients(msg))
        report = asyncio.run(flush(store, config))
    assert [o.status for o in report.outcomes] == ["sent"]
    [received] = smtp_server.received()
    assert received.rcpt_tos == (sender.address,)  # no victim smuggled onto the envelope
    [back] = fetch_inbox(dovecot, test_ca, sender)
    assert back["X-Injected"] is None and back["Bcc"] is None
    assert back["Subject"].startswith("Re: Invoice")
    assert "\n" not in back["Subject"] and "\r" not in back["Subject"]
    assert back["In-Reply-To"] == "<parent@tuimail.test>"
    assert back["References"].split() == [
        "<root@tuimail.test>",
        "<middle@tuimail.test>",
        "<parent@tuimail.test>",
    ]
    assert "> Please pay." in back.get_content()
