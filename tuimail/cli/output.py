"""Terminal and JSON output for the command line: errors, JSON lines, progress."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from tuimail.errors import TuimailError
from tuimail.mail.sanitize import sanitize_line, sanitize_text


def report_error(exc: TuimailError, stream: TextIO | None = None) -> int:
    """Print a user-facing error (sanitized: it may quote server text) and return its exit code."""
    stream = stream or sys.stderr
    lines = str(exc).splitlines() or [exc.title]
    print(f"tuimail: {sanitize_line(exc.title)}: {sanitize_line(lines[0])}", file=stream)
    for line in lines[1:]:
        print("  " + sanitize_line(line), file=stream)
    return int(exc.exit_code)


def emit_json(obj: dict[str, Any], stream: TextIO | None = None) -> None:
    """One JSON object per line, all ASCII: JSON escapes only U+0000-U+001F itself, so DEL,
    C1 controls and bidi overrides from mail would otherwise reach a terminal raw."""
    stream = stream or sys.stdout
    stream.write(json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n")


def say(text: str, stream: TextIO | None = None) -> None:
    """Print text that may contain mail data: always sanitized, one line."""
    print(sanitize_line(text), file=stream or sys.stdout)


def say_text(text: str, stream: TextIO | None = None) -> None:
    """Print multi-line text that may contain mail data (a message body)."""
    print(sanitize_text(text), file=stream or sys.stdout)


class Progress:
    """A one-line progress bar on a terminal (counts and rate); silent when not a tty."""

    def __init__(
        self, label: str, stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = sanitize_line(label)
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def update(self, done: int, total: int | None, label: str | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if label is not None:
            self.label = sanitize_line(label)
        if now - self._last_draw < 0.1 and (total is None or done < total):
            return
        self._last_draw = now
        rate = done / max(now - self.start, 1e-6)
        if total:
            width = 24
            filled = int(width * min(done, total) / total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"{self.label[:30]:30} [{bar}] {done}/{total} {rate:,.0f}/s"
        else:
            text = f"{self.label[:30]:30} {done} {rate:,.0f}/s"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
