"""Helpers for the store tests: synthetic messages, and (only while `tuimail.mail.threads`
has not landed yet) a tiny stand-in for its `thread_key`."""

from __future__ import annotations

import email.utils
import importlib
import sys
import types
from datetime import UTC, datetime, timedelta, timezone

from tuimail.models import Envelope, Flags


def _install_mail_shim() -> None:
    """Temporary: a stand-in `tuimail.mail.threads.thread_key` until the real one lands."""
    try:
        importlib.import_module("tuimail.mail.threads")
        return
    except ImportError:
        pass

    def thread_key(env: Envelope) -> str:
        if env.references:
            return env.references[0]
        return env.in_reply_to or env.message_id

    threads_mod = types.ModuleType("tuimail.mail.threads")
    threads_mod.thread_key = thread_key  # type: ignore[attr-defined]
    import tuimail.mail

    sys.modules["tuimail.mail.threads"] = threads_mod
    tuimail.mail.threads = threads_mod  # type: ignore[attr-defined]


_install_mail_shim()


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
