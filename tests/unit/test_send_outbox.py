"""The pure parts of the outbox flow: retry schedule, raw header edits, the Sent copy, and
the outbox lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail.account.sending import (
    BACKOFF_CAP,
    FlushReport,
    OutboxLock,
    Outcome,
    backoff,
    header_fields,
    is_due,
    next_retry,
    prepend_fields,
    sent_copy,
    split_message,
    strip_fields,
)
from tuimail.errors import ExitCode
from tuimail.store.types import OutboxItem, OutboxState

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    ("age", "wait"),
    [(0, 1), (0.5, 1), (1, 1), (2, 2), (7, 7), (59, 59), (60, 60), (600, 60), (-5, 1)],
)
def test_backoff(age: float, wait: int) -> None:
    assert backoff(timedelta(minutes=age)) == timedelta(minutes=wait)


@given(st.integers(min_value=0, max_value=10**7))
def test_backoff_doubles_from_try_to_try_up_to_the_cap(seconds: int) -> None:
    age = timedelta(seconds=seconds)
    wait = backoff(age)
    assert timedelta(minutes=1) <= wait <= BACKOFF_CAP
    # The next try happens at age + wait; the wait after that is never shorter.
    assert backoff(age + wait) >= wait


def test_backoff_sequence() -> None:
    age, waits = timedelta(0), []
    for _ in range(9):
        wait = backoff(age)
        waits.append(int(wait.total_seconds() // 60))
        age += wait
    assert waits == [1, 1, 2, 4, 8, 16, 32, 60, 60]


def _item(state: OutboxState, next_attempt: datetime | None = None) -> OutboxItem:
    return OutboxItem(1, "a", "<m@x>", "s", "a@x", ("b@x",), state, 0, "", next_attempt, NOW)


@pytest.mark.parametrize(
    ("item", "ignore", "due"),
    [
        (_item("queued"), False, True),
        (_item("queued", NOW - timedelta(seconds=1)), False, True),
        (_item("queued", NOW), False, True),
        (_item("queued", NOW + timedelta(minutes=5)), False, False),
        (_item("queued", NOW + timedelta(minutes=5)), True, True),
        (_item("uncertain"), True, False),  # only --force releases these
        (_item("failed"), True, False),
        (_item("sending"), True, False),
    ],
)
def test_is_due(item: OutboxItem, ignore: bool, due: bool) -> None:
    assert is_due(item, NOW, ignore_schedule=ignore) is due


def test_next_retry() -> None:
    later = NOW + timedelta(minutes=5)
    sooner = NOW + timedelta(minutes=2)
    assert next_retry([]) is None
    assert next_retry([_item("uncertain"), _item("failed")]) is None
    assert next_retry([_item("queued", later), _item("queued", sooner), _item("failed")]) == sooner
    due_now = next_retry([_item("queued", later), _item("queued")])
    assert due_now is not None and due_now < NOW


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], 0),
        ([0, 0], 0),
        ([0, 75], 75),
        ([75, 1], 1),
        ([75, 4, 9], 9),
        ([5, 4], 4),
        ([75, 5], 5),
    ],
)
def test_report_exit_code(codes: list[int], expected: int) -> None:
    report = FlushReport(outcomes=[Outcome(1, "a", "", "sent", exit_code=c) for c in codes])
    assert report.exit_code() == expected
    assert isinstance(ExitCode(expected), ExitCode)


# ----------------------------------------------------------------------------- raw headers

MSG = (
    b"From: Me <me@x.org>\r\nTo: a@x.org,\r\n b@x.org\r\nBcc: secret@x.org,\r\n\tother@x.org\r\n"
    b"Subject: hi\r\n\r\nBody\r\nBcc: not a header\r\n"
)


def test_split_message() -> None:
    header, body = split_message(MSG)
    assert header.endswith(b"Subject: hi\r\n")
    assert body == b"Body\r\nBcc: not a header\r\n"
    assert split_message(b"\r\nbody") == (b"", b"body")
    assert split_message(b"\nbody") == (b"", b"body")
    assert split_message(b"A: b\nC: d") == (b"A: b\nC: d", b"")
    assert split_message(b"A: b\n\nbody\n\nmore") == (b"A: b\n", b"body\n\nmore")


def test_header_fields_unfold() -> None:
    assert header_fields(MSG, "to") == ["a@x.org, b@x.org"]
    assert header_fields(MSG, "BCC") == ["secret@x.org,\tother@x.org"]
    assert header_fields(MSG, "cc") == []


def test_strip_fields_removes_continuations_and_keeps_the_body() -> None:
    stripped = strip_fields(MSG, ["bcc"])
    assert b"secret" not in stripped and b"other@x.org" not in stripped
    assert stripped.endswith(b"\r\n\r\nBody\r\nBcc: not a header\r\n")
    assert header_fields(stripped, "to") == ["a@x.org, b@x.org"]
    lf = MSG.replace(b"\r\n", b"\n")
    assert strip_fields(lf, ["bcc"]) == stripped.replace(b"\r\n", b"\n")


def test_strip_fields_is_case_insensitive_and_keeps_lookalikes() -> None:
    raw = b"bcc: a@x\r\nBcc-Like: keep\r\nX-Bcc: keep\r\n\r\nbody"
    assert strip_fields(raw, ["Bcc"]) == b"Bcc-Like: keep\r\nX-Bcc: keep\r\n\r\nbody"


_header_line = st.sampled_from(
    [b"To: a@x", b"Bcc: b@y", b" folded", b"\tfolded", b"Subject: s", b"BCC:c@z", b"X: y"]
)


@given(
    st.lists(_header_line, max_size=12), st.sampled_from([b"\r\n", b"\n"]), st.binary(max_size=40)
)
def test_strip_fields_properties(lines: list[bytes], newline: bytes, body: bytes) -> None:
    if lines and lines[0][:1] in (b" ", b"\t"):
        lines = [b"X: first", *lines]
    raw = newline.join(lines) + newline + newline + body if lines else newline + body
    stripped = strip_fields(raw, ["bcc"])
    assert header_fields(stripped, "bcc") == []
    assert split_message(stripped)[1] == split_message(raw)[1]  # body untouched
    assert header_fields(stripped, "to") == header_fields(raw, "to")


def test_prepend_fields() -> None:
    assert prepend_fields(b"A: b\r\n\r\nbody", ["Date: x", "Message-ID: <y>"]) == (
        b"Date: x\r\nMessage-ID: <y>\r\nA: b\r\n\r\nbody"
    )
    assert prepend_fields(b"A: b\n\nbody", ["X: 1"]) == b"X: 1\nA: b\n\nbody"
    assert prepend_fields(b"\r\nbody", ["X: 1"]) == b"X: 1\r\n\r\n\r\nbody"
    with pytest.raises(ValueError):
        prepend_fields(b"A: b\r\n\r\n", ["X: 1\r\nBcc: injected"])


# ----------------------------------------------------------------------------- Sent copy


def test_sent_copy_shows_the_bcc_recipients() -> None:
    raw = b"From: me@x.org\r\nTo: A <a@x.org>\r\nCc: b@x.org\r\nSubject: s\r\n\r\nbody\r\n"
    copy = sent_copy(raw, ["a@x.org", "B@X.org", "hidden@y.org", "also@y.org"])
    assert header_fields(copy, "bcc") == ["hidden@y.org, also@y.org"]
    assert copy.endswith(raw)
    assert sent_copy(raw, ["a@x.org", "b@x.org"]) == raw


# ----------------------------------------------------------------------------- lock


_HOLDER = """
import sys, time
from pathlib import Path
from tuimail.account.sending import OutboxLock
lock = OutboxLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("ready", flush=True)
time.sleep(60)
"""


def test_lock_excludes_other_processes_and_dies_with_them(tmp_path: Path) -> None:
    path = tmp_path / "outbox.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        mine = OutboxLock(path)
        assert not mine.try_acquire()
        assert not asyncio.run(mine.acquire(0.1))
        holder.kill()  # a crash releases the lock
        holder.wait(10)
        assert asyncio.run(mine.acquire(5))
        mine.release()
    finally:
        holder.kill()
        holder.wait(10)
