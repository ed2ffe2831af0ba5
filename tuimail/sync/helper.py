"""The sync engines' helper process: parses batches for the index and writes their files
to `tmp/` one batch ahead of the store, so a big download uses a second core.

Starting it costs ~0.3 s (a Python process importing the parser), so engines use it only
for downloads of `PARALLEL_MIN` messages or more.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Generic, TypeVar

import tuimail
from tuimail.store.pop3state import Prepared

log = logging.getLogger(__name__)

# From this many new messages on, a helper pays for its start-up.
PARALLEL_MIN = 2000

B = TypeVar("B")  # what an engine keeps of a batch until it is stored


class PrepareHelper:
    """Prepares batches for the store in a helper process: parses each message for the
    index and writes the complete ones to the folder's `tmp/` (`pop3state.prepare`), so
    that the engine's process only downloads, links files into `cur/` and commits.

    The helper is a plain `python -c` child that reads pickled requests on stdin and
    answers on stdout (`pop3state.serve_prepare`). Unlike multiprocessing it never forks a
    threaded program and never re-imports the host's `__main__`. At most one batch is in
    the helper: it is sent, the next batch downloads meanwhile, then the answer is read,
    so neither side can block the other on a full pipe. A helper that cannot start, fails
    a batch or dies makes the store do that batch itself (answer None).
    """

    def __init__(self, parallel: bool) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        if parallel and (os.cpu_count() or 1) > 1:
            self._start()

    def _start(self) -> None:
        root = str(Path(tuimail.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _HELPER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            log.warning("no store helper process (%s): preparing batches inline", exc)
            self._proc = None

    @property
    def parallel(self) -> bool:
        return self._proc is not None

    def submit(
        self, folder_dir: Path, raws: list[bytes], complete: list[bool] | None = None
    ) -> Callable[[], Prepared | None]:
        """Hand the helper a batch (`complete`: which items are whole messages, default
        all); the returned function waits for its answer (None: store it inline)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            return lambda: None
        request = (str(folder_dir), raws) if complete is None else (str(folder_dir), raws, complete)
        try:
            pickle.dump(request, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
        except (OSError, ValueError):
            self.close()
            return lambda: None
        stdout = proc.stdout
        return lambda: self._collect(stdout, len(raws))

    def _collect(self, stdout: IO[bytes], count: int) -> Prepared | None:
        try:
            answer: Prepared | str = pickle.load(stdout)  # noqa: S301 - our own child
        except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            log.warning("store helper process failed (%s): preparing batches inline", exc)
            self.close()
            return None
        if isinstance(answer, str):
            log.warning("store helper could not prepare a batch (%s): doing it inline", answer)
            return None
        return answer if len(answer.bases) == count else None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the helper exits
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


_HELPER = "from tuimail.store.pop3state import serve_prepare; serve_prepare()"


class OneAhead(Generic[B]):
    """Batches through the helper, one ahead of the store: `push` hands the helper a new
    batch and then stores the one it prepared before, so parsing overlaps storing and the
    next download, and the helper never holds two batches (no pipe deadlock). Without a
    helper process each batch is stored as it is pushed (prepared inline by the store).
    """

    def __init__(
        self,
        helper: PrepareHelper,
        folder_dir: Path,
        store: Callable[[B, Prepared | None], None],
        discard: Callable[[Prepared], None],
    ) -> None:
        self._helper = helper
        self._folder_dir = folder_dir
        self._store = store
        self._discard = discard
        self._waiting: deque[tuple[B, Callable[[], Prepared | None]]] = deque()

    def push(self, batch: B, raws: list[bytes], complete: list[bool] | None = None) -> None:
        ready = self._waiting.popleft() if self._waiting else None
        answer = ready[1]() if ready else None
        self._waiting.append((batch, self._helper.submit(self._folder_dir, raws, complete)))
        if ready:
            self._store(ready[0], answer)
        if not self._helper.parallel:
            self.finish()

    def finish(self) -> None:
        """Store every batch still waiting."""
        while self._waiting:
            batch, result = self._waiting.popleft()
            self._store(batch, result())

    def abandon(self) -> None:
        """The download failed: the batches not stored will not be; remove their files from
        tmp/ (a kill leaves them there, which Maildir readers ignore)."""
        while self._waiting:
            _batch, result = self._waiting.popleft()
            with contextlib.suppress(Exception):
                prepared = result()
                if prepared is not None:
                    self._discard(prepared)
