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
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers.certs import CertAuthority  # noqa: E402
from servers.dovecot import DovecotServer, User  # noqa: E402
from servers.smtp import SMTPServer  # noqa: E402

PYTHON = os.path.realpath(sys.executable)


def tuimail_argv() -> list[str]:
    """`python -m tuimail`, or (while tuimail.mail.threads has not landed) a runner that
    installs the tests' stand-in for it first."""
    try:
        import tuimail.mail.threads  # noqa: F401
    except ImportError:
        runner = "import sys, store_helpers; from tuimail.cli import main; sys.exit(main())"
        return [PYTHON, "-c", runner]
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
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        }
    )
    return env


def run_each(argv: list[str], messages: list[bytes], env: dict[str, str] | None) -> list[float]:
    times = []
    for raw in messages:
        start = time.perf_counter()
        done = subprocess.run(argv, input=raw, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(
                f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
            )
    return times


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
        one = [make_message(i, sender.address, rcpt.address, opts.size) for i in range(opts.messages)]
        tuimail_send = [*tuimail_argv(), "send", "-i", "--", rcpt.address]
        msmtp = ["msmtp", "-C", str(rc), rcpt.address]

        # Warm up both (bytecode cache, the store's first open, page cache).
        run_each(tuimail_send, one[:2], env)
        run_each(msmtp, one[:2], None)
        smtp.reset()
        m_times = run_each(msmtp, one, None)
        t_times = run_each(tuimail_send, one, env)
        assert len(smtp.received()) == 2 * len(one), "every message accepted"
        bare_start = run_each([PYTHON, "-c", "pass"], one[:10], env)

        # The queue: filled by `tuimail send --queue`-equivalent in-process adds, so that
        # only the flush is timed.
        many = [make_message(i, sender.address, rcpt.address, opts.size) for i in range(opts.flush)]
        os.environ.update({k: env[k] for k in ("XDG_DATA_HOME",)})
        import store_helpers  # noqa: F401  (stand-in for tuimail.mail.threads until it lands)

        from tuimail import locations
        from tuimail.store import Store

        with Store.open(locations.store_dir()) as store:
            for raw in many:
                store.outbox_add("bench", raw, sender.address, [rcpt.address])
        smtp.reset()
        start = time.perf_counter()
        done = subprocess.run(
            [*tuimail_argv(), "outbox", "flush"], env=env, capture_output=True, check=False
        )
        flush_time = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"flush failed: {done.stderr.decode(errors='replace')}")
        assert len(smtp.received()) == len(many)
        smtp.reset()
        bare = asyncio.run(bare_loop(smtp, sender, rcpt.address, many))
        assert len(smtp.received()) == len(many)
    finally:
        smtp.stop()
        dovecot.stop()
        shutil.rmtree(work, ignore_errors=True)

    m_med, t_med = statistics.median(m_times), statistics.median(t_times)
    print(f"one process per message ({opts.messages} messages of ~{opts.size} B, STARTTLS + AUTH, LMTP)")
    print(f"  msmtp          {m_med * 1000:7.1f} ms/message (median; mean {statistics.mean(m_times) * 1000:.1f})")
    print(f"  tuimail send   {t_med * 1000:7.1f} ms/message (median; mean {statistics.mean(t_times) * 1000:.1f})")
    print(f"  ratio          {t_med / m_med:7.2f}x msmtp (target <= 1.0x)")
    print(f"  (python -c pass here: {statistics.median(bare_start) * 1000:.1f} ms)")
    print(f"queue of {opts.flush} messages, one connection")
    print(f"  aiosmtplib loop {bare:7.2f} s (no durability, in-process)")
    print(f"  outbox flush    {flush_time:7.2f} s (whole process, durable claim + settle + Sent copy)")
    print(f"  ratio           {flush_time / bare:7.2f}x (target <= 2.0x)")


if __name__ == "__main__":
    main()
