"""Fixtures of the fault-injection suite, and the summary printed at the end of a run.

With pytest's importlib import mode test directories are not on `sys.path`; the harness
modules (`proxy`, `fault_harness`, `fault_scenarios`) are imported from here.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import fault_harness  # noqa: E402

if TYPE_CHECKING:
    from servers.certs import CertAuthority
    from servers.dovecot import DovecotServer
    from servers.smtp import SMTPServer


@pytest.fixture(autouse=True)
def _test_trust_store(
    test_ca: CertAuthority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trust only the test CA, also in `python -m tuimail` subprocesses.

    Loading the system trust store costs ~0.1 s per TLS context on this machine, and every
    connection makes one; with hundreds of cases that is most of the run. Nothing here
    talks to anything but 127.0.0.1, so the system store is not needed.
    """
    empty = tmp_path / "no-system-certs"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))


def _scratch(prefix: str, fallback: Path) -> Path:
    """A new directory on tmpfs when there is one (else below `fallback`)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix=prefix, dir=shm))
    return Path(tempfile.mkdtemp(prefix=prefix, dir=fallback))


@pytest.fixture
def work_dir(tmp_path: Path) -> Iterator[Path]:
    """A scratch dir for the local store, on tmpfs when there is one: the store fsyncs every
    batch, and what is tested here is the order of the writes, not the disk."""
    path = _scratch("tuimail-faults-", tmp_path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class FaultServers:
    """The suite's own Dovecots, one per IMAP sync mode, started on first use.

    Their mail lives on tmpfs: a few hundred cases leave a few hundred users behind, and
    removing that tree from disk took longer than the cases themselves.
    """

    MODES = ("qresync", "condstore", "plain")

    def __init__(self, ca: CertAuthority, scratch: Path) -> None:
        self.ca = ca
        self.scratch = scratch
        self.started: dict[str, DovecotServer] = {}
        self.roots: list[Path] = []

    def dovecot(self, mode: str = "qresync") -> DovecotServer:
        from servers.dovecot import CAPABILITY_WITHOUT_CONDSTORE, DovecotServer

        if mode not in self.started:
            capability = {
                "qresync": None,
                "condstore": CAPABILITY_WITHOUT_CONDSTORE + " CONDSTORE",
                "plain": CAPABILITY_WITHOUT_CONDSTORE,
            }[mode]
            root = _scratch(f"tuimail-fault-dovecot-{mode}-", self.scratch)
            self.roots.append(root)
            server = DovecotServer(self.ca, capability_override=capability, root=root)
            server.start()
            self.started[mode] = server
        return self.started[mode]

    def stop(self) -> None:
        for server in self.started.values():
            server.stop()
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_servers(
    test_ca: CertAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultServers]:
    servers = FaultServers(test_ca, tmp_path_factory.mktemp("fault-servers"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def imap_server(fault_servers: FaultServers) -> Callable[[str], DovecotServer]:
    """`imap_server(mode)`: the Dovecot for a sync mode ("qresync", "condstore", "plain")."""
    return fault_servers.dovecot


@pytest.fixture
def fault_dovecot(fault_servers: FaultServers) -> DovecotServer:
    """The suite's QRESYNC Dovecot (IMAP, POP3; users log in to `fault_smtp` too)."""
    return fault_servers.dovecot("qresync")


@pytest.fixture(scope="session")
def fault_smtp(
    test_ca: CertAuthority, fault_servers: FaultServers
) -> Iterator[dict[str, SMTPServer]]:
    """Submission servers (STARTTLS and implicit TLS) that log in the users of
    `fault_dovecot` and only record what they accept: cases count deliveries by their own
    unique Message-IDs."""
    from servers.smtp import SMTPServer

    users = fault_servers.dovecot("qresync").passwords
    servers = {
        "starttls": SMTPServer(test_ca, users=users),
        "implicit": SMTPServer(test_ca, users=users, implicit_tls=True),
    }
    for server in servers.values():
        server.start()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = fault_harness.summary_lines()
    if lines:
        terminalreporter.write_sep("=", "fault injection summary")
        for line in lines:
            terminalreporter.write_line(line)
