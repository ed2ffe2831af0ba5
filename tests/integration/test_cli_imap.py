"""The whole stack against the real Dovecot: the CLI as a subprocess (config file, worker,
IMAP engine, store) and the app's Hub (watching workers woken by IDLE)."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from tuimail import config as config_mod
from tuimail.account.hub import Hub
from tuimail.account.worker import Event, NewMailEvent


def message(i: int, subject: str, body: str = "body text") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {i} <s{i}@example.org>"
    msg["To"] = "me@example.com"
    msg["Subject"] = subject
    msg["Date"] = f"Tue, {i % 27 + 1:02d} Oct 2026 09:00:00 +0000"
    msg["Message-ID"] = f"<cli{i}.{time.monotonic_ns()}@example.org>"
    msg.set_content(body)
    return msg.as_bytes()


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuimail", *argv],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )


def rows(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def account(dovecot: Any, mail_user: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "tuimail" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[accounts.work]\naddress = "{mail_user.address}"\n\n'
        f'[accounts.work.incoming]\nhost = "127.0.0.1"\nport = {dovecot.imaps_port}\n'
        f'tls = "implicit"\nusername = "{mail_user.name}"\nca_file = "{dovecot.ca_file}"\n'
        f'bodies = "none"\ntimeout = 10\n'
    )
    monkeypatch.setenv("TUIMAIL_PASSWORD_WORK", mail_user.password)
    return mail_user


@contextlib.contextmanager
def other_client(dovecot: Any, user: Any, folder: str = "INBOX") -> Iterator[IMAPClient]:
    ctx = ssl.create_default_context(cafile=str(dovecot.ca_file))
    client = IMAPClient("127.0.0.1", dovecot.imaps_port, ssl_context=ctx, timeout=10)
    client.login(user.name, user.password)
    client.select_folder(folder)
    try:
        yield client
    finally:
        client.logout()


def test_cli_sync_read_flag_move_round_trip(dovecot: Any, account: Any) -> None:
    for i in range(5):
        dovecot.deliver(account, message(i, f"Subject {i}", f"text of message {i}"))
    done = run("sync")
    assert done.returncode == 0, done.stderr
    assert "5 new" in done.stdout

    listed = rows(run("list", "--json", "--folder", "INBOX").stdout)
    assert len(listed) == 5 and not any(m["body_local"] for m in listed)  # bodies = "none"
    target = next(m for m in listed if m["subject"] == "Subject 3")

    shown = run("read", str(target["id"]))  # fetched on demand through the worker
    assert shown.returncode == 0, shown.stderr
    assert "text of message 3" in shown.stdout

    assert run("flag", str(target["id"]), "--flagged", "--add", "$Work", "--sync").returncode == 0
    with other_client(dovecot, account) as c:
        flags = c.fetch([target["uid"]], ["FLAGS"])[target["uid"]][b"FLAGS"]
    assert {b"\\Flagged", b"\\Seen", b"$Work"} <= set(flags)

    assert run("move", str(target["id"]), "Archive", "--sync").returncode == 0
    with other_client(dovecot, account, "Archive") as c:
        moved = c.fetch(c.search("ALL"), ["ENVELOPE"])
    assert [d[b"ENVELOPE"].subject for d in moved.values()] == [b"Subject 3"]

    # a change made by another client comes back on the next sync
    with other_client(dovecot, account) as c:
        uid = c.search(["SUBJECT", "Subject 1"])[0]
        c.add_flags([uid], [b"\\Seen"])
    assert run("sync", "--quiet").returncode == 0
    after = {m["subject"]: m for m in rows(run("list", "--json", "--folder", "INBOX").stdout)}
    assert "seen" in after["Subject 1"]["flags"] and "Subject 3" not in after


def test_cli_sync_wrong_password_exit_code(
    dovecot: Any, account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUIMAIL_PASSWORD_WORK", "wrong")
    done = run("sync")
    assert done.returncode == 4, done.stderr
    assert "wrong" not in done.stderr.lower().replace("wrong password", "")  # no secret echoed


def test_cli_sync_unreachable_server_exit_code(account: Any) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "tuimail" / "config.toml"
    text = path.read_text()
    import re

    path.write_text(re.sub(r"port = \d+", "port = 1", text))
    done = run("sync")
    assert done.returncode == 6, done.stderr
    assert "refused" in done.stderr


def test_hub_watches_inbox_and_reports_new_mail(dovecot: Any, account: Any, tmp_path: Path) -> None:
    config, problems = config_mod.load()
    assert problems == []
    events: list[Event] = []
    arrived = threading.Event()

    def collect(event: Event) -> None:
        events.append(event)
        if isinstance(event, NewMailEvent) and event.folder == "INBOX":
            arrived.set()

    hub = Hub(config, tmp_path / "store")
    hub.start(collect)
    try:
        deadline = time.monotonic() + 20
        while not any(getattr(e, "state", "") == "idle" for e in events):
            assert time.monotonic() < deadline, events
            time.sleep(0.05)
        dovecot.deliver(account, message(99, "Arrives while idling"))
        assert arrived.wait(20), [type(e).__name__ for e in events]
    finally:
        started = time.monotonic()
        hub.stop()
        assert time.monotonic() - started < 5
