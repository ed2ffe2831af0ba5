"""The command line end to end on a local Maildir account: sync, list, read, search, flag,
delete, folders — run as a real subprocess, checking output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest


def run(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuimail", *argv],
        capture_output=True,
        text=True,
        input=stdin.decode() if stdin is not None else None,
        env=os.environ.copy(),
        timeout=60,
    )


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def make_message(
    n: int, subject: str, body: str = "hello", sender: str = "Ann <ann@example.org>"
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "me@example.com"
    msg["Subject"] = subject
    msg["Date"] = f"Mon, {n + 1:02d} Jun 2026 10:00:00 +0200"
    msg["Message-ID"] = f"<m{n}@example.org>"
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def local_account(tmp_path: Path) -> Path:
    maildir = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
        (maildir / ".Archive" / sub).mkdir(parents=True)
    (maildir / "new" / "1.a.host").write_bytes(make_message(1, "Invoice for June", "please pay"))
    (maildir / "cur" / "2.a.host:2,S").write_bytes(make_message(2, "Lunch?", "noodles at noon"))
    hostile = make_message(
        3, "\x1b]0;pwned\x07 [@click=app.quit]evil[/]", "body \x1b[31mred\x1b[0m"
    )
    (maildir / "cur" / "3.a.host:2,").write_bytes(hostile)
    (maildir / ".Archive" / "cur" / "4.a.host:2,S").write_bytes(make_message(4, "Old news"))
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "tuimail" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[accounts.local]\naddress = "me@example.com"\n\n'
        f'[accounts.local.incoming]\nprotocol = "maildir"\npath = "{maildir}"\n'
    )
    return maildir


def test_sync_list_read_search_flag_delete(local_account: Path) -> None:
    done = run("sync", "--json")
    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    summary = [e for e in events if e["event"] == "summary"]
    assert summary and summary[0]["new"] == 4

    listed = json_lines(run("list", "--json").stdout)
    assert [m["subject"] for m in listed][:2] == [
        "Old news",
        "\x1b]0;pwned\x07 [@click=app.quit]evil[/]",
    ]
    assert {
        "id",
        "account",
        "folder",
        "uid",
        "date",
        "from",
        "to",
        "subject",
        "flags",
        "size",
        "message_id",
    } <= set(listed[0])
    invoice = next(m for m in listed if m["subject"] == "Invoice for June")
    assert "seen" not in invoice["flags"] and invoice["date"].endswith("+02:00")

    unread = json_lines(run("list", "--unread", "--json").stdout)
    assert {m["subject"] for m in unread} >= {"Invoice for June"}
    assert all("seen" not in m["flags"] for m in unread)

    text = run("list")
    assert text.returncode == 0
    assert "\x1b" not in text.stdout and "\x07" not in text.stdout

    shown = run("read", str(invoice["id"]))
    assert shown.returncode == 0 and "please pay" in shown.stdout
    after = json_lines(run("list", "--json").stdout)
    assert "seen" in next(m for m in after if m["id"] == invoice["id"])["flags"]

    hostile = next(m for m in listed if "pwned" in m["subject"])
    out = run("read", "--no-mark", str(hostile["id"])).stdout
    assert "\x1b" not in out and "\x07" not in out and "[@click=app.quit]" in out

    found = json_lines(run("search", "noodles", "--json").stdout)
    assert [m["subject"] for m in found] == ["Lunch?"]
    assert json_lines(run("search", "folder:Archive", "--json").stdout)[0]["subject"] == "Old news"

    assert run("flag", str(invoice["id"]), "--flagged", "--add", "$Work").returncode == 0
    flags = next(m for m in json_lines(run("list", "--json").stdout) if m["id"] == invoice["id"])[
        "flags"
    ]
    assert "flagged" in flags and "$Work" in flags

    assert run("delete", str(invoice["id"])).returncode == 0
    remaining = json_lines(run("list", "--json").stdout)
    assert invoice["id"] not in {m["id"] for m in remaining if m["folder"] != "Trash"}

    folders = json_lines(run("folders", "--json").stdout)
    assert {"INBOX", "Archive"} <= {f["folder"] for f in folders}


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["read", "999999"], 8, "No message with id 999999"),
        (["flag", "1"], 2, "Say what to change"),
        (["search", 'subject:"unclosed'], 2, ""),
        (["sync", "nosuchaccount"], 3, "No account named"),
    ],
)
def test_errors_have_honest_exit_codes(
    local_account: Path, argv: list[str], code: int, fragment: str
) -> None:
    assert run("sync").returncode == 0
    done = run(*argv)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert fragment in done.stderr


def test_missing_config_is_a_config_error(tmp_path: Path) -> None:
    done = run("sync")
    assert done.returncode == 3
    assert "config example" in done.stderr


def test_config_check_reports_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[accounts.a]\nadress = "x"\n[accounts.a.incoming]\nhost = 5\ntls = "none"\n')
    done = run("--config", str(bad), "config", "check")
    assert done.returncode == 3
    for fragment in (
        "accounts.a.adress",
        "did you mean 'address'",
        "accounts.a.incoming.host",
        "accounts.a.incoming.tls",
    ):
        assert fragment in done.stderr
