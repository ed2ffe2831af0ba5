"""`tuimail send` and `tuimail outbox` as subprocesses (real exit codes) against the test
SMTP server and Dovecot, including processes killed between the steps of a delivery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient
from servers.certs import CertAuthority
from servers.dovecot import DovecotServer, User, free_port
from servers.smtp import SMTPServer

from tuimail import locations
from tuimail.store import Store

pytestmark = pytest.mark.servers

# Runs the real CLI; `PATCH` code (if any) runs first, to kill the process at a chosen step.
RUNNER = """
import os, signal, sys
PATCH = os.environ.get("TUIMAIL_TEST_PATCH", "")
exec(PATCH)
from tuimail.cli import main
sys.exit(main(sys.argv[1:]))
"""

KILL_AFTER_ATTEMPT = """
from tuimail.store import store as _s
_orig = _s.Store.outbox_mark_attempt
def _attempt(self, item_id):
    _orig(self, item_id)
    os.kill(os.getpid(), signal.SIGKILL)
_s.Store.outbox_mark_attempt = _attempt
"""

KILL_BEFORE_MARK_SENT = """
from tuimail.store import store as _s
def _sent(self, item_id):
    os.kill(os.getpid(), signal.SIGKILL)
_s.Store.outbox_mark_sent = _sent
"""

KILL_AFTER_QUEUE = """
from tuimail.store import store as _s
_orig = _s.Store.outbox_add
def _add(self, *args, **kwargs):
    _orig(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
_s.Store.outbox_add = _add
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Env:
    user: User
    smtp: SMTPServer
    dovecot: DovecotServer
    config: Path

    def run(self, *args: str, stdin: bytes = b"", patch: str = "") -> Result:
        env = dict(os.environ, TUIMAIL_TEST_PATCH=patch)
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, *args],
            input=stdin,
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode())

    def items(self) -> list[dict[str, object]]:
        result = self.run("outbox", "--json")
        assert result.code == 0, result.err
        return [json.loads(line) for line in result.out.splitlines()]


def write_config(user: User, smtp_port: int, smtp: SMTPServer, dovecot: DovecotServer) -> Path:
    path = locations.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[accounts.work]
address = "{user.address}"
name = "Test Üser"
default = true

[accounts.work.incoming]
host = "{dovecot.host}"
port = {dovecot.imap_port}
tls = "starttls"
username = "{user.name}"
ca_file = "{smtp.ca_file}"

[accounts.work.outgoing]
host = "{smtp.host}"
port = {smtp_port}
tls = "starttls"
username = "{user.name}"
ca_file = "{smtp.ca_file}"
timeout = 10
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cli(
    smtp_server: SMTPServer,
    dovecot: DovecotServer,
    mail_user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> Env:
    monkeypatch.setenv("TUIMAIL_PASSWORD_WORK", mail_user.password)
    return Env(
        mail_user,
        smtp_server,
        dovecot,
        write_config(mail_user, smtp_server.port, smtp_server, dovecot),
    )


def set_smtp_port(env: Env, port: int) -> None:
    write_config(env.user, port, env.smtp, env.dovecot)


def raw_message(env: Env, to: str, subject: str, extra: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = env.user.address
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@tuimail.test>"
    for line in filter(None, extra.split("\n")):
        name, value = line.split(": ", 1)
        msg[name] = value
    msg.set_content(f"body of {subject}\n")
    return msg.as_bytes()


def queue(env: Env, to: str, subject: str) -> int:
    result = env.run(
        "send", "-i", "--queue", "--json", "--", to, stdin=raw_message(env, to, subject)
    )
    assert result.code == 0, result.err
    return int(json.loads(result.out)["id"])


# ----------------------------------------------------------------------------- outbox


def test_outbox_lists_queued_items_with_reasons(cli: Env) -> None:
    assert cli.run("outbox").out.strip() == "The outbox is empty."
    set_smtp_port(cli, free_port("127.0.0.1"))
    first = queue(cli, "a@tuimail.test", "first \x1b[31mred")
    flushed = cli.run("outbox", "flush")
    assert flushed.code == 75
    assert "refused the connection" in flushed.err
    listing = cli.run("outbox")
    assert listing.code == 0
    assert f"{first:>5}" in listing.out and "queued, next try" in listing.out
    assert "refused the connection" in listing.out
    assert "\x1b" not in listing.out  # the subject's escape sequence is neutralized
    [item] = cli.items()
    assert item["id"] == first and item["state"] == "queued"
    assert item["recipients"] == ["a@tuimail.test"] and item["attempts"] == 0
    assert "refused" in str(item["last_error"]) and item["next_attempt"]


def test_server_down_then_flush_delivers_exactly_once(cli: Env) -> None:
    set_smtp_port(cli, free_port("127.0.0.1"))
    raw = raw_message(cli, cli.user.address, "while down")
    result = cli.run("send", "-i", "--", cli.user.address, stdin=raw)
    assert result.code == 75, result.err
    assert "kept in the outbox" in result.err and "tuimail outbox flush" in result.err
    assert cli.smtp.received() == []

    set_smtp_port(cli, cli.smtp.port)
    assert cli.run("outbox", "flush").code == 0  # not due yet: nothing tried, nothing wrong
    assert cli.smtp.received() == []
    flushed = cli.run("outbox", "flush", "--now")
    assert flushed.code == 0 and flushed.err == "" and flushed.out == ""  # cron: quiet
    assert cli.run("outbox", "flush", "--now").code == 0
    assert len(cli.smtp.received()) == 1
    assert cli.items() == []
    assert len(list(cli.dovecot.messages(cli.user))) == 1  # delivered into the INBOX


def test_drop_and_retry(cli: Env) -> None:
    set_smtp_port(cli, free_port("127.0.0.1"))
    keep = queue(cli, "a@tuimail.test", "keep")
    drop = queue(cli, "b@tuimail.test", "drop")
    assert cli.run("outbox", "drop", "999").code == 8
    assert cli.run("outbox", "drop", str(drop)).code == 0
    assert [i["id"] for i in cli.items()] == [keep]
    assert not (Path(locations.store_dir()) / "outbox" / f"{drop}.eml").exists()
    set_smtp_port(cli, cli.smtp.port)
    retried = cli.run("outbox", "retry", str(keep))
    assert retried.code == 0, retried.err
    assert f"sent #{keep}" in retried.out
    assert [m.rcpt_tos for m in cli.smtp.received()] == [("a@tuimail.test",)]


# ----------------------------------------------------------------------------- crashes


def test_killed_after_queueing_loses_nothing(cli: Env) -> None:
    raw = raw_message(cli, "a@tuimail.test", "killed early")
    result = cli.run("send", "-i", "--", "a@tuimail.test", stdin=raw, patch=KILL_AFTER_QUEUE)
    assert result.code == -9
    [item] = cli.items()
    assert item["state"] == "queued"
    assert cli.run("outbox", "flush").code == 0
    assert len(cli.smtp.received()) == 1 and cli.items() == []


@pytest.mark.parametrize(
    ("patch", "delivered"),
    [(KILL_AFTER_ATTEMPT, 0), (KILL_BEFORE_MARK_SENT, 1)],
    ids=["after-claim", "after-data"],
)
def test_killed_mid_delivery_is_uncertain_never_resent_silently(
    cli: Env, patch: str, delivered: int
) -> None:
    raw = raw_message(cli, "a@tuimail.test", "killed")
    result = cli.run("send", "-i", "--", "a@tuimail.test", stdin=raw, patch=patch)
    assert result.code == -9
    assert len(cli.smtp.received()) == delivered
    [item] = cli.items()
    assert item["state"] == "sending"

    # The next run (a cron flush) finds it: uncertain, reported, not resent.
    flushed = cli.run("outbox", "flush", "--now")
    assert flushed.code == 0
    assert "may" in flushed.err and str(item["id"]) in flushed.err
    assert [i["state"] for i in cli.items()] == ["uncertain"]
    assert cli.run("outbox", "flush", "--now").code == 0
    assert len(cli.smtp.received()) == delivered
    assert "uncertain" in cli.run("outbox").out

    # Only the user's explicit word sends it again.
    forced = cli.run("outbox", "flush", "--force")
    assert forced.code == 0, forced.err
    assert len(cli.smtp.received()) == delivered + 1
    assert cli.items() == []


def test_send_json_outcome_and_sent_copy(cli: Env) -> None:
    raw = raw_message(cli, cli.user.address, "json out")
    result = cli.run("send", "-i", "--json", "--", cli.user.address, stdin=raw)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["status"] == "sent" and out["message_id"] == "<json-out@tuimail.test>"
    assert out["recipients"] == [
        {"address": cli.user.address, "code": 250, "reply": "OK", "accepted": True}
    ]
    assert out["saved_to_sent"] is True
    with Store.open(locations.store_dir()) as store:
        ops = store.pending_ops("work")
        assert [op.kind for op in ops] == ["append"]


def test_rejected_recipient_exit_code_and_message(cli: Env) -> None:
    cli.smtp.reject_recipient("nobody@tuimail.test")
    raw = raw_message(cli, "a@tuimail.test, nobody@tuimail.test", "partly bad")
    result = cli.run("send", "-t", stdin=raw)
    assert result.code == 1
    assert "nobody@tuimail.test: 550" in result.err
    assert "nobody was sent the message" in result.err
    assert "outbox retry" in result.err
    assert cli.smtp.received() == []
    [item] = cli.items()
    assert item["state"] == "failed"


def test_wrong_password_exit_4_and_queued(cli: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUIMAIL_PASSWORD_WORK", "wrong")
    result = cli.run(
        "send", "-i", "--", "a@tuimail.test", stdin=raw_message(cli, "a@tuimail.test", "pw")
    )
    assert result.code == 4
    assert "wrong" not in result.err
    assert [i["state"] for i in cli.items()] == ["queued"]


def test_read_back_over_imap_after_lmtp_delivery(
    cli: Env, mail_user_factory: Callable[[], User], test_ca: CertAuthority
) -> None:
    rcpt = mail_user_factory()
    raw = raw_message(cli, rcpt.address, "read me back", extra="In-Reply-To: <parent@tuimail.test>")
    assert cli.run("send", "-t", stdin=raw).code == 0
    with IMAPClient(
        cli.dovecot.host, port=cli.dovecot.imaps_port, ssl_context=test_ca.client_context()
    ) as imap:
        imap.login(rcpt.name, rcpt.password)
        imap.select_folder("INBOX")
        [uid] = imap.search("ALL")
        fetched = imap.fetch([uid], ["RFC822"])[uid][b"RFC822"]
    msg = message_from_bytes(fetched, policy=policy.default)
    assert msg["Subject"] == "read me back"
    assert msg["In-Reply-To"] == "<parent@tuimail.test>"
    assert msg.get_content().strip() == "body of read me back"


def test_sent_copy_reaches_the_imap_sent_folder_on_sync(cli: Env) -> None:
    # Let the IMAP engine learn the folders (and which one is Sent) first.
    synced = cli.run("sync", "--quiet")
    assert synced.code == 0, synced.err
    hidden = "hidden@elsewhere.test"
    raw = raw_message(cli, "a@tuimail.test", "filed in sent", extra=f"Bcc: {hidden}")
    assert cli.run("send", "-t", stdin=raw).code == 0
    assert not list(cli.dovecot.messages(cli.user, "Sent"))  # not before the next sync
    synced = cli.run("sync", "--quiet")
    assert synced.code == 0, synced.err
    [path] = list(cli.dovecot.messages(cli.user, "Sent"))
    copy = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert copy["Subject"] == "filed in sent"
    assert copy["Bcc"] == hidden  # your own copy shows whom you Bcc'd
    [delivered] = cli.smtp.received()
    assert delivered.rcpt_tos == ("a@tuimail.test", hidden)  # -t: Bcc is on the envelope
    assert hidden.encode() not in delivered.data  # ... never in the transmitted message


LEAN_RUNNER = """
import sys
before = set(sys.modules)  # what the interpreter (and any site hook) loaded on its own
from tuimail.cli import main
try:
    main(sys.argv[1:])
finally:
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                   ("textual", "rich", "imapclient", "html2text", "keyring", "tuimail") and
                   (m.split(".")[0] != "tuimail" or m.startswith(("tuimail.ui", "tuimail.sync",
                                                                   "tuimail.backends.imap",
                                                                   "tuimail.backends.pop3",
                                                                   "tuimail.mail.render",
                                                                   "tuimail.mail.htmltext",
                                                                   "tuimail.mail.phishing",
                                                                   "tuimail.store.query"))))
    # Standard modules the send path has no use for, each a few ms at every start.
    heavy += sorted(m for m in set(sys.modules) - before if m in
                    ("shutil", "ctypes", "pickle", "difflib", "mimetypes", "tempfile"))
    print(" ".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["send", "--help"], ["send", "-i", "--", "a@tuimail.test"], ["outbox"]]
)
def test_send_imports_nothing_heavy(cli: Env, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEAN_RUNNER, *args],
        input=raw_message(cli, "a@tuimail.test", "lean"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.stderr.decode().strip().splitlines()[-1:] in ([], [""]), done.stderr.decode()
