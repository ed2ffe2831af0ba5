"""IMAP sync speed: tuimail beside mbsync (Debian `isync`), against a private Dovecot.

Generates N realistic messages (default 50,000; ~7 KB median, varied headers, threads,
HTML alternatives, some attachments; deterministic seed) straight into a Dovecot Maildir,
then measures in one run, each tool as its own process (interpreter start-up included):

- initial sync with every body (mbsync: `SyncState *`, all bodies; tuimail: bodies = "all")
- headers-first initial sync (tuimail, bodies = "none")
- no-change resync, at N and at 10,000 (it should not grow with N)
- resync after 500 server-side flag changes
- peak memory (max RSS of the process)

and prints the figures with the targets and the ratio to mbsync.

    python benchmarks/bench_imap_sync.py            # N = 50,000 (takes a few minutes)
    python benchmarks/bench_imap_sync.py --n 5000 --skip-mbsync

Run from the repository root (it imports tests/servers/dovecot.py for the server).
"""

from __future__ import annotations

import argparse
import imaplib
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from servers.certs import CertAuthority  # noqa: E402
from servers.dovecot import DovecotServer, User  # noqa: E402

PASSWORD = "bench-password-1"
FLAG_CHANGES = 500
FLAT_N = 10_000

# ----------------------------------------------------------------------------- messages


def _words(text: str) -> list[str]:
    return text.split()


_WORDS = _words(
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her all she there would their we him been has when who "
    "will more no if out so said what up its about than into them can only other new some "
    "could time these two may then do first any my now such like our over man me even most "
    "made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take "
    "three meeting report budget release deploy server invoice project review schedule team"
)
_FIRST = _words(
    "Anna Ben Chloe David Emma Felix Grace Hugo Iris Jonas Kira Liam Mia Noah Olga Paul"
)
_LAST = _words("Smith Müller García Rossi Dubois Novak Kowalski Jensen Silva Tanaka Okafor Berg")
_DOMAINS = ("example.org", "example.com", "mail.example.net", "lists.example.org", "corp.example")


@dataclass
class Generator:
    rng: random.Random
    people: list[tuple[str, str]]
    sent: list[tuple[str, str, str]]  # (message-id, references, subject) for threading

    @classmethod
    def make(cls, seed: int) -> Generator:
        rng = random.Random(seed)
        people = []
        for i in range(400):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            addr = f"{first.lower()}.{last.lower().replace('ü', 'ue')}{i}@{rng.choice(_DOMAINS)}"
            people.append((f"{first} {last}", addr))
        return cls(rng, people, [])

    def words(self, n: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(n))

    def paragraph_text(self, size: int) -> str:
        out: list[str] = []
        total = 0
        while total < size:
            line = self.words(self.rng.randint(8, 14)).capitalize() + "."
            out.append(line)
            total += len(line) + 2
            if self.rng.random() < 0.15:
                out.append("")
        return "\r\n".join(out)

    def message(self, i: int, when: float) -> bytes:
        rng = self.rng
        sender = rng.choice(self.people)
        to = rng.sample(self.people, rng.randint(1, 3))
        mid = f"<{i}.{rng.getrandbits(40):x}@{sender[1].split('@')[1]}>"
        refs = ""
        if self.sent and rng.random() < 0.35:
            parent_id, parent_refs, parent_subject = rng.choice(self.sent[-2000:])
            refs = (parent_refs + " " + parent_id).strip()
            subject = (
                parent_subject if parent_subject.startswith("Re: ") else "Re: " + parent_subject
            )
        else:
            subject = self.words(rng.randint(3, 8)).capitalize()
            if rng.random() < 0.05:
                subject = "=?UTF-8?B?w4RyZ2VyIMO8YmVyIMOfIOKCrA==?= " + subject
        self.sent.append((mid, refs[-900:], subject))
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
        headers = [
            f"Return-Path: <{sender[1]}>",
            f"Received: from mx{rng.randint(1, 9)}.example.net "
            f"(mx.example.net [192.0.2.{rng.randint(1, 254)}])\r\n\tby mail.tuimail.test with "
            f"ESMTPS id {rng.getrandbits(48):x}\r\n\tfor <bench@tuimail.test>; {date}",
            f"Received: from [10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}] "
            f"by smtp.example.net; {date}",
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=sel;\r\n\t"
            f"h=from:to:subject:date:message-id; bh={rng.getrandbits(256):x}=;\r\n\t"
            f"b={rng.getrandbits(1024):x}{rng.getrandbits(512):x}",
            f"Date: {date}",
            f'From: "{sender[0]}" <{sender[1]}>',
            "To: " + ", ".join(f"{n} <{a}>" for n, a in to),
            f"Subject: {subject}",
            f"Message-ID: {mid}",
            "MIME-Version: 1.0",
        ]
        if rng.random() < 0.3:
            cc = rng.sample(self.people, rng.randint(1, 4))
            headers.append("Cc: " + ", ".join(f"{n} <{a}>" for n, a in cc))
        if refs:
            headers.append(f"In-Reply-To: {refs.split()[-1]}")
            headers.append(f"References: {refs[-900:]}")
        if rng.random() < 0.2:
            headers.append(f"List-Id: <team{rng.randint(1, 20)}.lists.example.org>")
            headers.append("List-Unsubscribe: <mailto:leave@lists.example.org>")
        headers.append(
            f"X-Mailer: {rng.choice(['Thunderbird 115', 'Mutt 2.2', 'Outlook 16.0', 'K-9 Mail'])}"
        )
        # Body sizes: lognormal, median ~7 KB whole message, long tail.
        size = int(min(rng.lognormvariate(8.92, 0.9), 400_000))
        kind = rng.random()
        if kind < 0.6:
            headers.append("Content-Type: text/plain; charset=utf-8")
            headers.append("Content-Transfer-Encoding: 8bit")
            body = self.paragraph_text(max(size - 2000, 200)) + "\r\n"
        elif kind < 0.9:
            boundary = f"b{rng.getrandbits(64):x}"
            text = self.paragraph_text(max(size // 3, 200))
            html = (
                "<html><body>"
                + "".join(f"<p>{p}</p>" for p in text.split("\r\n") if p)
                + "</body></html>"
            )
            headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
            body = (
                f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
                f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
                f"--{boundary}--\r\n"
            )
        else:
            boundary = f"m{rng.getrandbits(64):x}"
            text = self.paragraph_text(rng.randint(200, 1500))
            blob = rng.randbytes(max(size - 2500, 500))
            import base64

            encoded = base64.encodebytes(blob).decode().replace("\n", "\r\n")
            name = rng.choice(["report.pdf", "photo.jpg", "budget.xlsx", "notes.txt"])
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            body = (
                f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
                f'--{boundary}\r\nContent-Type: application/octet-stream; name="{name}"\r\n'
                f'Content-Disposition: attachment; filename="{name}"\r\n'
                f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
                f"--{boundary}--\r\n"
            )
        return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")


def fill(server: DovecotServer, user: User, n: int, seed: int) -> int:
    """Deliver n messages (in chunks, with spread-out INTERNALDATEs); returns total bytes."""
    gen = Generator.make(seed)
    start = time.time() - 2 * 365 * 86400
    step = 2 * 365 * 86400 / max(n, 1)
    total = 0
    chunk: list[bytes] = []
    box = server.maildir_path(user)
    for i in range(n):
        when = start + i * step
        raw = gen.message(i, when)
        total += len(raw)
        chunk.append(raw)
        if len(chunk) == 1000 or i == n - 1:
            server.deliver_many(user, chunk, flags="S" if i % 3 else "")
            chunk = []
    # Mixed \Seen: deliver_many flags whole chunks; good enough for realism.
    del box
    return total


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    wall: float
    maxrss_mb: float
    returncode: int
    output: str


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run a process; wall time and its own peak RSS (wait4 gives that child's rusage)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT)
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_maxrss / 1024, proc.returncode, output.decode(errors="replace"))


def check(run: Run, what: str) -> Run:
    if run.returncode != 0:
        raise SystemExit(f"{what} failed ({run.returncode}):\n{run.output[-3000:]}")
    return run


def median_of(fn: object, times: int = 3) -> Run:
    runs = [fn() for _ in range(times)]  # type: ignore[operator]
    runs.sort(key=lambda r: r.wall)
    return runs[len(runs) // 2]


@dataclass
class Tuimail:
    root: Path
    server: DovecotServer
    user: User
    bodies: str

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "config.toml"
        self.config.write_text(
            f"""[accounts.bench]
address = "{self.user.name}@tuimail.test"
default = true

[accounts.bench.incoming]
protocol = "imap"
host = "127.0.0.1"
port = {self.server.imaps_port}
tls = "implicit"
username = "{self.user.name}"
ca_file = "{self.server.ca_file}"
bodies = "{self.bodies}"
timeout = 120
"""
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TUIMAIL_CONFIG=str(self.config),
            TUIMAIL_DATA_DIR=str(self.root / "data"),
            TUIMAIL_PASSWORD_BENCH=self.user.password,
            # As installed: compiled bytecode cached (outside the source tree).
            PYTHONDONTWRITEBYTECODE="",
            PYTHONPYCACHEPREFIX=str(self.root.parent / "pycache"),
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_STATE_HOME=str(self.root / "state"),
            PYTHONPATH=str(ROOT),
        )
        return env

    def sync(self) -> Run:
        return check(
            run_measured([sys.executable, "-m", "tuimail", "sync", "--quiet"], self.env()),
            "tuimail sync",
        )

    def engine_sync(self) -> Run:
        """The same sync without the command line and the account worker around it."""
        return check(run_measured([sys.executable, "-c", ENGINE_ONLY], self.env()), "engine")


ENGINE_ONLY = """
from tuimail import config, locations
from tuimail.store import Store
from tuimail.sync.engine import ImapSession
cfg, _ = config.load()
store = Store.open(locations.store_dir())
session = ImapSession(cfg.account(), store)
session.connect()
session.sync(None, lambda p: None)
session.close()
store.close()
"""


@dataclass
class Mbsync:
    root: Path
    server: DovecotServer
    user: User

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "mail").mkdir(exist_ok=True)
        self.rc = self.root / "mbsyncrc"
        self.rc.write_text(
            f"""IMAPAccount bench
Host 127.0.0.1
Port {self.server.imaps_port}
User {self.user.name}
Pass {self.user.password}
SSLType IMAPS
CertificateFile {self.server.ca_file}

IMAPStore remote
Account bench

MaildirStore local
Path {self.root}/mail/
Inbox {self.root}/mail/INBOX
SubFolders Verbatim

Channel bench
Far :remote:
Near :local:
Patterns *
Create Near
SyncState *
Sync All
"""
        )

    def sync(self) -> Run:
        return check(run_measured(["mbsync", "-q", "-c", str(self.rc), "bench"]), "mbsync")


def warm_up(server: DovecotServer, user: User) -> None:
    """Let Dovecot build its index and header cache once, so neither tool pays for it."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=ctx)
    imap.login(user.name, user.password)
    imap.select("INBOX")
    imap.uid(
        "FETCH",
        "1:*",
        "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE FROM TO CC SUBJECT "
        "MESSAGE-ID IN-REPLY-TO REFERENCES CONTENT-TYPE REPLY-TO SENDER)])",
    )
    imap.logout()


def change_flags(server: DovecotServer, user: User, n: int, count: int, seed: int) -> None:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=ctx)
    imap.login(user.name, user.password)
    imap.select("INBOX")
    rng = random.Random(seed)
    for uid in rng.sample(range(1, n + 1), count):
        flag = rng.choice(["\\Flagged", "\\Answered", "$Label1"])
        sign = rng.choice("+-")
        imap.uid("STORE", str(uid), f"{sign}FLAGS.SILENT", f"(\\Seen {flag})")
    imap.logout()


# ----------------------------------------------------------------------------- report


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="messages (default 50000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-mbsync", action="store_true", help="measure tuimail only")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    if not args.skip_mbsync and shutil.which("mbsync") is None:
        print("mbsync not found (apt install isync); running with --skip-mbsync")
        args.skip_mbsync = True

    work = Path(tempfile.mkdtemp(prefix="tuimail-bench-"))
    work.chmod(0o755)
    ca = CertAuthority(work / "ca")
    (work / "dovecot").mkdir()
    server = DovecotServer(ca, root=work / "dovecot")
    server.start()
    try:
        user = server.add_user("bench", PASSWORD)
        t0 = time.perf_counter()
        size = fill(server, user, args.n, args.seed)
        print(
            f"generated {args.n} messages, {size / 1e6:.0f} MB "
            f"(median ~7 KB) in {time.perf_counter() - t0:.1f} s"
        )
        warm_up(server, user)
        rows: list[tuple[str, Run | None, Run | None, str]] = []

        mb = None if args.skip_mbsync else Mbsync(work / "mbsync", server, user)
        full = Tuimail(work / "tuimail-all", server, user, "all")
        heads = Tuimail(work / "tuimail-headers", server, user, "none")

        mb_initial = mb.sync() if mb else None
        tm_initial = full.sync()
        rows.append(("initial sync, all bodies", tm_initial, mb_initial, "<= 0.5x mbsync"))
        tm_headers = heads.sync()
        rows.append(("initial sync, headers only", tm_headers, None, "<= 2.5 s"))

        tm_nochange = median_of(full.sync)
        mb_nochange = median_of(mb.sync) if mb else None
        rows.append((f"no-change resync (N={args.n})", tm_nochange, mb_nochange, "<= 0.3 s"))
        rows.append(("  same, engine only (no CLI)", median_of(full.engine_sync), None, ""))

        change_flags(server, user, args.n, FLAG_CHANGES, args.seed)
        tm_flags = full.sync()
        mb_flags = mb.sync() if mb else None
        rows.append((f"after {FLAG_CHANGES} server flag changes", tm_flags, mb_flags, "<= 0.4 s"))

        # Flat in N: the same kind of store (headers only) at N and at 10,000.
        rows.append(
            (f"no-change, headers-only store, N={args.n}", median_of(heads.sync), None, "flat")
        )
        if args.n > FLAT_N:
            small = server.add_user("bench10k", PASSWORD)
            fill(server, small, FLAT_N, args.seed + 1)
            warm_up(server, small)
            small_tm = Tuimail(work / "tuimail-10k", server, small, "none")
            small_tm.sync()
            rows.append(
                (
                    f"no-change, headers-only store, N={FLAT_N}",
                    median_of(small_tm.sync),
                    None,
                    "flat",
                )
            )

        print()
        print(f"{'':40} {'tuimail':>10} {'mbsync':>10} {'ratio':>7}   target")
        for label, tm, other, target in rows:
            ratio = f"{tm.wall / other.wall:.2f}x" if tm and other else "-"
            print(
                f"{label:40} {fmt(tm.wall if tm else None):>10} "
                f"{fmt(other.wall if other else None):>10} {ratio:>7}   {target}"
            )
        peak_tm = max(r.maxrss_mb for r in (tm_initial, tm_headers, tm_nochange, tm_flags))
        peak_mb = mb_initial.maxrss_mb if mb_initial else None
        print(
            f"{'peak memory (max RSS)':40} {fmt(peak_tm, 'MB'):>10} "
            f"{fmt(peak_mb, 'MB'):>10} {'':>7}   <= 200 MB"
        )
        return 0
    finally:
        server.stop(cleanup=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
