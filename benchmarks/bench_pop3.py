"""POP3S download of a whole mailbox, beside fetchmail, in one run against one Dovecot.

    python benchmarks/bench_pop3.py [--messages 10000] [--size 7000] [--runs 1]

A private Dovecot (tests/servers/dovecot.py) gets N realistic messages (~7 KB: a few
Received lines, DKIM-like and list headers, a plain-text body, every fifth one multipart
with an HTML part). Dovecot's index is warmed first, then each run downloads the whole
mailbox over POP3S (implicit TLS, certificate verified against the test CA), leaving the
messages on the server so every tool sees the same mailbox:

- tuimail: `Pop3Session.sync` into a fresh store: pipelined RETR, every message parsed,
  indexed (SQLite + FTS5), written to Maildir and fsync'ed, key records committed durably.
- fetchmail (Debian) appending to a BSMTP file (`bsmtp FILE` in its rc file: no MDA, no
  fork per message, no fsync; the setup FACTS.md measured), `fetchall keep`,
  `sslcertck sslcertfile CA`.
- a bare poplib loop: `POP3_SSL.retr(n)` for every message, nothing stored.
- tuimail's POP3 client alone (`Pop3Client.retrieve`, pipelined, nothing stored): the
  protocol part of the tuimail figure.

Prints seconds, messages/s, MB/s and the ratios to fetchmail. `--runs` > 1 repeats the three
in turn (so that a change in the machine's load hits all alike) and reports medians.
"""

from __future__ import annotations

import argparse
import itertools
import os
import poplib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers.certs import CertAuthority  # noqa: E402
from servers.dovecot import DovecotServer, User  # noqa: E402

from tuimail.backends.pop3 import Pop3Client  # noqa: E402
from tuimail.backends.tls import client_context  # noqa: E402
from tuimail.config import AccountConfig, IncomingConfig  # noqa: E402
from tuimail.models import Protocol, TLSMode  # noqa: E402
from tuimail.secrets import Secret  # noqa: E402
from tuimail.store import Store  # noqa: E402
from tuimail.sync.pop3_engine import Pop3Session  # noqa: E402

_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "meeting report budget quarter release server update schedule review draft invoice "
    "project customer deadline proposal feedback thanks regards tomorrow attached please"
)
WORDS = _WORDS.split()
NAMES = ["Alice Martin", "Bob Chen", "Carla Díaz", "Dmitri Ivanov", "Eve Okafor", "Frank Müller"]


def paragraph(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > 72:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n".join(lines).capitalize()


def make_message(i: int, rng: random.Random, size: int) -> bytes:
    sender = rng.choice(NAMES)
    addr = sender.split()[0].lower() + "@example.org"
    when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=7 * i)
    head = [
        f"Received: from mx{i % 7}.example.org (mx{i % 7}.example.org [192.0.2.{i % 250}])"
        f"\r\n\tby mail.tuimail.test with ESMTPS id {i:08X}; {format_datetime(when)}",
        f"Received: from [198.51.100.{i % 200}] by mx{i % 7}.example.org with ESMTPSA;"
        f"\r\n\t{format_datetime(when - timedelta(seconds=3))}",
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=k1;"
        f"\r\n\tb={''.join(rng.choice('ABCDEFGHabcdefgh0123456789+/') for _ in range(172))}",
        f"From: {sender} <{addr}>",
        "To: Bench User <bench@tuimail.test>",
        f"Subject: {paragraph(rng, rng.randint(3, 9)).splitlines()[0]} #{i}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <{i}.{rng.getrandbits(48):x}@example.org>",
        "List-Id: Team discussion <team.example.org>",
        "MIME-Version: 1.0",
    ]
    budget = size - sum(len(h) + 2 for h in head)
    if i % 5 == 0:
        text = paragraph(rng, max(10, (budget - 260) * 2 // 23))
        html = "<p>" + text.replace("\r\n", "<br>\r\n") + "</p>"
        head.append('Content-Type: multipart/alternative; boundary="b1"')
        body = (
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            f"<html><body>{html}</body></html>\r\n--b1--\r\n"
        )
    else:
        head.append("Content-Type: text/plain; charset=utf-8")
        body = paragraph(rng, max(10, budget * 2 // 11)) + "\r\n"
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def timed(fn: Callable[[], object], prepare: Callable[[], object]) -> float:
    prepare()  # clean-up from the previous run is not timed
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_poplib(server: DovecotServer, user: User, count: int) -> None:
    pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=client_context(server.ca_file))
    pop.user(user.name)
    pop.pass_(user.password)
    for n in range(1, count + 1):
        pop.retr(n)
    pop.quit()


def create_cost_us(directory: Path, count: int = 200) -> float:
    """Microseconds to create one file in `directory` (this disk's cost varies by place)."""
    probe = Path(tempfile.mkdtemp(dir=directory))
    start = time.perf_counter()
    for i in range(count):
        os.close(os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    cost = (time.perf_counter() - start) / count * 1e6
    shutil.rmtree(probe)
    return cost


def fresh(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()


def client_only(server: DovecotServer, user: User, count: int) -> None:
    """tuimail's POP3 client alone: the same pipelined RETR, nothing stored."""
    client = Pop3Client(
        server.host,
        server.pop3s_port,
        tls=TLSMode.IMPLICIT,
        context=client_context(server.ca_file),
    )
    client.connect()
    client.login(user.name, Secret(user.password))
    got = sum(1 for item in client.retrieve(range(1, count + 1), 50 << 20) if item.raw)
    client.quit()
    if got != count:
        raise SystemExit(f"client only: {got} of {count} messages")


def fetchmail(server: DovecotServer, user: User, work: Path) -> None:
    home = work / "fetchmail"
    out = home / "mail.bsmtp"
    rc = home / "fetchmailrc"
    rc.write_text(
        f"poll {server.host} service {server.pop3s_port} protocol pop3 auth password\n"
        f'  user "{user.name}" password "{user.password}"\n'
        f'  ssl sslcertck sslcertfile "{server.ca_file}"\n'
        f'  keep fetchall bsmtp "{out}"\n'
    )
    rc.chmod(0o600)
    env = {**os.environ, "FETCHMAILHOME": str(home), "HOME": str(home)}
    done = subprocess.run(
        ["fetchmail", "-f", str(rc), "--nosyslog", "--nodetach", "--silent"],
        env=env,
        capture_output=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"fetchmail failed ({done.returncode}): {done.stderr.decode()[-500:]}")


def tuimail(server: DovecotServer, user: User, root: Path) -> int:
    account = AccountConfig(
        name="bench",
        address=user.address,
        incoming=IncomingConfig(
            host=server.host,
            port=server.pop3s_port,
            tls=TLSMode.IMPLICIT,
            username=user.name,
            ca_file=server.ca_file,
            protocol=Protocol.POP3,
        ),
    )
    with Store.open(root) as store:
        session = Pop3Session(account, store, password=Secret(user.password))
        session.connect()
        summary = session.sync(None, lambda p: None)
        session.close()
    return summary.new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=7000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--dir",
        default=tempfile.gettempdir(),
        help="where the server's mailbox goes (default: the temp dir)",
    )
    parser.add_argument(
        "--local",
        default=str(Path.home() / ".cache" / "tuimail-bench"),
        help="where tuimail's stores and fetchmail's file go: under the home directory by "
        "default, where a user's store lives (on this machine's disk, creating a file in a "
        "directory near a recent mass delete, such as /tmp or /var/tmp after a benchmark, "
        "can cost 0.3 ms instead of 0.015 ms)",
    )
    args = parser.parse_args()
    if shutil.which("fetchmail") is None:
        sys.exit("fetchmail is not installed (apt-get install fetchmail)")

    work = Path(tempfile.mkdtemp(prefix="bench-pop3-", dir=args.dir))
    Path(args.local).mkdir(parents=True, exist_ok=True)
    local = Path(tempfile.mkdtemp(prefix="pop3-", dir=args.local))
    print(f"creating a file costs {create_cost_us(local):.0f} us in {local}")
    try:
        ca = CertAuthority(work / "ca")
        work.chmod(0o755)  # Dovecot's login processes (dovenull) must reach its base_dir
        (work / "dovecot").mkdir()
        with DovecotServer(ca, root=work / "dovecot") as server:
            user = server.add_user("bench", "bench-password")
            rng = random.Random(4)
            messages = [make_message(i, rng, args.size) for i in range(args.messages)]
            server.deliver_many(user, messages)
            total = sum(len(m) for m in messages)
            print(
                f"{len(messages)} messages, {total / 1e6:.1f} MB "
                f"(median {statistics.median(len(m) for m in messages)} bytes), POP3S on loopback"
            )
            # Warm Dovecot's index so that no tool pays for the first scan of the Maildir.
            warm = poplib.POP3_SSL(
                server.host, server.pop3s_port, context=client_context(ca.ca_file)
            )
            warm.user(user.name)
            warm.pass_(user.password)
            warm.uidl()
            warm.quit()

            new = 0
            stores = iter(local / f"store-{n}" for n in itertools.count())

            def run_tuimail() -> None:
                # A new store each run, old ones removed at the end: this disk (ext4 with
                # `discard`) creates files up to 30x slower for a while after a big delete,
                # and no user deletes a 10k-message store right before downloading.
                nonlocal new
                new = tuimail(server, user, next(stores))

            tools: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
                "bare poplib RETR loop": (
                    lambda: bare_poplib(server, user, len(messages)),
                    lambda: None,
                ),
                "fetchmail (bsmtp file)": (
                    lambda: fetchmail(server, user, local),
                    lambda: fresh(local / "fetchmail"),
                ),
                "tuimail POP3 client only": (
                    lambda: client_only(server, user, len(messages)),
                    lambda: None,
                ),
                "tuimail (store, fsync)": (run_tuimail, lambda: None),
            }
            # Runs interleave the tools, so that a change in the machine's load hits all alike.
            times: dict[str, list[float]] = {name: [] for name in tools}
            for _ in range(args.runs):
                for name, (fn, prepare) in tools.items():
                    times[name].append(timed(fn, prepare))
            figures = {name: statistics.median(t) for name, t in times.items()}
            bsmtp = (local / "fetchmail" / "mail.bsmtp").read_bytes()
            got = bsmtp.count(b"\r\nMAIL FROM:") + bsmtp.startswith(b"MAIL FROM:")
            if new != len(messages) or got != len(messages):
                raise SystemExit(f"incomplete download: tuimail {new}, fetchmail {got}")

            base = figures["fetchmail (bsmtp file)"]
            print(f"{'tool':28} {'seconds':>8} {'msg/s':>8} {'MB/s':>7} {'vs fetchmail':>13}")
            for name, seconds in figures.items():
                print(
                    f"{name:28} {seconds:8.2f} {len(messages) / seconds:8.0f} "
                    f"{total / 1e6 / seconds:7.1f} {seconds / base:12.2f}x"
                )
            print(
                f"tuimail / fetchmail = {figures['tuimail (store, fsync)'] / base:.2f}x "
                "(target <= 1.0x)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(local, ignore_errors=True)


if __name__ == "__main__":
    main()
