"""Helpers for the store tests: synthetic messages."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import ClassVar

import pytest

from tuimail.models import Flags
from tuimail.sync.helper import PrepareHelper


def header_block(
    n: int,
    *,
    subject: str | None = None,
    sender: str | None = None,
    to: str = "Me <me@example.org>",
    date: datetime | None = None,
    message_id: str | None = None,
    extra: str = "",
) -> bytes:
    date = date or datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    lines = [
        f"From: {sender or f'Sender {n % 97} <sender{n % 97}@example.com>'}",
        f"To: {to}",
        f"Subject: {subject if subject is not None else f'Message number {n}'}",
        f"Date: {email.utils.format_datetime(date)}",
        f"Message-ID: {message_id or f'<msg{n}@example.com>'}",
    ]
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def full_message(n: int, body: str = "", **kwargs: object) -> bytes:
    head = header_block(n, **kwargs)  # type: ignore[arg-type]
    text = body or f"Hello, this is the body of message {n}.\r\n"
    return head + text.encode()


def tz(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


SEEN = Flags(seen=True)
UNSEEN = Flags()


class RecordingHelper(PrepareHelper):
    """A sync helper that remembers every instance and whether it started a process."""

    made: ClassVar[list[RecordingHelper]] = []

    def __init__(self, parallel: bool) -> None:
        super().__init__(parallel)
        self.started = self.parallel
        RecordingHelper.made.append(self)


def record_helpers(
    monkeypatch: pytest.MonkeyPatch, engine: ModuleType, parallel_min: str
) -> list[RecordingHelper]:
    """Make `engine` use the helper process from the first message, in batches of 4."""
    RecordingHelper.made = []
    monkeypatch.setattr(engine, "BATCH_MESSAGES", 4)
    monkeypatch.setattr(engine, parallel_min, 1)
    monkeypatch.setattr(engine, "PrepareHelper", RecordingHelper)
    return RecordingHelper.made
