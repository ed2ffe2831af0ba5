"""Outbox: durable queue, claim before DATA, crash states."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_helpers import full_message

from tuimail.errors import NotFoundError, UsageError
from tuimail.store import Store

RAW = full_message(1, subject="To send", message_id="<out1@example.org>")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


def test_add_items_raw(store: Store) -> None:
    item_id = store.outbox_add("work", RAW, "me@example.org", ["a@x.org", "b@y.org"])
    [item] = store.outbox_items()
    assert item.id == item_id
    assert (item.account, item.state, item.attempts) == ("work", "queued", 0)
    assert item.subject == "To send" and item.message_id == "<out1@example.org>"
    assert item.recipients == ("a@x.org", "b@y.org") and item.sender == "me@example.org"
    assert item.next_attempt is None and item.created.tzinfo is not None
    assert store.outbox_raw(item_id) == RAW
    assert (store.root / "outbox" / f"{item_id}.eml").read_bytes() == RAW
    assert (store.root / "outbox" / f"{item_id}.eml").stat().st_mode & 0o077 == 0
    assert store.outbox_items("other") == []
    assert store.address_seen("a@x.org")  # we wrote to them


def test_needs_recipients(store: Store) -> None:
    with pytest.raises(UsageError):
        store.outbox_add("work", RAW, "me@example.org", [])


def test_attempt_sent_removes_item_and_file(store: Store) -> None:
    item_id = store.outbox_add("work", RAW, "me@example.org", ["a@x.org"])
    store.outbox_mark_attempt(item_id)
    [item] = store.outbox_items()
    assert (item.state, item.attempts) == ("sending", 1)
    store.outbox_mark_sent(item_id)
    assert store.outbox_items() == []
    assert not (store.root / "outbox" / f"{item_id}.eml").exists()
    with pytest.raises(NotFoundError):
        store.outbox_raw(item_id)


def test_failures_retry_and_permanent(store: Store) -> None:
    item_id = store.outbox_add("work", RAW, "me@example.org", ["a@x.org"])
    store.outbox_mark_attempt(item_id)
    later = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    store.outbox_mark_failed(item_id, "451 try later", later)
    [item] = store.outbox_items()
    assert (item.state, item.last_error, item.next_attempt) == ("queued", "451 try later", later)
    store.outbox_mark_attempt(item_id)
    store.outbox_mark_failed(item_id, "550 no such user", None)
    [item] = store.outbox_items()
    assert (item.state, item.attempts) == ("failed", 2)
    with pytest.raises(UsageError, match="failed"):
        store.outbox_mark_attempt(item_id)
    store.outbox_release(item_id)
    store.outbox_mark_attempt(item_id)
    assert store.outbox_items()[0].state == "sending"


def test_a_claimed_item_cannot_be_claimed_twice(tmp_path: Path) -> None:
    """The app and a cron `tuimail send --queue` must never both send one message."""
    with Store.open(tmp_path / "s") as one, Store.open(tmp_path / "s") as two:
        item_id = one.outbox_add("work", RAW, "me@example.org", ["a@x.org"])
        one.outbox_mark_attempt(item_id)
        with pytest.raises(UsageError, match="sending"):
            two.outbox_mark_attempt(item_id)


def _add_then_die(root: str) -> None:
    store = Store.open(Path(root))
    store.outbox_add("work", RAW, "me@example.org", ["a@x.org"])
    os._exit(0)  # no close, no cleanup: as good as a crash for what was committed


def _claim_then_die(root: str, item_id: int) -> None:
    store = Store.open(Path(root))
    store.outbox_mark_attempt(item_id)
    os._exit(0)  # killed while sending DATA


def _run(target: object, *args: object) -> None:
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=target, args=args)  # type: ignore[arg-type]
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0


def test_add_is_durable_when_it_returns(tmp_path: Path) -> None:
    root = tmp_path / "s"
    Store.open(root).close()
    _run(_add_then_die, str(root))
    with Store.open(root) as store:
        [item] = store.outbox_items()
        assert store.outbox_raw(item.id) == RAW
        assert store.integrity_check() == []


def test_crash_while_sending_becomes_uncertain(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root) as store:
        item_id = store.outbox_add("work", RAW, "me@example.org", ["a@x.org"])
        queued = store.outbox_add("work", RAW, "me@example.org", ["b@x.org"])
    _run(_claim_then_die, str(root), item_id)
    with Store.open(root) as store:
        assert store.outbox_recover() == [item_id]
        states = {i.id: i.state for i in store.outbox_items()}
        assert states == {item_id: "uncertain", queued: "queued"}
        with pytest.raises(UsageError, match="uncertain"):
            store.outbox_mark_attempt(item_id)  # never re-sent behind the user's back
        assert store.outbox_recover() == []
        store.outbox_release(item_id)  # the user said: send it again
        store.outbox_mark_attempt(item_id)


def test_stray_file_from_a_crash_does_not_break_the_next_add(store: Store) -> None:
    (store.root / "outbox" / "1.eml").write_bytes(b"left over, never committed")
    item_id = store.outbox_add("work", RAW, "me@example.org", ["a@x.org"])
    assert store.outbox_raw(item_id) == RAW


def test_release_unknown(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.outbox_release(42)
    store.outbox_mark_failed(42, "x", datetime.now(UTC) + timedelta(minutes=1))  # no-op
