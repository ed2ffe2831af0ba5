"""Sending, beside msmtp, against the same local submission server (STARTTLS + AUTH, LMTP
delivery into a small Dovecot mailbox).

    python benchmarks/bench_send.py [--messages 50] [--flush 200] [--size 5000]

1. One process per message: `tuimail send -i -- RCPT < msg` vs `msmtp -C rc RCPT < msg`
   (msmtp from Debian with tls on, tls_starttls on, the test CA as tls_trust_file, auth).
2. A queue of messages: `tuimail outbox flush` (one process, one connection, every item
   claimed durably before DATA, settled after, a Sent copy filed) vs a bare aiosmtplib loop
   on one connection (no durability at all).

Both sides of each pair run in the same way in the same run; the figures and ratios are
printed side by side. tuimail runs through the real interpreter (not a pyenv shim) with
bytecode caching on, as an installed tuimail would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers.certs import CertAuthority  # noqa: E402
from servers.dovecot import DovecotServer, User  # noqa: E402
from servers.smtp import SMTPServer  # noqa: E402

PYTHON = os.path.realpath(sys.executable)


def aiosmtplib_file() -> str:
    import aiosmtplib

    return str(aiosmtplib.__file__)


def tuimail_argv() -> list[str]:
    return [PYTHON, "-m", "tuimail"]


def make_message(i: int, sender: str, rcpt: str, size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Bench Sender <{sender}>"
    msg["To"] = rcpt
    msg["Subject"] = f"benchmark message {i}"
    msg["Message-ID"] = f"<bench.{i}.{time.monotonic_ns()}@tuimail.test>"
    line = "The quick brown fox jumps over the lazy dog, again and again. 0123456789\n"
    msg.set_content(line * max(1, size // len(line)))
    return msg.as_bytes()


def write_config(home: Path, user: User, smtp: SMTPServer, dovecot: DovecotServer) -> Path:
    path = home / "config" / "tuimail" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[accounts.bench]
address = "{user.address}"
name = "Bench Sender"
default = true

[accounts.bench.incoming]
protocol = "imap"
host = "{dovecot.host}"
port = {dovecot.imap_port}
tls = "starttls"
username = "{user.name}"
ca_file = "{smtp.ca_file}"

[accounts.bench.outgoing]
host = "{smtp.host}"
port = {smtp.port}
tls = "starttls"
username = "{user.name}"
ca_file = "{smtp.ca_file}"
""",
        encoding="utf-8",
    )
    return path


def write_msmtprc(home: Path, user: User, smtp: SMTPServer) -> Path:
    rc = home / "msmtprc"
    rc.write_text(
        f"""defaults
tls on
tls_starttls on
tls_trust_file {smtp.ca_file}
logfile -

account bench
host {smtp.host}
port {smtp.port}
from {user.address}
auth on
user {user.name}
password {user.password}

account default : bench
""",
        encoding="utf-8",
    )
    rc.chmod(0o600)
    return rc


def tuimail_env(home: Path, user: User, pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        {
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "TUIMAIL_PASSWORD_BENCH": user.password,
            "PYTHONPYCACHEPREFIX": str(pycache),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def run_once(argv: list[str], raw: bytes, env: dict[str, str] | None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, input=raw, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv[:4])} failed ({done.returncode}): "
            + done.stderr.decode(errors="replace")
        )
    return elapsed


# The floor for any Python sender built on aiosmtplib: interpreter, asyncio/ssl/aiosmtplib
# imports, a verifying TLS context, one STARTTLS + AUTH session. No config, no outbox.
FLOOR = """
import asyncio, ssl, sys
import aiosmtplib
ctx = ssl.create_default_context()
ctx.load_verify_locations(cafile=sys.argv[1])
async def go():
    c = aiosmtplib.SMTP(hostname="127.0.0.1", port=int(sys.argv[2]), start_tls=True,
                        tls_context=ctx, username=sys.argv[3], password=sys.argv[4],
                        local_hostname="localhost")
    await c.connect()
    await c.sendmail(sys.argv[5], [sys.argv[5]], sys.stdin.buffer.read())
    await c.quit()
asyncio.run(go())
"""


async def bare_loop(smtp: SMTPServer, user: User, rcpt: str, messages: list[bytes]) -> float:
    import aiosmtplib

    from tuimail.backends.tls import client_context

    start = time.perf_counter()
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        start_tls=True,
        tls_context=client_context(Path(smtp.ca_file)),
        username=user.name,
        password=user.password,
        local_hostname="localhost",
    )
    await client.connect()
    for raw in messages:
        await client.sendmail(user.address, [rcpt], raw)
    await client.quit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50, help="messages per one-shot run")
    parser.add_argument("--flush", type=int, default=200, help="messages in the queue to flush")
    parser.add_argument("--size", type=int, default=5000, help="approximate body size in bytes")
    opts = parser.parse_args()
    if shutil.which("msmtp") is None:
        raise SystemExit("msmtp is not installed (apt-get install msmtp)")

    work = Path(tempfile.mkdtemp(prefix="bench-send-"))
    ca = CertAuthority(work / "ca")
    dovecot = DovecotServer(ca)
    dovecot.start()
    smtp = SMTPServer(ca, users=dovecot.passwords, lmtp_socket=dovecot.lmtp_socket)
    smtp.start()
    try:
        sender = dovecot.add_user("sender", "sender-password")
        rcpt = dovecot.add_user("rcpt", "rcpt-password")
        home = work / "home"
        write_config(home, sender, smtp, dovecot)
        rc = write_msmtprc(home, sender, smtp)
        env = tuimail_env(home, sender, work / "pycache")
        one = [
            make_message(i, sender.address, rcpt.address, opts.size) for i in range(opts.messages)
        ]
        body = b"A short note from a script.\n" * 40
        site_packages = os.path.dirname(os.path.dirname(aiosmtplib_file()))
        no_site_env = dict(env, PYTHONPATH=os.pathsep.join([str(ROOT), site_packages]))
        tools: dict[str, tuple[list[str], dict[str, str] | None, Callable[[int], bytes]]] = {
            "msmtp": (["msmtp", "-C", str(rc), rcpt.address], None, one.__getitem__),
            "aiosmtplib script": (
                [PYTHON, "-c", FLOOR, str(smtp.ca_file), str(smtp.port), sender.name,
                 sender.password, rcpt.address],
                env,
                one.__getitem__,
            ),
            "tuimail send -i": (
                [*tuimail_argv(), "send", "-i", "--", rcpt.address], env, one.__getitem__
            ),
            # Without site's .pth files: this sandbox has one that imports certifi in every
            # Python process (~50 ms); an ordinary machine has none.
            "tuimail send -i -S": (
                [PYTHON, "-S", *tuimail_argv()[1:], "send", "-i", "--", rcpt.address],
                no_site_env,
                one.__getitem__,
            ),
            "tuimail send -s": (
                [*tuimail_argv(), "send", "-s", "note", "--", rcpt.address],
                env,
                lambda _i: body,
            ),
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in tools}
        for argv, tool_env, message in tools.values():  # warm-up: caches, first open
            for i in range(2):
                run_once(argv, message(i), tool_env)
        # Interleaved, so that a change in the machine's load hits every tool alike.
        for i in range(opts.messages):
            for name, (argv, tool_env, message) in tools.items():
                times[name].append(run_once(argv, message(i), tool_env))
        assert len(smtp.received()) == (opts.messages + 2) * len(tools), "every message accepted"

        # The queue, filled in-process so that only the flush is timed.
        many = [make_message(i, sender.address, rcpt.address, opts.size) for i in range(opts.flush)]
        os.environ["XDG_DATA_HOME"] = env["XDG_DATA_HOME"]
        from tuimail import locations
        from tuimail.store import Store

        with Store.open(locations.store_dir()) as store:
            for raw in many:
                store.outbox_add("bench", raw, sender.address, [rcpt.address])
        smtp.reset()
        flush_time = run_once([*tuimail_argv(), "outbox", "flush"], b"", env)
        assert len(smtp.received()) == len(many)
        smtp.reset()
        bare = asyncio.run(bare_loop(smtp, sender, rcpt.address, many))
        assert len(smtp.received()) == len(many)
    finally:
        smtp.stop()
        dovecot.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"one process per message: {opts.messages} messages of ~{opts.size} B each, "
          "STARTTLS + AUTH, LMTP delivery; medians, runs interleaved")  # fmt: skip
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["msmtp"]
    for name, median in medians.items():
        print(f"  {name:18} {median * 1000:7.1f} ms/message   {median / base:5.2f}x msmtp")
    floor = medians["aiosmtplib script"]
    print(f"  tuimail send -i over the aiosmtplib floor: {medians['tuimail send -i'] / floor:.2f}x "
          "(config, outbox fsync'ed, claim before DATA, settle, Sent copy)")  # fmt: skip
    print(f"queue of {opts.flush} messages, one connection")
    print(f"  aiosmtplib loop  {bare:6.2f} s  (in-process, nothing durable)")
    print(f"  outbox flush     {flush_time:6.2f} s  (whole process; durable claim before each "
          "DATA, settle, Sent copy)")  # fmt: skip
    print(f"  ratio            {flush_time / bare:6.2f}x (target <= 2.0x)")


if __name__ == "__main__":
    main()
