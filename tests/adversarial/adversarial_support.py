"""Oracles and harness pieces shared by the adversarial suite.

- `terminal_problems(text)`: what in `text` could drive a terminal (the oracle every
  "reaches the screen" case checks).
- `ConnectionCounter`: a listening loopback socket that counts connections, to prove that
  rendering a message fetched nothing.
- `run_bounded(code)`: run a snippet in a fresh interpreter with a memory cap and a time
  limit, and get back its timing and peak memory: the harness for resource bombs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# C0 controls except TAB and LF, DEL, and C1 controls (as characters): none may reach the
# terminal. ESC (0x1b) and CSI (0x9b) are in here.
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f\x80-\x9f]")
# Bidi overrides/isolates and zero-width characters must be made visible, not passed on.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def terminal_problems(text: str, *, single_line: bool = False) -> list[str]:
    """Descriptions of every character in `text` that must not reach a terminal."""
    pattern = _LINE_CONTROLS if single_line else _TERMINAL_CONTROLS
    problems = [f"U+{ord(m.group()):04X} at {m.start()}" for m in pattern.finditer(text)]
    problems += [
        f"invisible U+{ord(m.group()):04X} at {m.start()}" for m in _INVISIBLE.finditer(text)
    ]
    return problems[:10]


def assert_terminal_safe(text: str, *, single_line: bool = False, what: str = "output") -> None:
    problems = terminal_problems(text, single_line=single_line)
    assert not problems, f"{what} would reach the terminal with {problems}: {text[:300]!r}"


def assert_bytes_terminal_safe(data: bytes, what: str = "output") -> None:
    """The same oracle on raw program output: ESC, CSI (as UTF-8 C1) and friends."""
    assert b"\x1b" not in data, f"ESC in {what}: {data[:300]!r}"
    assert_terminal_safe(data.decode("utf-8", "replace"), what=what)


class ConnectionCounter:
    """A loopback listener that accepts and counts every connection (and closes it)."""

    def __init__(self) -> None:
        self.count = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-counter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.count += 1
            conn.close()

    def settle(self) -> int:
        """The count once any connection already on its way has been accepted."""
        self._stop.wait(0.2)
        return self.count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@dataclass(frozen=True)
class Bounded:
    ok: bool
    seconds: float  # time spent in the measured call
    peak_mb: float  # peak resident memory of the whole process
    result: object  # what the snippet put in `result`
    error: str  # stderr tail when the snippet failed or was killed


_HARNESS = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
setup = compile({setup!r}, "<setup>", "exec")
code = compile({code!r}, "<case>", "exec")
ns = {{}}
exec(setup, ns)
start = time.perf_counter()
exec(code, ns)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
sys.stdout.write(json.dumps({{"seconds": seconds, "peak_mb": peak, "result": ns.get("result")}}))
"""


def run_bounded(
    code: str, *, setup: str = "", timeout: float = 20.0, memory_mb: int = 1024
) -> Bounded:
    """Run `setup` then `code` (timed) in a fresh interpreter from the repo root, with an
    address-space cap of `memory_mb`. A snippet that raises, exhausts memory or exceeds
    `timeout` gives ok=False with the reason in `error`."""
    script = _HARNESS.format(limit=memory_mb * 1024 * 1024, setup=setup, code=code)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="0")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Bounded(False, timeout, 0.0, None, f"killed after {timeout} s")
    if proc.returncode != 0:
        return Bounded(False, 0.0, 0.0, None, proc.stderr.decode("utf-8", "replace")[-2000:])
    data = json.loads(proc.stdout)
    return Bounded(True, data["seconds"], data["peak_mb"], data["result"], "")
