"""The fault-injection harness: seeded case plans, cut points, statistics, shared oracles.

Every case is planned up front from one `random.Random(SEED)`, so a run is repeatable and a
failing case can be rerun alone (`-k imap-017`); its plan is printed with any failure.
`TUIMAIL_FAULT_CASES` sets the total number of cases (default `DEFAULT_CASES`, what CI
runs), `TUIMAIL_FAULT_SEED` the seed.

A case: set up a scenario -> run the operation with a fault (a connection cut through
`proxy.FaultProxy`, or a SIGKILL) -> rerun without faults -> check the invariants. The
statistics gathered here are printed at the end of the run (conftest's terminal summary).
"""

from __future__ import annotations

import math
import os
import random
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from proxy import Direction, Fault

SEED = int(os.environ.get("TUIMAIL_FAULT_SEED", "7"))
DEFAULT_CASES = 240
TOTAL_CASES = max(4, int(os.environ.get("TUIMAIL_FAULT_CASES", str(DEFAULT_CASES))))

Family = Literal["imap", "pop3", "smtp", "kill"]
# Share of the cases per family; process kills cost a few interpreter start-ups each.
WEIGHTS: dict[Family, float] = {"imap": 0.30, "pop3": 0.27, "smtp": 0.30, "kill": 0.13}

DOMAIN = "faults.test"

# ----------------------------------------------------------------------------- cut points


@dataclass(frozen=True)
class CutPlan:
    """Where a connection is cut, relative to upper bounds of what the whole operation
    carries (known only once the scenario is built): `bounds["down"]`/`["up"]` bytes, and
    `bounds["reads"]`, the client writes (each one is, near enough, one read of the proxy).

    - "bytes": after a number of bytes in one direction, anywhere in a command, a reply, a
      literal, the TLS handshake. Half of them are placed log-uniformly, so the short
      control exchanges at the start (greeting, TLS, login, the replay of local changes)
      are hit as often as the bulk transfer.
    - "reads": right after the client's N-th write has been passed on whole: the server got
      the command and acts on it, the client never sees the answer. That is where a
      command that is not idempotent (APPEND, COPY, DATA) can be done twice.
    """

    kind: Literal["bytes", "reads"]
    direction: Direction
    position: float  # in [0, 1)
    log_scale: bool
    reset: bool  # RST instead of FIN

    def fault(self, bounds: Mapping[str, int]) -> Fault:
        if self.kind == "reads":
            n = 1 + int(self.position * bounds["reads"])
            return Fault("up", after_reads=n, linger=READ_CUT_LINGER)
        upper = max(bounds[self.direction], 64)
        if self.log_scale:
            at = int(math.exp(math.log(16) + self.position * (math.log(upper) - math.log(16))))
        else:
            at = int(self.position * upper)
        return Fault(self.direction, after_bytes=at, reset=self.reset)


# How long a "reads" cut keeps the server's side open: time for it to run the command.
READ_CUT_LINGER = 0.05


def draw_cut(rng: random.Random, shares: tuple[float, float, float]) -> CutPlan:
    """`shares`: how often a cut is (after a client write, down bytes, up bytes)."""
    kind, direction = rng.choices(
        [("reads", "up"), ("bytes", "down"), ("bytes", "up")], weights=shares
    )[0]
    return CutPlan(kind, direction, rng.random(), rng.random() < 0.5, rng.random() < 0.25)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- case plans


@dataclass(frozen=True)
class ImapCase:
    name: str
    seed: int
    mode: Literal["qresync", "condstore", "plain"]
    tls: Literal["implicit", "starttls"]
    bodies: Literal["all", "none"]
    phase: Literal["initial", "incremental", "local"]
    messages: int  # delivered before the first sync
    cuts: tuple[CutPlan, ...]  # one, sometimes two faulted runs before the clean rerun


@dataclass(frozen=True)
class Pop3Case:
    name: str
    seed: int
    tls: Literal["implicit", "starttls"]
    leave_on_server: bool
    phase: Literal["initial", "incremental"]
    messages: int
    cuts: tuple[CutPlan, ...]


@dataclass(frozen=True)
class SmtpCase:
    name: str
    seed: int
    tls: Literal["implicit", "starttls"]
    items: int  # queued before the flush
    cuts: tuple[CutPlan, ...]


@dataclass(frozen=True)
class KillCase:
    name: str
    seed: int
    command: Literal["sync-imap", "sync-pop3", "outbox-flush", "send"]
    kill_at: float  # fraction of the measured duration of an undisturbed run
    leave_on_server: bool  # sync-pop3 only
    items: int  # outbox-flush only


def _cuts(rng: random.Random, shares: tuple[float, float, float]) -> tuple[CutPlan, ...]:
    first = draw_cut(rng, shares)
    # A fault during the recovery itself, now and then.
    return (first, draw_cut(rng, shares)) if rng.random() < 0.2 else (first,)


def _imap_case(rng: random.Random, i: int) -> ImapCase:
    return ImapCase(
        name=f"imap-{i:03d}",
        seed=rng.getrandbits(32),
        mode=rng.choices(["qresync", "condstore", "plain"], [0.5, 0.25, 0.25])[0],  # type: ignore[arg-type]
        tls=rng.choices(["implicit", "starttls"], [0.75, 0.25])[0],  # type: ignore[arg-type]
        bodies=rng.choice(["all", "none"]),
        phase=rng.choices(["initial", "incremental", "local"], [0.25, 0.25, 0.5])[0],  # type: ignore[arg-type]
        messages=rng.randint(20, 60),
        cuts=_cuts(rng, (0.35, 0.45, 0.2)),
    )


def _pop3_case(rng: random.Random, i: int) -> Pop3Case:
    return Pop3Case(
        name=f"pop3-{i:03d}",
        seed=rng.getrandbits(32),
        tls=rng.choices(["implicit", "starttls"], [0.75, 0.25])[0],  # type: ignore[arg-type]
        leave_on_server=rng.random() < 0.5,
        phase=rng.choice(["initial", "incremental"]),
        messages=rng.randint(20, 60),
        cuts=_cuts(rng, (0.35, 0.45, 0.2)),
    )


def _smtp_case(rng: random.Random, i: int) -> SmtpCase:
    return SmtpCase(
        name=f"smtp-{i:03d}",
        seed=rng.getrandbits(32),
        tls=rng.choices(["implicit", "starttls"], [0.3, 0.7])[0],  # type: ignore[arg-type]
        items=rng.randint(1, 5),
        cuts=_cuts(rng, (0.35, 0.3, 0.35)),
    )


def _kill_case(rng: random.Random, i: int) -> KillCase:
    command = ("sync-imap", "sync-pop3", "outbox-flush", "send")[i % 4]
    return KillCase(
        name=f"kill-{i:03d}-{command}",
        seed=rng.getrandbits(32),
        command=command,  # type: ignore[arg-type]
        kill_at=rng.uniform(0.05, 1.1),
        leave_on_server=rng.random() < 0.5,
        items=rng.randint(1, 4),
    )


def family_counts(total: int = TOTAL_CASES) -> dict[Family, int]:
    counts = {f: max(1, round(total * w)) for f, w in WEIGHTS.items()}
    counts["imap"] += total - sum(counts.values())  # rounding goes to the biggest family
    return counts


@dataclass(frozen=True)
class Plans:
    imap: tuple[ImapCase, ...]
    pop3: tuple[Pop3Case, ...]
    smtp: tuple[SmtpCase, ...]
    kill: tuple[KillCase, ...]


def make_plans(seed: int = SEED, total: int = TOTAL_CASES) -> Plans:
    rng = random.Random(seed)
    counts = family_counts(total)
    return Plans(
        tuple(_imap_case(rng, i) for i in range(counts["imap"])),
        tuple(_pop3_case(rng, i) for i in range(counts["pop3"])),
        tuple(_smtp_case(rng, i) for i in range(counts["smtp"])),
        tuple(_kill_case(rng, i) for i in range(counts["kill"])),
    )


PLANS = make_plans()

# ----------------------------------------------------------------------------- statistics


@dataclass
class FamilyStats:
    cases: int = 0
    faults_armed: int = 0
    faults_fired: int = 0
    failures: int = 0
    known_bugs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # how the faulted runs ended


STATS: dict[str, FamilyStats] = {}
_stats_lock = threading.Lock()


def record(
    family: str,
    *,
    armed: int,
    fired: int,
    failed: bool,
    known_bug: bool = False,
    outcomes: Iterable[str] = (),
) -> None:
    with _stats_lock:
        stats = STATS.setdefault(family, FamilyStats())
        stats.cases += 1
        stats.faults_armed += armed
        stats.faults_fired += fired
        stats.failures += int(failed and not known_bug)
        stats.known_bugs += int(known_bug)
        stats.outcomes.update(outcomes)


def summary_lines() -> list[str]:
    if not STATS:
        return []
    lines = [
        f"seed {SEED}, {sum(s.cases for s in STATS.values())} cases "
        f"(TUIMAIL_FAULT_CASES={TOTAL_CASES})",
        f"{'family':<22}{'cases':>6}{'armed':>7}{'fired':>7}{'failed':>8}{'known':>7}  "
        "how the faulted runs ended",
    ]
    for name in sorted(STATS):
        s = STATS[name]
        ends = ", ".join(f"{k} {v}" for k, v in s.outcomes.most_common())
        lines.append(
            f"{name:<22}{s.cases:>6}{s.faults_armed:>7}{s.faults_fired:>7}{s.failures:>8}"
            f"{s.known_bugs:>7}  {ends}"
        )
    return lines


# ----------------------------------------------------------------------------- oracles

_MID_RE = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)

SYSTEM_FLAGS = {
    b"\\seen": "seen",
    b"\\answered": "answered",
    b"\\flagged": "flagged",
    b"\\deleted": "deleted",
    b"\\draft": "draft",
}


def message_id_of(raw: bytes) -> str:
    match = _MID_RE.search(raw)
    return match.group(1).decode("ascii", "replace") if match else ""


def normalize_mid(value: str) -> str:
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


def imap_flag_names(flags: Iterable[bytes | str]) -> frozenset[str]:
    """IMAP flag atoms as flag names ("seen", keywords verbatim); \\Recent dropped."""
    names = set()
    for atom in flags:
        raw = atom.encode() if isinstance(atom, str) else atom
        name = SYSTEM_FLAGS.get(raw.lower())
        if name:
            names.add(name)
        elif not raw.startswith(b"\\"):
            names.add(raw.decode("ascii", "replace"))
    return frozenset(names)


_WORDS = [
    *("mail", "server", "client", "folder", "message", "flag", "sync", "store", "offline"),
    *("crash", "safe", "network", "cut", "retry", "queue", "deliver", "once", "never"),
    *("lost", "twice", "body", "header", "proxy", "seed", "random", "case"),
]


def make_message(
    tag: str,
    i: int,
    rng: random.Random,
    *,
    size: int | None = None,
    sender: str = "",
    to: str = "",
) -> bytes:
    """A plain message with a unique Message-ID `<tag.i@faults.test>` and a body of about
    `size` bytes (random words, short lines, CRLF)."""
    size = size if size is not None else rng.randint(200, 4000)
    lines: list[str] = []
    line: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(_WORDS)
        line.append(word)
        total += len(word) + 1
        if sum(len(w) + 1 for w in line) > 70:
            lines.append(" ".join(line))
            line = []
    if line:
        lines.append(" ".join(line))
    day = 1 + i % 28
    head = (
        f"Date: Mon, {day:02d} Jan 2024 {i % 24:02d}:{i % 60:02d}:00 +0000\r\n"
        f"From: {sender or f'Sender {i} <sender{i}@example.org>'}\r\n"
        f"To: {to or f'Me <me@{DOMAIN}>'}\r\n"
        f"Subject: {tag} message {i}\r\n"
        f"Message-ID: <{tag}.{i}@{DOMAIN}>\r\n"
    )
    return (head + "\r\n" + "\r\n".join(lines) + "\r\n").encode()


def duplicates(values: Iterable[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


# ----------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class KnownBug:
    """A product bug found by the harness and not fixed yet. A case whose every problem
    line matches the pattern of a known bug is reported as an expected failure (xfail)
    naming it, so the rest of the run stays meaningful; a case with any other problem
    fails as usual. Each has a deterministic strict-xfail reproduction in
    test_known_bugs.py, which fails (XPASS) once the owner fixes it; then the entry goes."""

    name: str
    pattern: str  # a regex searched in each problem line
    where: str


KNOWN_BUGS: tuple[KnownBug, ...] = ()


def known_bugs(problems: list[str]) -> list[KnownBug]:
    """The known bugs that explain every problem of a case (empty when one is unexplained:
    then the case fails as usual)."""
    if not problems:
        return []
    found: list[KnownBug] = []
    for problem in problems:
        bug = next((b for b in KNOWN_BUGS if re.search(b.pattern, problem)), None)
        if bug is None:
            return []
        if bug not in found:
            found.append(bug)
    return found


def finish(
    family: str,
    case: object,
    problems: list[str],
    *,
    armed: int,
    fired: int,
    outcomes: Iterable[str],
    notes: Iterable[str] = (),
) -> None:
    """Record the case in the statistics, then fail it (with its plan, to rerun it) when
    an invariant did not hold."""
    import pytest

    bugs = known_bugs(problems)
    record(
        family,
        armed=armed,
        fired=fired,
        failed=bool(problems),
        known_bug=bool(bugs),
        outcomes=outcomes,
    )
    if not problems:
        return
    text = "\n".join(
        [f"case {case}", *(f"  note: {n}" for n in notes), *(f"  - {p}" for p in problems)]
    )
    if bugs:
        names = "; ".join(f"{b.name} ({b.where})" for b in bugs)
        pytest.xfail(f"known bug: {names}\n{text}")
    pytest.fail(text, pytrace=False)
