"""`python -m tuimail sync | outbox flush | send` killed with SIGKILL at a random moment.

The product has no hook to stop at a chosen step, so the moment is a random fraction of
the measured duration of an undisturbed run of the same command (measured once per
session), and the traffic goes through a slowed-down proxy so that most of that time is
protocol, not interpreter start-up. After the kill: the store must pass its integrity check
at once; then a clean run (in-process for sync, the CLI for the outbox, whose report to the
user is part of the contract) and the invariants of the matching in-process family.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fault_harness import PLANS, KillCase, finish, message_id_of
from fault_scenarios import (
    IMAP_ACCOUNT,
    POP3_ACCOUNT,
    SMTP_ACCOUNT,
    ImapWorld,
    OutboxWorld,
    Pop3World,
    Queued,
    quiet_resync_problems,
)
from proxy import FaultProxy
from servers.dovecot import DovecotServer, User
from servers.smtp import SMTPServer

from tuimail.store import Store
from tuimail.store.types import OutboxItem

pytestmark = pytest.mark.servers

# The slowed-down links: every forwarded chunk (at most CHUNK bytes) waits DELAY seconds.
SYNC_DELAY, SYNC_CHUNK = 0.004, 2048
POP3_DELAY = 0.01  # POP3 pipelines its RETRs: few round trips to slow down
SMTP_DELAY, SMTP_CHUNK = 0.01, 256
# A fifth of the kills land during start-up, before the first connection; the rest spread
# over the protocol exchange (the case's `kill_at` in [0.2, 1.1) maps onto it).
STARTUP_SHARE = 0.2
# Calibration items for the outbox flush (the exchange grows with the number of items).
CALIBRATION_ITEMS = 3


@dataclass(frozen=True)
class Timing:
    """An undisturbed run: when it first connected and when it ended (seconds from start)."""

    connect_after: float
    duration: float

    def kill_delay(self, kill_at: float, scale: float = 1.0) -> float:
        if kill_at < STARTUP_SHARE:
            return self.connect_after * kill_at / STARTUP_SHARE
        window = (self.duration - self.connect_after) * scale
        return self.connect_after + (kill_at - STARTUP_SHARE) / (1.1 - STARTUP_SHARE) * window


# Measured once per session and command.
_TIMINGS: dict[str, Timing] = {}


@dataclass
class Run:
    code: int | None  # None when killed
    out: str
    err: str
    started: float  # time.monotonic()
    seconds: float
    states: list[str] = field(default_factory=list)  # outbox states right after the kill
    connect_after: float | None = None  # seconds from start to the first connection

    def connected_at(self, proxy: FaultProxy) -> None:
        first = proxy.stats.first_connection_at
        self.connect_after = None if first is None else first - self.started


def run_cli(args: list[str], *, kill_after: float | None = None, stdin: bytes = b"") -> Run:
    """`python -m tuimail ARGS`; with `kill_after`, SIGKILL its process group then."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuimail", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: the kill reaches any helper it started
    )
    try:
        out, err = proc.communicate(stdin, timeout=kill_after if kill_after is not None else 120)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    seconds = time.monotonic() - started
    return Run(code, out.decode(errors="replace"), err.decode(errors="replace"), started, seconds)


def write_config(text: str) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "tuimail" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def incoming_section(account: str, user: User, server: DovecotServer, port: int, extra: str) -> str:
    return (
        f'[accounts.{account}]\naddress = "{user.address}"\n\n'
        f'[accounts.{account}.incoming]\nhost = "127.0.0.1"\nport = {port}\ntls = "implicit"\n'
        f'username = "{user.name}"\nca_file = "{server.ca_file}"\ntimeout = 10\n{extra}\n'
    )


def outgoing_section(account: str, user: User, smtp: SMTPServer, port: int) -> str:
    return (
        f'[accounts.{account}]\naddress = "{user.address}"\n\n'
        f'[accounts.{account}.outgoing]\nhost = "127.0.0.1"\nport = {port}\ntls = "starttls"\n'
        f'username = "{user.name}"\nca_file = "{smtp.ca_file}"\ntimeout = 10\n'
    )


class KillRig:
    """What one kill case needs: servers, a store dir shared with the CLI, a proxy."""

    def __init__(
        self,
        case: KillCase,
        dovecot: DovecotServer,
        smtp: SMTPServer,
        work_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.case = case
        self.dovecot = dovecot
        self.smtp = smtp
        self.work_dir = work_dir
        self.monkeypatch = monkeypatch
        self.serial = 0

    def user(self, label: str) -> User:
        self.serial += 1
        name = f"{self.case.name}-{label}{self.serial}-{self.case.seed:08x}"
        user = self.dovecot.add_user(name, f"pw-{self.case.seed:x}-{self.serial}")
        for account in (IMAP_ACCOUNT, POP3_ACCOUNT, SMTP_ACCOUNT):
            self.monkeypatch.setenv(f"TUIMAIL_PASSWORD_{account.upper()}", user.password)
        return user

    def store_root(self, label: str) -> Path:
        root = self.work_dir / label
        self.monkeypatch.setenv("TUIMAIL_DATA_DIR", str(root))
        return root


# ----------------------------------------------------------------------------- scenarios
# Each returns (problems, killed, outcome); `kill_after` None runs undisturbed (calibration).


def sync_imap(
    rig: KillRig, rng: random.Random, label: str, kill_after: float | None
) -> tuple[list[str], Run]:
    user = rig.user("i")
    world = ImapWorld(rig.dovecot, user, f"{rig.case.name}.{label}.{rig.case.seed:x}", rng, "all")
    root = rig.store_root(label)
    world.deliver("INBOX", 40)
    world.deliver("Archive", 3)
    store = Store.open(root)
    try:
        setup, _ = world.sync(store)
        assert setup.outcome == "ok", setup
        world.deliver("INBOX", 10)
        touched = world.local_changes(store)
        world.server_changes(touched)
    finally:
        store.close()
    with FaultProxy(rig.dovecot.imaps_port, delay=SYNC_DELAY, chunk=SYNC_CHUNK) as proxy:
        write_config(
            incoming_section(IMAP_ACCOUNT, user, rig.dovecot, proxy.port, 'bodies = "all"')
        )
        run = run_cli(["sync", "--quiet"], kill_after=kill_after)
        run.connected_at(proxy)
    problems = [] if run.code in (None, 0) else [f"sync exited {run.code}: {run.err[-500:]}"]
    store = Store.open(root)
    try:
        problems.extend(f"right after the kill: {p}" for p in store.integrity_check())
        result, _ = world.sync(store)
        if result.outcome != "ok":
            problems.append(f"the clean rerun failed: {result.outcome} {result.problems}")
        problems.extend(world.check(store))
        _again, summary = world.sync(store)
        problems.extend(quiet_resync_problems(summary))
    finally:
        store.close()
    return problems, run


def sync_pop3(
    rig: KillRig, rng: random.Random, label: str, kill_after: float | None
) -> tuple[list[str], Run]:
    user = rig.user("p")
    leave = rig.case.leave_on_server
    world = Pop3World(rig.dovecot, user, f"{rig.case.name}.{label}.{rig.case.seed:x}", rng, leave)
    root = rig.store_root(label)
    world.deliver(40)
    with FaultProxy(rig.dovecot.pop3s_port, delay=POP3_DELAY, chunk=SYNC_CHUNK) as proxy:
        extra = f'protocol = "pop3"\nleave_on_server = {"true" if leave else "false"}'
        write_config(incoming_section(POP3_ACCOUNT, user, rig.dovecot, proxy.port, extra))
        run = run_cli(["sync", "--quiet"], kill_after=kill_after)
        run.connected_at(proxy)
    problems = [] if run.code in (None, 0) else [f"sync exited {run.code}: {run.err[-500:]}"]
    store = Store.open(root)
    try:
        problems.extend(f"right after the kill: {p}" for p in store.integrity_check())
        result = world.sync(store)
        if result.outcome != "ok":
            problems.append(f"the clean rerun failed: {result.outcome} {result.problems}")
        problems.extend(world.check(store))
        again = world.sync(store)
        if again.summary is None or again.summary.new:
            problems.append("a second clean sync downloaded messages again")
    finally:
        store.close()
    return problems, run


def _states_of(items: list[OutboxItem], queued: int) -> list[str]:
    """The outbox right after a kill, e.g. ["queued", "sending", "sent"]."""
    states: set[str] = {i.state for i in items}
    if len(items) < queued:
        states.add("sent")
    return sorted(states)


def _states(store: Store, queued: int) -> list[str]:
    return _states_of(store.outbox_items(), queued)


def _flush_again(world: OutboxWorld, root: Path, unqueued: tuple[str, ...] = ()) -> list[str]:
    """The clean rerun through the CLI (what cron does), then a second one that must not
    send anything; then the invariants."""
    write_config(outgoing_section(SMTP_ACCOUNT, world.user, world.smtp, world.smtp.port))
    problems = []
    rerun = run_cli(["outbox", "flush", "--now", "--quiet"])
    if rerun.code not in (0,):
        problems.append(f"the clean flush exited {rerun.code}: {rerun.err[-500:]}")
    # What the user was told: the ids on the lines that say "uncertain".
    told = {
        int(n)
        for line in rerun.err.splitlines()
        if "uncertain" in line
        for n in re.findall(r"(?<![\d.:])\d+(?![\d.:])", line)
    }
    store = Store.open(root)
    try:
        for item in store.outbox_items(SMTP_ACCOUNT):
            if item.state == "uncertain" and item.id in told:
                world.reported_uncertain.add(item.id)
    finally:
        store.close()
    delivered = world.deliveries()
    store = Store.open(root)
    try:
        # In-process this time (one interpreter start-up less per case).
        second, report = world.flush(store, world.smtp.port)
        problems.extend(second.problems)
        if world.deliveries() != delivered:
            problems.append("a second clean flush delivered again")
        problems.extend(
            f"second clean flush tried #{o.item_id}: {o.status}"
            for o in report.outcomes
            if o.status != "skipped"
        )
        # A `tuimail send` killed before or after filing its Sent copy may or may not
        # have one; the outbox flush files it right after the delivery.
        problems.extend(world.check(store, sent_copies=False, unqueued=unqueued))
    finally:
        store.close()
    return problems


def outbox_flush(
    rig: KillRig, rng: random.Random, label: str, kill_after: float | None
) -> tuple[list[str], Run]:
    user = rig.user("o")
    world = OutboxWorld(rig.smtp, user, f"{rig.case.name}.{label}.{rig.case.seed:x}", rng)
    root = rig.store_root(label)
    with Store.open(root) as store:
        world.queue(store, rig.case.items if kill_after is not None else CALIBRATION_ITEMS)
    with FaultProxy(rig.smtp.port, delay=SMTP_DELAY, chunk=SMTP_CHUNK) as proxy:
        write_config(outgoing_section(SMTP_ACCOUNT, user, rig.smtp, proxy.port))
        run = run_cli(["outbox", "flush", "--now", "--quiet"], kill_after=kill_after)
        run.connected_at(proxy)
    problems = [] if run.code in (None, 0) else [f"flush exited {run.code}: {run.err[-500:]}"]
    with Store.open(root) as store:
        problems.extend(f"right after the kill: {p}" for p in store.integrity_check())
        run.states = _states(store, len(world.queued))
    return problems + _flush_again(world, root), run


def send(
    rig: KillRig, rng: random.Random, label: str, kill_after: float | None
) -> tuple[list[str], Run]:
    user = rig.user("s")
    world = OutboxWorld(rig.smtp, user, f"{rig.case.name}.{label}.{rig.case.seed:x}", rng)
    root = rig.store_root(label)
    rcpts = world.recipients()
    raw = world.message(rcpts)
    with FaultProxy(rig.smtp.port, delay=SMTP_DELAY, chunk=SMTP_CHUNK) as proxy:
        write_config(outgoing_section(SMTP_ACCOUNT, user, rig.smtp, proxy.port))
        run = run_cli(["send", "-i", "--", *rcpts], kill_after=kill_after, stdin=raw)
        run.connected_at(proxy)
    problems = [] if run.code in (None, 0) else [f"send exited {run.code}: {run.err[-500:]}"]
    with Store.open(root) as store:
        problems.extend(f"right after the kill: {p}" for p in store.integrity_check())
        items = store.outbox_items(SMTP_ACCOUNT)
    if items:
        run.states = _states_of(items, 1)
    else:
        run.states = ["sent"] if world.deliveries() else ["not queued"]
    mid = message_id_of(raw)
    for item in items:
        world.queued[item.id] = Queued(item.id, mid, rcpts, raw)
    problems.extend(_flush_again(world, root, unqueued=(mid,)))
    if not items:
        n = world.deliveries().get(mid, 0)
        if run.code is None and n == 0:
            pass  # killed before the message was queued: `send` never said it was taken
        elif n != 1:
            problems.append(f"{mid}: not in the outbox and delivered {n} times")
    return problems, run


SCENARIOS = {
    "sync-imap": sync_imap,
    "sync-pop3": sync_pop3,
    "outbox-flush": outbox_flush,
    "send": send,
}


def calibrate(rig: KillRig, command: str) -> Timing:
    """How an undisturbed run goes (once per session and command)."""
    if command not in _TIMINGS:
        problems, run = SCENARIOS[command](rig, random.Random(1), "calibration", None)
        assert run.code == 0 and not problems, f"calibration run failed: {problems} {run.err}"
        assert run.connect_after is not None, "the calibration run never connected"
        _TIMINGS[command] = Timing(run.connect_after, run.seconds)
    return _TIMINGS[command]


@pytest.mark.parametrize("case", PLANS.kill, ids=lambda c: c.name)
def test_killed_process_loses_and_duplicates_nothing(
    case: KillCase,
    fault_dovecot: DovecotServer,
    fault_smtp: dict[str, SMTPServer],
    work_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = KillRig(case, fault_dovecot, fault_smtp["starttls"], work_dir, monkeypatch)
    timing = calibrate(rig, case.command)
    scale = case.items / CALIBRATION_ITEMS if case.command == "outbox-flush" else 1.0
    kill_after = timing.kill_delay(case.kill_at, scale)
    problems, run = SCENARIOS[case.command](rig, random.Random(case.seed), "case", kill_after)
    killed = run.code is None
    early = case.kill_at < STARTUP_SHARE
    finish(
        f"kill:{case.command}",
        case,
        problems,
        armed=1,
        fired=int(killed),
        outcomes=[
            ("finished-first" if not killed else "killed-in-startup" if early else "killed")
            + (f"({'+'.join(run.states)})" if run.states else "")
        ],
        notes=[f"undisturbed run: {timing}; kill after {kill_after:.2f} s"],
    )
