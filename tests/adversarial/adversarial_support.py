"""Oracles and harness pieces shared by the adversarial suite.

- `terminal_problems(text)`: what in `text` could drive a terminal (the oracle every
  "reaches the screen" case checks).
- `ConnectionCounter`: a listening loopback socket that counts connections, to prove that
  rendering a message fetched nothing.
- `run_forked(fn)` and `stage(...)`: run a callable in a forked child with a memory cap and
  a per-stage time limit, and get back its result and peak memory: the harness for
  resource bombs.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import re
import resource
import select
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

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
        self._counted = 0
        self._sentinels: set[int] = set()  # local ports of settle()'s own connections
        self._seen_sentinels: set[int] = set()
        self._lock = threading.Lock()
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
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if peer[1] in self._sentinels:
                    self._seen_sentinels.add(peer[1])
                else:
                    self._counted += 1
            conn.close()

    @property
    def count(self) -> int:
        """Connections made by anything but `settle` itself."""
        with self._lock:
            return self._counted

    def settle(self) -> int:
        """The count once every connection already made has been accepted.

        A connection of our own goes into the listen queue behind any earlier one; when the
        accept loop has reached it (known by its local port), everything before it has been
        counted.
        """
        sentinel = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sentinel.settimeout(2)
        try:
            sentinel.bind(("127.0.0.1", 0))
            port = int(sentinel.getsockname()[1])
            with self._lock:
                self._sentinels.add(port)
            sentinel.connect(("127.0.0.1", self.port))
        finally:
            sentinel.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if port in self._seen_sentinels:
                    break
            time.sleep(0.001)
        return self.count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@dataclass(frozen=True)
class Bounded:
    ok: bool
    peak_mb: float  # growth of resident memory over the run (peak minus start)
    result: object  # what the callable returned (JSON-able)
    error: str  # traceback, or where a stage was stuck when the watchdog ended it


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_forked(
    target: Callable[[], object],
    *,
    stage_limit: float,
    timeout: float = 60.0,
    memory_mb: int = 1024,
) -> Bounded:
    """Run `target` in a forked child: fast (modules already imported), isolated (a bomb
    cannot hurt the test process) and measured (peak resident growth via VmHWM).

    The child may call `stage(name, fn)` (see `staged`) so that a stage running longer than
    `stage_limit` is stopped by faulthandler's watchdog thread, which works even inside C
    code (a regex) and reports the stack where it was stuck. The child's address space is
    capped at its size at fork plus `memory_mb`.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            out = os.fdopen(write_fd, "w", buffering=1)
            _STAGE["limit"], _STAGE["file"] = stage_limit, out
            size = _status_kb("VmSize") * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size + memory_mb * 1024 * 1024,) * 2)
            Path("/proc/self/clear_refs").write_text("5")  # restart VmHWM from here
            start_kb = _status_kb("VmRSS")
            result = target()
            peak = (_status_kb("VmHWM") - start_kb) / 1024
            out.write("\0" + json.dumps({"result": result, "peak_mb": peak}))
            out.flush()
            code = 0
        except BaseException:
            with contextlib.suppress(BaseException):
                out.write("\0" + json.dumps({"error": traceback.format_exc()[-3000:]}))
                out.flush()
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    with os.fdopen(read_fd, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                log = b"".join(chunks).decode("utf-8", "replace")
                return Bounded(False, 0.0, None, f"killed after {timeout} s\n{log[-3000:]}")
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            chunks.append(data)
    os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    log, _, payload = text.partition("\0")
    if not payload:
        return Bounded(False, 0.0, None, log[-3000:])
    data = json.loads(payload)
    if "error" in data:
        return Bounded(False, 0.0, None, (log + data["error"])[-3000:])
    return Bounded(True, float(data["peak_mb"]), data["result"], "")


_STAGE: dict[str, Any] = {"limit": 5.0, "file": None}


def stage(name: str, fn: Callable[[], T], timings: dict[str, float]) -> T:
    """Run one timed stage inside `run_forked`; record its seconds in `timings`."""
    out = _STAGE["file"]
    if out is not None:
        out.write(f"stage {name} started (limit {_STAGE['limit']} s)\n")
        out.flush()
        faulthandler.dump_traceback_later(_STAGE["limit"], exit=True, file=out)
    start = time.perf_counter()
    try:
        return fn()
    finally:
        if out is not None:
            faulthandler.cancel_dump_traceback_later()
        timings[name] = time.perf_counter() - start
