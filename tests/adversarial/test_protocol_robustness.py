"""Hostile servers past the handshake: lying or huge literals, disconnects, unexpected BYE,
unrequested or malformed FETCH data, hostile folder names and UIDL values, slow and flooding
servers, SMTP reply misalignment and smuggling sequences.

Each row drives a real sync (IMAP, POP3) or a real send (SMTP) against the scripted fake
server, with a fresh store in a sandbox directory. Oracle, for every row:
- only a `TuimailError` ever comes out (no stray exception), within a few seconds, with a
  message that names the server and is safe to print;
- the store holds exactly the messages the server really sent, byte for byte, never a
  partial or foreign one, and a folder's sync state never runs ahead of what was stored;
- nothing is created outside the store's directory, whatever a folder name or UIDL says;
- SMTP: no message data is ever sent unless the server's own reply to DATA was 354, a
  message is reported delivered only when the server accepted it, and no body line can
  end the DATA early.
"""

# ruff: noqa: E501  (one case per row)
from __future__ import annotations

import asyncio
import gc
import os
import re
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from adversarial_support import terminal_problems
from servers.certs import CertAuthority
from servers.fake import FakeServer, Step, close, expect, send, sleep

from tuimail.backends.pop3 import stuff
from tuimail.backends.smtp import SMTPClient
from tuimail.config import AccountConfig, IncomingConfig, OutgoingConfig
from tuimail.errors import TuimailError
from tuimail.models import Protocol, TLSMode
from tuimail.secrets import Secret
from tuimail.store import Store
from tuimail.sync.engine import ImapSession
from tuimail.sync.pop3_engine import Pop3Session

FakeFactory = Callable[..., FakeServer]
USER = "alice"
PASSWORD = "pw-robust-9921"
SECONDS = 5.0


def message(n: int, extra: bytes = b"") -> bytes:
    return (
        b"From: s%d@example.org\r\nSubject: Robust %d\r\nMessage-ID: <rob%d@example.org>\r\n\r\nbody %d%s\r\n"
        % (n, n, n, n, extra)
    )


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """The store lives in sandbox/store; the test checks nothing else appears in sandbox."""
    path = tmp_path / "sandbox"
    path.mkdir()
    return path


@pytest.fixture
def store(sandbox: Path) -> Iterator[Store]:
    s = Store.open(sandbox / "store")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUIMAIL_PASSWORD_FAKE", PASSWORD)


def _assert_contained(sandbox: Path) -> None:
    """Every file the sync made is inside sandbox/store, and none is a symlink out."""
    assert sorted(p.name for p in sandbox.iterdir()) == ["store"]
    root = (sandbox / "store").resolve()
    for dirpath, dirnames, filenames in os.walk(sandbox / "store"):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            assert not path.is_symlink(), path
            assert path.resolve().is_relative_to(root), path
    assert not Path("pwned").exists() and not Path.home().joinpath("pwned").exists()


def _assert_clear_error(error: TuimailError, server: FakeServer) -> None:
    """The message says which server; server text in it is raw by design (the CLI and the
    app sanitize what they print: test_server_texts.py checks the printed form)."""
    text = str(error)
    assert server.host in text or "server" in text.lower(), text
    # every account here uses implicit TLS: an error about STARTTLS would mislead
    assert "STARTTLS" not in text and "STLS" not in text, text


# ----------------------------------------------------------------------------- IMAP


def _imap_account(server: FakeServer, ca: CertAuthority, **options: object) -> AccountConfig:
    incoming = IncomingConfig(
        host=server.host,
        port=server.port,
        tls=TLSMode.IMPLICIT,
        username=USER,
        ca_file=ca.ca_file,
        protocol=Protocol.IMAP,
        timeout=1.0,
        bodies="all",
        **options,
    )  # type: ignore[arg-type]
    return AccountConfig(name="fake", address="alice@example.org", incoming=incoming)


IMAP_LOGIN: list[Step] = [
    send(b"* OK fake IMAP ready\r\n"),
    expect(b"CAPABILITY"),
    send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n{tag} OK done\r\n"),
    expect(b"AUTHENTICATE PLAIN"),
    send(b"{tag} OK [CAPABILITY IMAP4rev1 UIDPLUS] logged in\r\n"),
]
LIST_INBOX = [
    expect(b'LIST "" "*"'),
    send(b'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK done\r\n'),
]
SELECT_OK = b"* %d EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT %d] ok\r\n{tag} OK [READ-WRITE] done\r\n"
FETCH_ALL = b"UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])"
LOGOUT = [expect(b"LOGOUT"), send(b"* BYE bye\r\n{tag} OK done\r\n"), close()]


def fetched(seq: int, uid: int, raw: bytes, size: int | None = None) -> bytes:
    return (
        b'* %d FETCH (UID %d FLAGS () RFC822.SIZE %d INTERNALDATE "01-Jan-2024 10:00:00 +0000" BODY[] {%d}\r\n%s)\r\n'
        % (seq, uid, len(raw), size if size is not None else len(raw), raw)
    )


def select_and_fetch(exists: int, fetch_reply: bytes) -> list[Step]:
    return [
        expect(b'SELECT "INBOX"'),
        send(SELECT_OK % (exists, exists + 1)),
        expect(FETCH_ALL),
        send(fetch_reply),
    ]


# "ok": completes without warnings; "warning": completes, the folder reports the problem
# (a protocol error in one folder does not stop the others); "error": the sync raises.
Outcome = Literal["ok", "warning", "error", "warning-or-error"]


@dataclass(frozen=True)
class ImapRow:
    name: str
    script: list[Step]
    stored: dict[int, bytes]  # uid -> raw expected in INBOX afterwards
    outcome: Outcome
    memory_mb: float = 0.0  # when set, traced peak memory must stay under it
    extra: dict[str, object] = field(default_factory=dict)


M1, M2 = message(1), message(2)
HOSTILE_NAMES = [
    b"../../../../tmp/pwned",
    b"..",
    b".",
    b"/etc",
    b"a/../../b",
    b"INBOX/../..",
    b"~",
    b"$(touch pwned)",
    b"`touch pwned`",
    b"; touch pwned",
    b"con",
    b"nul.txt",
    b"\x1b]0;pwned\x07",
    b"*",
    b"%",
    b"x" * 3000,
]


def _list_hostile() -> bytes:
    lines = [b'* LIST (\\HasNoChildren) "/" INBOX\r\n']
    for name in HOSTILE_NAMES:
        lines.append(b'* LIST (\\HasNoChildren) "/" {%d}\r\n%s\r\n' % (len(name), name))
    lines.append(b'* LIST (\\HasNoChildren) "/" {7}\r\nnul\x00nul\r\n')
    return b"".join(lines) + b"{tag} OK done\r\n"


def _every_folder(count: int) -> list[Step]:
    steps: list[Step] = []
    for _ in range(count):
        steps += [
            expect(re.compile(rb"SELECT ")),
            send(SELECT_OK % (1, 2)),
            expect(FETCH_ALL),
            send(fetched(1, 1, M1) + b"{tag} OK done\r\n"),
        ]
    return steps


# fmt: off
IMAP_ROWS: list[ImapRow] = [
    ImapRow("baseline", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(2, fetched(1, 1, M1) + fetched(2, 2, M2) + b"{tag} OK done\r\n"), *LOGOUT], {1: M1, 2: M2}, "ok"),
    ImapRow("literal claims 2 GB", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b"* 1 FETCH (UID 1 BODY[] {2147483648}\r\n" + b"x" * 65536)], {}, "warning", memory_mb=40),
    ImapRow("literal claims 60 MB, sends 64 KB, hangs up", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b"* 1 FETCH (UID 1 BODY[] {60000000}\r\n" + b"x" * 65536), close()], {}, "warning-or-error", memory_mb=40),
    ImapRow("disconnect mid-literal after a good message", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(2, fetched(1, 1, M1) + b"* 2 FETCH (UID 2 BODY[] {500}\r\nFrom: partial"), close()], {}, "error"),
    ImapRow("literal shorter than declared, then OK", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b"* 1 FETCH (UID 1 BODY[] {400}\r\n" + M1 + b")\r\n{tag} OK done\r\n"), sleep(1.5)], {}, "warning-or-error"),
    ImapRow("literal longer than declared", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, fetched(1, 1, M1 + b"TRAILING GARBAGE)\r\n* 9 FETCH (UID 9 BODY[] {4}\r\nevil", size=len(M1)) + b"{tag} OK done\r\n"), *LOGOUT], {}, "warning"),
    ImapRow("BYE instead of the SELECT answer", [*IMAP_LOGIN, *LIST_INBOX, expect(b'SELECT "INBOX"'), send(b"* BYE going down\r\n"), close()], {}, "error"),
    ImapRow("BYE with terminal escapes", [*IMAP_LOGIN, *LIST_INBOX, expect(b'SELECT "INBOX"'), send(b"* BYE \x1b]0;pwned\x07\x1b[2J\xc2\x9b31m gone\r\n"), close()], {}, "error"),
    ImapRow("BYE between two FETCH responses", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(2, fetched(1, 1, M1) + b"* BYE shutting down\r\n"), close()], {}, "error"),
    ImapRow("tagged NO with escapes to the FETCH", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b"{tag} NO \x1b[31mno\x1b]8;;http://evil/\x07\r\n"), *LOGOUT], {}, "warning"),
    ImapRow("ALERT with escapes", [*IMAP_LOGIN, *LIST_INBOX, expect(b'SELECT "INBOX"'), send(b"* OK [ALERT] \x1b]0;pwned\x07 read this\r\n" + SELECT_OK % (1, 2)), expect(FETCH_ALL), send(fetched(1, 1, M1) + b"{tag} OK done\r\n"), *LOGOUT], {1: M1}, "warning"),
    ImapRow("unsolicited FETCH before any request", [*IMAP_LOGIN, *LIST_INBOX, expect(b'SELECT "INBOX"'), send(fetched(7, 77, message(77)) + b"* 5 FETCH (FLAGS (\\Deleted))\r\n" + SELECT_OK % (1, 2)), expect(FETCH_ALL), send(fetched(1, 1, M1) + b"{tag} OK done\r\n"), *LOGOUT], {1: M1}, "ok"),
    ImapRow("FETCH with unbalanced parentheses", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b"* 1 FETCH (UID 1 FLAGS ((((\\Seen BODY[] {4}\r\nxxxx\r\n{tag} OK done\r\n"), sleep(1.5)], {}, "warning"),
    ImapRow("UID 0 and a 30-digit UID", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(2, fetched(1, 0, message(0)) + fetched(2, 10**30, message(3)) + b"{tag} OK done\r\n"), *LOGOUT], {}, "warning"),
    ImapRow("negative and absurd RFC822.SIZE", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b'* 1 FETCH (UID 1 FLAGS () RFC822.SIZE -5 INTERNALDATE "99-Foo-99999 99:99:99 +9999" BODY[] {%d}\r\n%s)\r\n{tag} OK done\r\n' % (len(M1), M1)), *LOGOUT], {}, "warning"),
    ImapRow("malformed ENVELOPE and BODYSTRUCTURE", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b'* 1 FETCH (UID 1 ENVELOPE (NIL NIL (("x" NIL)) BODYSTRUCTURE ("text" NIL) FLAGS () RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n{tag} OK done\r\n' % (len(M1), len(M1), M1)), *LOGOUT], {}, "warning"),
    ImapRow("BODYSTRUCTURE nested 100k deep", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b"* 1 FETCH (UID 1 BODYSTRUCTURE " + b"(" * 100_000 + b")" * 100_000 + b")\r\n" + fetched(1, 1, M1) + b"{tag} OK done\r\n"), *LOGOUT], {}, "warning"),
    ImapRow("flood of 100k untagged lines", [*IMAP_LOGIN, *LIST_INBOX, expect(b'SELECT "INBOX"'), send(b"* 1 RECENT\r\n" * 100_000 + SELECT_OK % (1, 2)), expect(FETCH_ALL), send(fetched(1, 1, M1) + b"{tag} OK done\r\n"), *LOGOUT], {1: M1}, "ok"),
    ImapRow("20 MB line without CRLF", [*IMAP_LOGIN, *LIST_INBOX, expect(b'SELECT "INBOX"'), send(b"* OK " + b"A" * 20_000_000), sleep(1.5)], {}, "warning", memory_mb=80),
    ImapRow("server stalls mid-response", [*IMAP_LOGIN, *LIST_INBOX, *select_and_fetch(1, b"* 1 FETCH (UID 1 BODY[] {100}\r\nFrom: x"), sleep(4)], {}, "error"),
    ImapRow("hostile folder names", [*IMAP_LOGIN, expect(b'LIST "" "*"'), send(_list_hostile()), *_every_folder(len(HOSTILE_NAMES) + 2), *LOGOUT], {1: M1}, "warning"),
]
# fmt: on

IMAP_BUGS: dict[str, str] = {}


def _imap_params() -> list[object]:
    return [
        pytest.param(
            row,
            id=row.name,
            marks=[pytest.mark.xfail(strict=True, reason=IMAP_BUGS[row.name])]
            if row.name in IMAP_BUGS
            else [],
        )
        for row in IMAP_ROWS
    ]


@pytest.mark.parametrize("row", _imap_params())
def test_imap_hostile_server(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store, sandbox: Path, row: ImapRow
) -> None:
    server = fake_server(
        row.script, protocol="imap", tls=test_ca.server.server_context(), strict=False
    )
    session = ImapSession(_imap_account(server, test_ca), store)
    error: TuimailError | None = None
    warnings: list[str] = []
    started = time.monotonic()
    if row.memory_mb:
        tracemalloc.start()
    try:
        session.connect()
        summary = session.sync(None, lambda p: None)
        warnings = [w for f in summary.folders for w in f.warnings] + list(summary.warnings)
        for warning in warnings:
            # alerts are made safe where they are collected (the rest where printed)
            if warning.startswith("Server alert"):
                assert not terminal_problems(warning, single_line=True), warning
    except TuimailError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 1e6 if row.memory_mb else 0.0
        if row.memory_mb:
            tracemalloc.stop()
        session.close()
    elapsed = time.monotonic() - started
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    if row.memory_mb:
        assert peak < row.memory_mb, f"peak {peak:.0f} MB"
    got = "error" if error is not None else "warning" if warnings else "ok"
    assert got in row.outcome.split("-or-"), (
        f"{got}: {error!r} {warnings}\n{server.transcript()[-3000:]}"
    )
    if error is not None:
        _assert_clear_error(error, server)

    inbox = store.folder("fake", "INBOX")
    stored = {}
    if inbox is not None:
        for summary_row in store.list_messages("fake", "INBOX"):
            stored[summary_row.uid] = store.raw(summary_row.id)
        # the folder never claims to be synced past what it holds
        assert inbox.state.uidnext <= max(stored, default=0) + 1 or inbox.state.uidnext == 0
    assert stored == row.stored
    _assert_contained(sandbox)
    for folder in store.folders("fake"):
        for summary_row in store.list_messages("fake", folder.name):
            assert store.raw(summary_row.id) in (None, M1, M2), folder.name


# ----------------------------------------------------------------------------- POP3


def _pop3_account(server: FakeServer, ca: CertAuthority, **options: object) -> AccountConfig:
    incoming = IncomingConfig(
        host=server.host,
        port=server.port,
        tls=TLSMode.IMPLICIT,
        username=USER,
        ca_file=ca.ca_file,
        protocol=Protocol.POP3,
        timeout=1.0,
        **options,
    )  # type: ignore[arg-type]
    return AccountConfig(name="pop", address="alice@example.org", incoming=incoming)


POP_LOGIN: list[Step] = [
    send(b"+OK ready\r\n"),
    expect(b"CAPA"),
    send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"),
    expect(b"USER "),
    send(b"+OK\r\n"),
    expect(b"PASS "),
    send(b"+OK\r\n"),
]
POP_QUIT = [expect(b"QUIT"), send(b"+OK bye\r\n"), close()]


def _pop_listing(uids: list[bytes], raws: list[bytes]) -> list[Step]:
    sizes = b"".join(b"%d %d\r\n" % (i, len(r)) for i, r in enumerate(raws, 1))
    ids = b"".join(b"%d %s\r\n" % (i, u) for i, u in enumerate(uids, 1))
    return [
        expect(b"LIST"),
        send(b"+OK\r\n" + sizes + b".\r\n"),
        expect(b"UIDL"),
        send(b"+OK\r\n" + ids + b".\r\n"),
    ]


def _retr_all(raws: list[bytes]) -> list[Step]:
    steps: list[Step] = []
    for i, raw in enumerate(raws, 1):
        steps += [expect(b"RETR %d" % i), send(b"+OK\r\n" + stuff(raw))]
    return steps


HOSTILE_UIDLS = [
    b"../../../../tmp/pwned",
    b"/etc/passwd",
    b"..",
    b"$(touch pwned)",
    b"`touch pwned`",
    b";touch${IFS}pwned",
    b"a/b\\c",
    b"\x1b]0;pwned\x07",
    b"%s%n%x",
    b"CON",
    b"u" * 70,
]


@dataclass(frozen=True)
class PopRow:
    name: str
    script: list[Step]
    subjects: list[str]
    fails: bool


RAWS = [message(i) for i in range(1, len(HOSTILE_UIDLS) + 1)]

# fmt: off
POP_ROWS: list[PopRow] = [
    PopRow("hostile UIDL values", [*POP_LOGIN, *_pop_listing(HOSTILE_UIDLS, RAWS), *_retr_all(RAWS), *POP_QUIT], sorted(f"Robust {i}" for i in range(1, len(RAWS) + 1)), False),
    PopRow("duplicate UIDL values", [*POP_LOGIN, *_pop_listing([b"same", b"same"], [M1, M2]), *_retr_all([M1, M2]), *POP_QUIT], ["Robust 1", "Robust 2"], False),
    PopRow("disconnect mid-RETR", [*POP_LOGIN, *_pop_listing([b"u1", b"u2"], [M1, M2]), expect(b"RETR 1"), send(b"+OK\r\n" + stuff(M1)), expect(b"RETR 2"), send(b"+OK\r\nFrom: partial\r\nSubject: cut"), close()], [], True),
    PopRow("-ERR with terminal escapes at login", [send(b"+OK ready\r\n"), expect(b"CAPA"), send(b"+OK\r\nUSER\r\n.\r\n"), expect(b"USER "), send(b"+OK\r\n"), expect(b"PASS "), send(b"-ERR \x1b]0;pwned\x07\x1b[2J\xc2\x9bx bad\r\n"), *POP_QUIT], [], True),
    PopRow("greeting with terminal escapes", [send(b"+OK \x1b]0;pwned\x07 hi\r\n"), expect(b"CAPA"), send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"), expect(b"USER "), send(b"+OK\r\n"), expect(b"PASS "), send(b"+OK\r\n"), *_pop_listing([b"u1"], [M1]), *_retr_all([M1]), *POP_QUIT], ["Robust 1"], False),
    PopRow("flood of 100k listing lines", [*POP_LOGIN, expect(b"LIST"), send(b"+OK\r\n" + b"".join(b"%d 10\r\n" % i for i in range(1, 100_001)) + b".\r\n"), expect(b"UIDL"), send(b"+OK\r\n1 u1\r\n.\r\n"), sleep(0.5)], [], True),
    PopRow("server stalls in the listing", [*POP_LOGIN, expect(b"LIST"), send(b"+OK\r\n1 10\r\n"), sleep(4)], [], True),
]
# fmt: on

POP_BUGS: dict[str, str] = {}


def _pop_params() -> list[object]:
    return [
        pytest.param(
            row,
            id=row.name,
            marks=[pytest.mark.xfail(strict=True, reason=POP_BUGS[row.name])]
            if row.name in POP_BUGS
            else [],
        )
        for row in POP_ROWS
    ]


@pytest.mark.parametrize("row", _pop_params())
def test_pop3_hostile_server(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store, sandbox: Path, row: PopRow
) -> None:
    server = fake_server(
        row.script, protocol="pop3", tls=test_ca.server.server_context(), strict=False
    )
    session = Pop3Session(_pop3_account(server, test_ca), store, password=Secret(PASSWORD))
    error: TuimailError | None = None
    started = time.monotonic()
    try:
        session.connect()
        summary = session.sync(None, lambda p: None)
        for warning in [w for f in summary.folders for w in f.warnings]:
            assert not terminal_problems(warning), warning
    except TuimailError as exc:
        error = exc
    finally:
        session.close()
    elapsed = time.monotonic() - started
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    assert (error is not None) == row.fails, f"error: {error!r}\n{server.transcript()[-3000:]}"
    if error is not None:
        _assert_clear_error(error, server)
    messages = store.list_messages(account="pop")
    assert sorted(m.envelope.subject for m in messages) == row.subjects
    for m in messages:
        assert store.raw(m.id) in [*RAWS, M1, M2]
    _assert_contained(sandbox)


# ----------------------------------------------------------------------------- SMTP

MAIL_MARK = b"MAILDATA-5d2f"


def _smtp_config(server: FakeServer, ca: CertAuthority) -> OutgoingConfig:
    return OutgoingConfig(
        host=server.host,
        port=server.port,
        tls=TLSMode.IMPLICIT,
        username=USER,
        ca_file=ca.ca_file,
        timeout=1.0,
    )


SMTP_HELLO: list[Step] = [
    send(b"220 fake ESMTP\r\n"),
    expect(b"EHLO"),
    send(b"250-fake\r\n250 AUTH PLAIN\r\n"),
    expect(b"AUTH PLAIN"),
    send(b"235 ok\r\n"),
]


def _data_lines(body: bytes) -> list[Step]:
    from tuimail.backends.smtp import data_payload

    return [expect(None, data=True) for _ in range(data_payload(body).count(b"\n"))]


BODY = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: s\r\n\r\n" + MAIL_MARK + b"\r\n"


@dataclass(frozen=True)
class SmtpRow:
    name: str
    script: list[Step]
    delivered: bool  # False: not delivered, whether the send raised or reported a refusal


# fmt: off
SMTP_ROWS: list[SmtpRow] = [
    SmtpRow("baseline", [*SMTP_HELLO, expect(b"MAIL"), send(b"250 ok\r\n"), expect(b"RCPT"), send(b"250 ok\r\n"), expect(b"DATA"), send(b"354 go\r\n"), *_data_lines(BODY), send(b"250 queued\r\n"), expect(b"QUIT"), send(b"221 bye\r\n"), close()], True),
    SmtpRow("extra reply after MAIL, RCPT refused", [*SMTP_HELLO, expect(b"MAIL"), send(b"250 ok\r\n250 extra\r\n"), expect(b"RCPT"), send(b"550 no such user\r\n"), expect(None), send(b"503 bad sequence\r\n"), expect(None), send(b"503 bad sequence\r\n"), expect(None), send(b"221 bye\r\n"), close()], False),
    SmtpRow("two replies to EHLO", [send(b"220 fake ESMTP\r\n"), expect(b"EHLO"), send(b"250-fake\r\n250 AUTH PLAIN\r\n250 OK\r\n"), expect(b"AUTH PLAIN"), send(b"535 no\r\n"), expect(None), send(b"503 bad\r\n"), expect(None), send(b"221 bye\r\n"), close()], False),
    SmtpRow("354 sent early, before DATA", [*SMTP_HELLO, expect(b"MAIL"), send(b"250 ok\r\n354 go ahead\r\n"), expect(b"RCPT"), send(b"550 refused\r\n"), expect(None), send(b"503 bad sequence\r\n"), expect(None), send(b"221 bye\r\n"), close()], False),
    SmtpRow("DATA refused with escapes", [*SMTP_HELLO, expect(b"MAIL"), send(b"250 ok\r\n"), expect(b"RCPT"), send(b"250 ok\r\n"), expect(b"DATA"), send(b"554 \x1b]0;pwned\x07\x1b[2J no\r\n"), expect(b"RSET"), send(b"250 ok\r\n"), expect(b"QUIT"), send(b"221 bye\r\n"), close()], False),
    SmtpRow("RCPT refused with escapes", [*SMTP_HELLO, expect(b"MAIL"), send(b"250 ok\r\n"), expect(b"RCPT"), send(b"550 \x1b[31mno\xc2\x9b2J such user\r\n"), expect(b"RSET"), send(b"250 ok\r\n"), expect(b"QUIT"), send(b"221 bye\r\n"), close()], False),
    SmtpRow("multiline reply flood", [send(b"220 fake ESMTP\r\n"), expect(b"EHLO"), send(b"250-x\r\n" * 100_000 + b"250 AUTH PLAIN\r\n"), sleep(0.5)], False),
    SmtpRow("endless reply line", [send(b"220 " + b"A" * 5_000_000), sleep(0.5)], False),
    SmtpRow("server stalls after DATA", [*SMTP_HELLO, expect(b"MAIL"), send(b"250 ok\r\n"), expect(b"RCPT"), send(b"250 ok\r\n"), expect(b"DATA"), sleep(1.5)], False),
]
# fmt: on

SMTP_BUGS: dict[str, str] = {}


def _smtp_params() -> list[object]:
    return [
        pytest.param(
            row,
            id=row.name,
            marks=[pytest.mark.xfail(strict=True, reason=SMTP_BUGS[row.name])]
            if row.name in SMTP_BUGS
            else [],
        )
        for row in SMTP_ROWS
    ]


def _data_sent(server: FakeServer) -> bool:
    return any(MAIL_MARK in chunk.data for chunk in server.received)


def _server_sent_354_to_data(server: FakeServer) -> bool:
    """True when the server's reply to the client's DATA command was a 354."""
    conv = server.conversation
    events = sorted(
        [("C", c) for c in conv.received] + [("S", c) for c in conv.sent], key=lambda e: e[1].seq
    )
    for i, (who, chunk) in enumerate(events):
        if who == "C" and chunk.data.upper().startswith(b"DATA"):
            replies = [c for w, c in events[i + 1 :] if w == "S"]
            return bool(replies) and replies[0].data.startswith(b"354")
    return False


@pytest.mark.parametrize("row", _smtp_params())
def test_smtp_hostile_server(
    fake_server: FakeFactory, test_ca: CertAuthority, row: SmtpRow
) -> None:
    server = fake_server(
        row.script, protocol="smtp", tls=test_ca.server.server_context(), strict=False
    )
    error: TuimailError | None = None
    delivered: bool | None = None
    describe = ""
    started = time.monotonic()

    async def go() -> None:
        nonlocal delivered, describe
        client = SMTPClient(
            _smtp_config(server, test_ca),
            account="fake",
            secret=lambda: Secret(PASSWORD),
            secret_is_token=False,
        )
        await client.connect()
        try:
            result = await client.send("alice@example.org", ["bob@example.org"], BODY)
            delivered, describe = result.delivered, result.describe()
        finally:
            await client.close()

    try:
        asyncio.run(go())
    except TuimailError as exc:
        # Drop the frames the error holds: SMTPClient closes a failed connection with
        # transport.close(), which only completes on a running loop; after asyncio.run the
        # socket is freed by garbage collection.
        error = exc.with_traceback(None)
        error.__context__ = error.__cause__ = None
    elapsed = time.monotonic() - started
    gc.collect()
    server.wait(closed=True, timeout=5)
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    assert bool(delivered) == row.delivered, (
        f"delivered={delivered} error={error!r}\n{server.transcript()[-2000:]}"
    )
    if error is not None:
        _assert_clear_error(error, server)
    # SendResult.describe() carries raw server text by contract ("sanitize to print"); what
    # the command line prints of it is checked in test_server_texts.py.
    assert describe or delivered is None
    if _data_sent(server):
        assert _server_sent_354_to_data(server), "message data sent without a 354 to DATA"


SMUGGLING = [
    b"\n.\n",
    b"\r\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r\n.\r",
    b"\r\n.\r\n",
    b".\r\n",
    b"\r\n..\r\n",
    b"\n.\nMAIL FROM:<x@y>\n",
    b"\r\n\x00.\r\n",
    b"\r\n.\x00\r\n",
]


@pytest.mark.parametrize("sequence", SMUGGLING, ids=[repr(s) for s in SMUGGLING])
def test_smtp_smuggling_sequences_never_end_data(
    fake_server: FakeFactory, test_ca: CertAuthority, sequence: bytes
) -> None:
    from tuimail.backends.smtp import data_payload

    body = b"Subject: s\r\n\r\nbefore" + sequence + b"after " + MAIL_MARK + b"\r\n"
    lines = data_payload(body).count(b"\n")
    server = fake_server(
        [
            *SMTP_HELLO,
            expect(b"MAIL"),
            send(b"250 ok\r\n"),
            expect(b"RCPT"),
            send(b"250 ok\r\n"),
            expect(b"DATA"),
            send(b"354 go\r\n"),
            *[expect(None, data=True) for _ in range(lines)],
            send(b"250 queued\r\n"),
            expect(b"QUIT"),
            send(b"221 bye\r\n"),
            close(),
        ],
        protocol="smtp",
        tls=test_ca.server.server_context(),
    )

    async def go() -> bool:
        async with SMTPClient(
            _smtp_config(server, test_ca),
            account="fake",
            secret=lambda: Secret(PASSWORD),
            secret_is_token=False,
        ) as client:
            return (await client.send("alice@example.org", ["bob@example.org"], body)).delivered

    assert asyncio.run(go())
    server.wait(closed=True)
    wire = server.client_bytes()
    data = wire.split(b"DATA\r\n", 1)[1]
    # exactly one terminator, at the very end of the data; no bare CR or LF anywhere
    terminator = data.index(b"\r\n.\r\n")
    assert MAIL_MARK in data[:terminator]
    assert data[terminator:].startswith(b"\r\n.\r\nQUIT")
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", data[:terminator])


def test_imap_alert_reaches_the_user(
    fake_server: FakeFactory, test_ca: CertAuthority, store: Store
) -> None:
    script = [
        *IMAP_LOGIN,
        *LIST_INBOX,
        expect(b'SELECT "INBOX"'),
        send(b"* OK [ALERT] Your mailbox is 99% full\r\n" + SELECT_OK % (0, 1)),
        *LOGOUT,
    ]
    server = fake_server(script, protocol="imap", tls=test_ca.server.server_context(), strict=False)
    session = ImapSession(_imap_account(server, test_ca), store)
    try:
        session.connect()
        summary = session.sync(None, lambda p: None)
    finally:
        session.close()
    shown = [w for f in summary.folders for w in f.warnings] + list(summary.warnings)
    assert shown == ["Server alert: Your mailbox is 99% full"], shown
