"""The outbox flow with a real store and the real test SMTP server: queue, flush, settle,
retry schedule, refusals, Sent copies, crash recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from servers.dovecot import DovecotServer, User, free_port
from servers.smtp import SMTPServer

from tuimail import config as config_mod
from tuimail.account.sending import FlushReport, flush, header_fields
from tuimail.config import Config
from tuimail.errors import ExitCode
from tuimail.models import FolderRole
from tuimail.store import Store

pytestmark = pytest.mark.servers


def make_config(
    user: User,
    smtp: SMTPServer,
    dovecot: DovecotServer,
    *,
    smtp_port: int | None = None,
    protocol: str = "imap",
    save_sent: bool = True,
) -> Config:
    ca = str(smtp.ca_file)
    incoming = {
        "protocol": protocol,
        "host": dovecot.host,
        "port": dovecot.imap_port if protocol == "imap" else dovecot.pop3_port,
        "tls": "starttls",
        "username": user.name,
        "ca_file": ca,
    }
    data = {
        "accounts": {
            "work": {
                "address": user.address,
                "name": "Test User",
                "incoming": incoming,
                "outgoing": {
                    "host": smtp.host,
                    "port": smtp_port or smtp.port,
                    "tls": "starttls",
                    "username": user.name,
                    "ca_file": ca,
                    "save_sent": save_sent,
                    "timeout": 10.0,
                },
            }
        }
    }
    config, problems = config_mod.parse(data)
    assert not problems, problems
    return config


def message(user: User, to: str, subject: str, bcc: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Test User <{user.address}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@tuimail.test>"
    msg.set_content(f"This is {subject}.\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as s:
        yield s


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch, mail_user: User) -> str:
    monkeypatch.setenv("TUIMAIL_PASSWORD_WORK", mail_user.password)
    return mail_user.password


def run_flush(store: Store, config: Config, **kwargs: object) -> FlushReport:
    return asyncio.run(flush(store, config, **kwargs))  # type: ignore[arg-type]


def test_flush_sends_everything_over_one_connection_and_files_sent_copies(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    config = make_config(mail_user, smtp_server, dovecot)
    ids = [
        store.outbox_add(
            "work",
            message(mail_user, mail_user.address, f"note {i}"),
            mail_user.address,
            [mail_user.address],
        )
        for i in range(3)
    ]
    hidden = "hidden@elsewhere.test"
    ids.append(
        store.outbox_add(
            "work",
            message(mail_user, mail_user.address, "with bcc"),
            mail_user.address,
            [mail_user.address, hidden],
        )
    )
    report = run_flush(store, config)
    assert [o.status for o in report.outcomes] == ["sent"] * 4
    assert [o.item_id for o in report.outcomes] == ids
    assert report.exit_code() == ExitCode.OK
    assert store.outbox_items() == []
    received = smtp_server.received()
    assert len(received) == 4
    assert received[3].rcpt_tos == (mail_user.address, hidden)
    assert b"hidden@" not in received[3].data
    # Sent copies: in the account's Sent folder, seen, with an APPEND queued for IMAP.
    sent = store.folder_by_role("work", FolderRole.SENT)
    assert sent is not None and sent.total == 4
    ops = store.pending_ops("work")
    assert [op.kind for op in ops] == ["append"] * 4
    rows = store.list_messages(account="work", folder=sent.name)
    bcc_copy = next(r for r in rows if r.envelope.subject == "with bcc")
    raw = store.raw(bcc_copy.id)
    assert raw is not None and header_fields(raw, "bcc") == [hidden]
    assert all(r.flags.seen for r in rows)


def test_save_sent_false_and_pop3_accounts(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    config = make_config(mail_user, smtp_server, dovecot, save_sent=False)
    store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "one"), mail_user.address, ["x@tuimail.test"]
    )
    assert [o.sent_saved for o in run_flush(store, config).outcomes] == [False]
    assert store.folder_by_role("work", FolderRole.SENT) is None

    pop = make_config(mail_user, smtp_server, dovecot, protocol="pop3")
    store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "two"), mail_user.address, ["x@tuimail.test"]
    )
    assert [o.sent_saved for o in run_flush(store, pop).outcomes] == [True]
    sent = store.folder_by_role("work", FolderRole.SENT)
    assert sent is not None and sent.total == 1
    assert store.pending_ops("work") == []  # a local folder: nothing to replay


def test_server_down_queues_with_backoff_then_delivers_exactly_once(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    down = make_config(mail_user, smtp_server, dovecot, smtp_port=free_port("127.0.0.1"))
    up = make_config(mail_user, smtp_server, dovecot)
    item = store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "later"), mail_user.address, ["x@tuimail.test"]
    )
    before = datetime.now(UTC)
    report = run_flush(store, down)
    [outcome] = report.outcomes
    assert outcome.status == "queued" and outcome.exit_code == ExitCode.QUEUED
    assert "refused the connection" in outcome.error
    [queued] = store.outbox_items()
    assert queued.state == "queued" and "refused" in queued.last_error
    assert queued.next_attempt is not None
    assert before + timedelta(seconds=50) <= queued.next_attempt <= before + timedelta(seconds=70)

    # Not due yet: a cron flush leaves it alone even with the server back.
    waiting = run_flush(store, up)
    assert waiting.outcomes == [] and [i.id for i in waiting.waiting] == [item]
    assert smtp_server.received() == []
    # Its time has come: delivered once, gone from the outbox.
    later = queued.next_attempt + timedelta(seconds=1)
    assert [o.status for o in run_flush(store, up, now=lambda: later).outcomes] == ["sent"]
    assert run_flush(store, up, ignore_schedule=True).outcomes == []
    assert len(smtp_server.received()) == 1 and store.outbox_items() == []
    assert item not in [i.id for i in store.outbox_items()]


def test_wrong_password_keeps_the_message_queued(
    store: Store,
    smtp_server: SMTPServer,
    dovecot: DovecotServer,
    mail_user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUIMAIL_PASSWORD_WORK", "not-the-password")
    config = make_config(mail_user, smtp_server, dovecot)
    store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "auth"), mail_user.address, ["x@tuimail.test"]
    )
    report = run_flush(store, config)
    assert [o.status for o in report.outcomes] == ["queued"]
    assert report.exit_code() == ExitCode.AUTH
    assert "not-the-password" not in report.outcomes[0].error
    assert store.outbox_items()[0].state == "queued"


def test_refused_recipient_fails_for_good_and_is_not_resent(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    config = make_config(mail_user, smtp_server, dovecot)
    smtp_server.reject_recipient("nobody@tuimail.test")
    rcpts = ["x@tuimail.test", "nobody@tuimail.test"]
    store.outbox_add(
        "work", message(mail_user, ", ".join(rcpts), "refused"), mail_user.address, rcpts
    )
    ok = store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "fine"), mail_user.address, ["x@tuimail.test"]
    )
    report = run_flush(store, config)
    refused, fine = report.outcomes
    assert refused.status == "failed" and refused.exit_code == ExitCode.FAILURE
    assert "nobody@tuimail.test: 550" in refused.error
    assert [(r.address, r.accepted) for r in refused.recipients] == [
        ("x@tuimail.test", True),
        ("nobody@tuimail.test", False),
    ]
    assert fine.status == "sent" and fine.item_id == ok
    [left] = store.outbox_items()
    assert left.state == "failed" and "nobody@tuimail.test" in left.last_error
    assert run_flush(store, config, ignore_schedule=True).outcomes == []
    assert [m.rcpt_tos for m in smtp_server.received()] == [("x@tuimail.test",)]


def test_temporary_data_refusal_is_retried(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    config = make_config(mail_user, smtp_server, dovecot)
    smtp_server.set_data_reply("451 4.3.0 try again later")
    store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "busy"), mail_user.address, ["x@tuimail.test"]
    )
    [outcome] = run_flush(store, config).outcomes
    assert outcome.status == "queued" and outcome.retry_at is not None
    [item] = store.outbox_items()
    assert item.attempts == 1 and item.state == "queued"
    smtp_server.set_data_reply(None)
    [outcome] = run_flush(store, config, ignore_schedule=True).outcomes
    assert outcome.status == "sent"
    assert len(smtp_server.received()) == 1


def test_item_left_sending_by_a_crash_becomes_uncertain_and_needs_force(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    config = make_config(mail_user, smtp_server, dovecot)
    item = store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "maybe"), mail_user.address, ["x@tuimail.test"]
    )
    store.outbox_mark_attempt(item)  # as a process killed after DATA would leave it
    report = run_flush(store, config, ignore_schedule=True)
    assert report.recovered == [item] and report.outcomes == []
    assert store.outbox_items()[0].state == "uncertain"
    assert run_flush(store, config, ignore_schedule=True).outcomes == []
    assert smtp_server.received() == []
    [outcome] = run_flush(store, config, force=True).outcomes
    assert outcome.status == "sent"
    assert len(smtp_server.received()) == 1


def test_accounts_filter_and_unknown_account(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    config = make_config(mail_user, smtp_server, dovecot)
    store.outbox_add(
        "gone",
        message(mail_user, "x@tuimail.test", "orphan"),
        mail_user.address,
        ["x@tuimail.test"],
    )
    store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "mine"), mail_user.address, ["x@tuimail.test"]
    )
    assert run_flush(store, config, accounts=["other"]).outcomes == []
    report = run_flush(store, config)
    statuses = {o.account: (o.status, o.exit_code) for o in report.outcomes}
    assert statuses == {"gone": ("skipped", ExitCode.CONFIG), "work": ("sent", ExitCode.OK)}
    assert [i.account for i in store.outbox_items()] == ["gone"]


def test_release_resends_a_failed_or_uncertain_item_on_request(
    store: Store, smtp_server: SMTPServer, dovecot: DovecotServer, mail_user: User, password: str
) -> None:
    config = make_config(mail_user, smtp_server, dovecot)
    rcpt = ["x@tuimail.test"]
    failed = store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "was refused"), mail_user.address, rcpt
    )
    store.outbox_mark_failed(failed, "550 no", None)
    maybe = store.outbox_add(
        "work", message(mail_user, "x@tuimail.test", "was cut"), mail_user.address, rcpt
    )
    store.outbox_mark_attempt(maybe)
    assert run_flush(store, config).outcomes == []  # neither goes on its own
    assert run_flush(store, config, item_ids=[failed, maybe]).outcomes == []
    report = run_flush(store, config, item_ids=[failed, maybe], release=[failed, maybe])
    assert [(o.item_id, o.status) for o in report.outcomes] == [(failed, "sent"), (maybe, "sent")]
    assert store.outbox_items() == []
    assert len(smtp_server.received()) == 2
