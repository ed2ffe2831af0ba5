"""Server texts that reach the screen: greetings, BYE and NO texts, -ERR replies, SMTP
refusals, folder names. Each row runs the real command line (`python -m tuimail sync`,
`folders`, `send`, `outbox`) against the scripted fake server and checks what it prints.

Oracle: stdout and stderr hold no ESC, no other C0 control but TAB/LF, no DEL, no C1
control (as characters) and no bidi override; where tuimail quotes the server, the hostile
text is still shown (made harmless), so the user learns what the server said; the exit code is the documented
one for the failure.
"""

# ruff: noqa: E501  (one case per row)
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from adversarial_support import assert_bytes_terminal_safe
from servers.certs import CertAuthority
from servers.fake import FakeServer, Step, close, expect, send

from tuimail.errors import ExitCode

FakeFactory = Callable[..., FakeServer]
PASSWORD = "pw-texts-3318"
EVIL = b"\x1b]0;pwned\x07\x1b[2J\xc2\x9b31m\xe2\x80\xaeEVIL-TEXT"

IMAP_LOGIN: list[Step] = [
    send(b"* OK fake IMAP ready\r\n"),
    expect(b"CAPABILITY"),
    send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n{tag} OK done\r\n"),
    expect(b"AUTHENTICATE PLAIN"),
    send(b"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n"),
]
LOGOUT = [expect(b"LOGOUT"), send(b"* BYE bye\r\n{tag} OK done\r\n"), close()]
SELECT_EMPTY = b"* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n{tag} OK done\r\n"
POP_GREETING: list[Step] = [
    send(b"+OK ready\r\n"),
    expect(b"CAPA"),
    send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"),
]
SMTP_HELLO: list[Step] = [
    send(b"220 fake\r\n"),
    expect(b"EHLO"),
    send(b"250-fake\r\n250 AUTH PLAIN\r\n"),
    expect(b"AUTH PLAIN"),
    send(b"235 ok\r\n"),
]


@dataclass(frozen=True)
class Row:
    name: str
    protocol: str  # imap, pop3, smtp
    script: list[Step]
    commands: list[tuple[str, ...]]  # run in order; the last one's exit code is checked
    exit_code: int
    shows_text: bool = True  # the server's words are quoted (harmlessly) in the output


# fmt: off
ROWS: list[Row] = [
    Row("IMAP greeting BYE", "imap", [send(b"* BYE " + EVIL + b"\r\n"), close()], [("sync",)], ExitCode.PROTOCOL),
    Row("IMAP login NO", "imap", [*IMAP_LOGIN[:3], expect(b"AUTHENTICATE"), send(b"{tag} NO [AUTHENTICATIONFAILED] " + EVIL + b"\r\n"), *LOGOUT], [("sync",)], ExitCode.AUTH),
    Row("IMAP BYE mid-sync", "imap", [*IMAP_LOGIN, expect(b"LIST"), send(b'* LIST () "/" INBOX\r\n{tag} OK done\r\n'), expect(b"SELECT"), send(b"* BYE " + EVIL + b"\r\n"), close()], [("sync",)], ExitCode.NETWORK),
    Row("IMAP SELECT NO", "imap", [*IMAP_LOGIN, expect(b"LIST"), send(b'* LIST () "/" INBOX\r\n{tag} OK done\r\n'), expect(b"SELECT"), send(b"{tag} NO " + EVIL + b"\r\n"), *LOGOUT], [("sync",)], ExitCode.OK),
    Row("IMAP ALERT", "imap", [*IMAP_LOGIN, expect(b"LIST"), send(b'* LIST () "/" INBOX\r\n{tag} OK done\r\n'), expect(b"SELECT"), send(b"* OK [ALERT] " + EVIL + b"\r\n" + SELECT_EMPTY), *LOGOUT], [("sync",)], ExitCode.OK, shows_text=False),
    Row("IMAP folder names", "imap", [*IMAP_LOGIN, expect(b"LIST"), send(b'* LIST () "/" INBOX\r\n* LIST () "/" {%d}\r\n%s\r\n* LIST (\\Noselect) "/" "[@click=app.quit]x\xe2\x80\xae"\r\n{tag} OK done\r\n' % (len(EVIL), EVIL)), expect(b"SELECT"), send(SELECT_EMPTY), *LOGOUT], [("sync",), ("folders",), ("list",)], ExitCode.OK),
    Row("POP3 login -ERR", "pop3", [*POP_GREETING, expect(b"USER"), send(b"+OK\r\n"), expect(b"PASS"), send(b"-ERR [AUTH] " + EVIL + b"\r\n"), expect(b"QUIT"), send(b"+OK\r\n"), close()], [("sync",)], ExitCode.AUTH),
    Row("POP3 -ERR to the listing", "pop3", [*POP_GREETING, expect(b"USER"), send(b"+OK\r\n"), expect(b"PASS"), send(b"+OK\r\n"), expect(b"LIST"), send(b"-ERR " + EVIL + b"\r\n"), expect(b"QUIT"), send(b"+OK\r\n"), close()], [("sync",)], ExitCode.PROTOCOL, shows_text=False),
    Row("SMTP RCPT refused", "smtp", [*SMTP_HELLO, expect(b"MAIL"), send(b"250 ok\r\n"), expect(b"RCPT"), send(b"550 " + EVIL + b"\r\n"), expect(b"RSET"), send(b"250 ok\r\n"), expect(b"QUIT"), send(b"221 bye\r\n"), close()], [("send", "-s", "hello", "bob@example.org"), ("outbox",)], ExitCode.OK),
    Row("SMTP greeting 554", "smtp", [send(b"554 " + EVIL + b"\r\n"), close()], [("send", "-s", "hello", "bob@example.org"), ("outbox",)], ExitCode.OK),
]
# fmt: on

# Rows that find a bug in another module: strict xfail until its owner fixes it.
BUGS: dict[str, str] = {}


def _env(tmp_path: Path, server: FakeServer, ca: CertAuthority, protocol: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (tmp_path / var.lower()).mkdir()
        env[var] = str(tmp_path / var.lower())
    env.pop("TUIMAIL_CONFIG", None)
    env.pop("TUIMAIL_DATA_DIR", None)
    env["TUIMAIL_PASSWORD_FAKE"] = PASSWORD
    env["TUIMAIL_PASSWORD_FAKE_OUTGOING"] = PASSWORD
    env["COLUMNS"] = "200"
    common = f'host = "{server.host}"\nport = {server.port}\ntls = "implicit"\nusername = "alice"\nca_file = "{ca.ca_file}"\ntimeout = 2\n'
    if protocol == "smtp":
        # the incoming side points at a closed port: only `send` talks to the fake server
        server_block = f"[accounts.fake.outgoing]\n{common}"
    else:
        server_block = (
            f'[accounts.fake.incoming]\nprotocol = "{protocol}"\nbodies = "all"\n{common}'
        )
    config = Path(env["XDG_CONFIG_HOME"]) / "tuimail" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[accounts.fake]\naddress = "alice@example.org"\n\n{server_block}')
    return env


def _params() -> list[object]:
    return [
        pytest.param(
            row,
            id=row.name,
            marks=[pytest.mark.xfail(strict=True, reason=BUGS[row.name])]
            if row.name in BUGS
            else [],
        )
        for row in ROWS
    ]


@pytest.mark.parametrize("row", _params())
def test_server_text_is_printed_safely(
    fake_server: FakeFactory, test_ca: CertAuthority, tmp_path: Path, row: Row
) -> None:
    server = fake_server(
        row.script, protocol=row.protocol, tls=test_ca.server.server_context(), strict=False
    )
    env = _env(tmp_path, server, test_ca, row.protocol)
    printed = b""
    done = None
    for argv in row.commands:
        done = subprocess.run(
            [sys.executable, "-m", "tuimail", *argv],
            env=env,
            capture_output=True,
            input=b"body\n",
            timeout=60,
            check=False,
        )
        for stream, data in (("stdout", done.stdout), ("stderr", done.stderr)):
            assert_bytes_terminal_safe(data, f"{stream} of tuimail {' '.join(argv)}")
        printed += done.stdout + done.stderr
    assert done is not None
    assert done.returncode == row.exit_code, printed.decode(errors="replace")
    if row.shows_text:
        assert b"EVIL-TEXT" in printed or b"pwned" in printed, (
            f"the server's words were not shown:\n{printed.decode(errors='replace')}"
        )
