"""Shared fixtures: isolation of every test, and the real test servers (started on demand).

Servers:
- `test_ca` (session): a private CA; `test_ca.ca_file` is the client's `ca_file`,
  `test_ca.client_context()` a verifying context, `test_ca.expired()` etc. bad certificates.
- `dovecot` (session): a private Dovecot (see tests/servers/dovecot.py); `mail_user` gives each
  test a fresh user with an empty mailbox; `dovecot_no_condstore` hides CONDSTORE/QRESYNC.
- `smtp_server`: an aiosmtpd submission server (STARTTLS required, AUTH against the Dovecot
  users) that delivers into Dovecot over LMTP; reset before each test. `smtp_factory(...)`
  makes one with other options (implicit TLS, size limit, no LMTP).
- `fake_server(script, ...)`: a scripted raw-protocol server (tests/servers/fake.py).

Nothing is started unless a test asks for it, so unit tests stay fast.  Every test runs with
XDG dirs in its tmp_path and a file keyring (tests/keyring_backend.py).
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    # tests/ is not a package: `servers.*` and `keyring_backend` are imported from here.
    sys.path.insert(0, str(TESTS_DIR))

if TYPE_CHECKING:
    from servers.certs import CertAuthority
    from servers.dovecot import DovecotServer, User
    from servers.fake import FakeServer
    from servers.smtp import SMTPServer

KEYRING_BACKEND = "keyring_backend.TestKeyring"

# ----------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True)
def _isolate_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's real config, data, cache and keyring."""
    home = tmp_path / "xdg"
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("TUIMAIL_CONFIG", raising=False)
    monkeypatch.delenv("TUIMAIL_DATA_DIR", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", KEYRING_BACKEND)
    monkeypatch.setenv("TUIMAIL_TEST_KEYRING_FILE", str(tmp_path / "keyring.json"))
    # So that a `python -m tuimail` subprocess can load the test keyring backend too.
    pythonpath = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(TESTS_DIR), pythonpath) if p))
    if "keyring.core" in sys.modules:
        # keyring picks its backend once per process; make sure it is ours.
        import keyring
        from keyring_backend import TestKeyring

        if not isinstance(keyring.get_keyring(), TestKeyring):
            keyring.set_keyring(TestKeyring())


# ----------------------------------------------------------------------------- certificates


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    from servers.certs import CertAuthority

    return CertAuthority(tmp_path_factory.mktemp("ca"))


# ----------------------------------------------------------------------------- Dovecot

_dovecots: list[DovecotServer] = []
_LOG_OFFSETS = pytest.StashKey[dict[int, int]]()
_DOVECOT_FIXTURES = {"dovecot", "dovecot_no_condstore", "dovecot_factory"}


def _start_dovecot(test_ca: CertAuthority, **kwargs: Any) -> DovecotServer:
    from servers.dovecot import DovecotServer

    server = DovecotServer(test_ca, **kwargs)
    server.start()
    _dovecots.append(server)
    return server


@pytest.fixture(scope="session")
def dovecot(test_ca: CertAuthority) -> Iterator[DovecotServer]:
    """The session's Dovecot: IMAP (STARTTLS + IMAPS), POP3 (STLS + POP3S), LMTP."""
    server = _start_dovecot(test_ca)
    try:
        yield server
    finally:
        server.stop()
        _dovecots.remove(server)


@pytest.fixture(scope="session")
def dovecot_no_condstore(test_ca: CertAuthority) -> Iterator[DovecotServer]:
    """A second Dovecot that does not advertise CONDSTORE or QRESYNC."""
    from servers.dovecot import CAPABILITY_WITHOUT_CONDSTORE

    server = _start_dovecot(test_ca, capability_override=CAPABILITY_WITHOUT_CONDSTORE)
    try:
        yield server
    finally:
        server.stop()
        _dovecots.remove(server)


@pytest.fixture
def dovecot_factory(test_ca: CertAuthority) -> Iterator[Callable[..., DovecotServer]]:
    """Start a Dovecot with other options (`capability_override=`, `extra_config=`) for one
    test; it is stopped afterwards."""
    started: list[DovecotServer] = []

    def make(**kwargs: Any) -> DovecotServer:
        server = _start_dovecot(test_ca, **kwargs)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()
            _dovecots.remove(server)


_user_numbers = itertools.count(1)


def _fresh_user(server: DovecotServer) -> User:
    return server.add_user(f"user{next(_user_numbers):04d}", secrets.token_urlsafe(12))


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> User:
    """A new user on the session Dovecot, with empty INBOX and special folders.

    `mail_user.name`/`.password` log in; `.address` is name@tuimail.test.
    """
    return _fresh_user(dovecot)


@pytest.fixture
def mail_user_factory(dovecot: DovecotServer) -> Callable[[], User]:
    """More fresh users on the session Dovecot (e.g. a sender and a recipient)."""
    return lambda: _fresh_user(dovecot)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    item.stash[_LOG_OFFSETS] = {id(s): s.log_size() for s in _dovecots}
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    uses_dovecot = _DOVECOT_FIXTURES & set(getattr(item, "fixturenames", ()))
    if report.failed and _dovecots and uses_dovecot:
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for server in _dovecots:
            text = server.log_since(offsets.get(id(server), 0))
            tail = "\n".join(text.splitlines()[-200:])
            if tail.strip():
                report.sections.append((f"Dovecot log ({server.root})", tail))
    return report


# ----------------------------------------------------------------------------- SMTP


@pytest.fixture(scope="session")
def _smtp_session(test_ca: CertAuthority, dovecot: DovecotServer) -> Iterator[SMTPServer]:
    from servers.smtp import SMTPServer

    server = SMTPServer(test_ca, users=dovecot.passwords, lmtp_socket=dovecot.lmtp_socket)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server(_smtp_session: SMTPServer) -> SMTPServer:
    """Submission with STARTTLS required before AUTH; users are the Dovecot users; accepted
    mail is recorded in `.messages` and delivered over LMTP to Dovecot users."""
    _smtp_session.reset()
    return _smtp_session


@pytest.fixture
def smtp_factory(
    test_ca: CertAuthority,
) -> Iterator[Callable[..., SMTPServer]]:
    """`smtp_factory(implicit_tls=True, users={...}, lmtp_socket=None, ...)` -> started
    SMTPServer, stopped after the test."""
    from servers.smtp import SMTPServer

    started: list[SMTPServer] = []

    def make(**kwargs: Any) -> SMTPServer:
        kwargs.setdefault("users", {})
        server = SMTPServer(test_ca, **kwargs)
        server.start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


# ----------------------------------------------------------------------------- fake servers


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    """`fake_server(script, protocol="imap", tls=None)` -> a started FakeServer on loopback.

    After the test every fake server is stopped, and a step that did not match what the
    client sent fails the test (pass `strict=False` to allow it).
    """
    from servers.fake import FakeServer

    started: list[tuple[FakeServer, bool]] = []

    def make(*args: Any, strict: bool = True, **kwargs: Any) -> FakeServer:
        server = FakeServer(*args, **kwargs)
        server.start()
        started.append((server, strict))
        return server

    yield make
    problems = []
    for server, strict in started:
        server.stop()
        if strict and server.mismatches:
            problems.extend([*server.mismatches, server.transcript()])
    if problems:
        pytest.fail("fake server script mismatch:\n" + "\n".join(problems), pytrace=False)
