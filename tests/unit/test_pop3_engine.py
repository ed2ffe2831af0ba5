"""POP3 engine, pure parts and store state: planning, delete policy, keys, the key table,
local-only operations, polling."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from store_helpers import full_message

from tuimail.config import AccountConfig, IncomingConfig
from tuimail.errors import ConfigError
from tuimail.models import Flags, FolderInfo, FolderRole, Protocol, TLSMode
from tuimail.store import NewMessage, Store
from tuimail.sync.pop3_engine import DeletePolicy, Plan, Pop3Session, plan, unique_keys

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("leave", "days", "age", "due"),
    [
        (False, 0, timedelta(0), True),  # delete right after download
        (False, 7, timedelta(0), True),  # leave_on_server = false wins
        (True, 0, timedelta(days=10_000), False),  # never
        (True, 7, timedelta(days=6, hours=23), False),
        (True, 7, timedelta(days=7), True),
        (True, 7, timedelta(days=30), True),
        (True, 1, timedelta(0), False),  # just downloaded: not yet
    ],
)
def test_delete_policy(leave: bool, days: int, age: timedelta, due: bool) -> None:
    assert DeletePolicy(leave, days).due(NOW - age, NOW) is due


# ----------------------------------------------------------------------------- keys


def test_unique_keys_numbers_repeats_in_order() -> None:
    keys = unique_keys([1, 2, 3, 4, 5], {1: "a", 2: "b", 3: "a", 5: "a"})
    assert keys == {1: "a", 2: "b", 3: "a#2", 5: "a#3"}


@given(st.dictionaries(st.integers(1, 50), st.sampled_from(["a", "b", "c", "d#2"])))
def test_unique_keys_are_unique_and_keep_first_occurrences(base: dict[int, str]) -> None:
    order = sorted(base)
    keys = unique_keys(order, base)
    assert set(keys) == set(base)
    assert len(set(keys.values())) == len(keys) or "d#2" in base.values()
    firsts = {}
    for n in order:
        firsts.setdefault(base[n], n)
    for value, n in firsts.items():
        assert keys[n] == value


# ----------------------------------------------------------------------------- plan


def test_plan_table() -> None:
    sizes = {1: 100, 2: 200, 3: 5000, 4: 100, 5: 100, 6: 100}
    keys = {1: "old-due", 2: "old-kept", 3: "big", 4: "new", 5: "failed"}
    seen = {"old-due": NOW - timedelta(days=10), "old-kept": NOW - timedelta(days=1)}
    result = plan(sizes, keys, seen, DeletePolicy(True, 7), NOW, 1000, {"failed"})
    assert result == Plan(download=(4,), delete=(1,), too_large=(3,), skipped=(5, 6))


def test_plan_fingerprint_mode_downloads_unkeyed_messages() -> None:
    result = plan({1: 10, 2: 10}, {1: "k"}, {}, DeletePolicy(), NOW, 100, unkeyed="download")
    assert result.download == (1, 2)


sizes_st = st.dictionaries(st.integers(1, 40), st.integers(0, 2000), max_size=40)


@given(
    sizes=sizes_st,
    data=st.data(),
    leave=st.booleans(),
    days=st.integers(0, 10),
)
def test_plan_properties(
    sizes: dict[int, int], data: st.DataObject, leave: bool, days: int
) -> None:
    numbers = sorted(sizes)
    keys = {n: f"k{n}" for n in numbers if data.draw(st.booleans())}
    seen = {
        k: NOW - timedelta(days=data.draw(st.integers(0, 20)))
        for k in keys.values()
        if data.draw(st.booleans())
    }
    failed = {k for k in keys.values() if data.draw(st.integers(0, 5)) == 0}
    policy = DeletePolicy(leave, days)
    result = plan(sizes, keys, seen, policy, NOW, 1000, failed)
    groups = [result.download, result.delete, result.too_large, result.skipped]
    flat = [n for g in groups for n in g]
    assert len(flat) == len(set(flat))  # no message in two groups
    for n in result.download:  # only what is not stored yet, within the limit
        assert keys[n] not in seen and keys[n] not in failed and sizes[n] <= 1000
    for n in result.delete:  # only what is stored and due
        assert keys[n] in seen and policy.due(seen[keys[n]], NOW)
    for n in numbers:  # everything not stored is accounted for
        if keys.get(n) not in seen:
            assert n in flat
    assert list(result.download) == sorted(result.download)


# ----------------------------------------------------------------------------- store state


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


def inbox(store: Store, account: str = "pop") -> int:
    return store.ensure_folder(account, FolderInfo("INBOX", role=FolderRole.INBOX)).id


def msg(n: int) -> NewMessage:
    raw = full_message(n)
    return NewMessage(uid=None, flags=Flags(), size=len(raw), raw=raw, complete=True)


def maildir_files(store: Store) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(store.root / "maildir"):
        if os.path.basename(dirpath) in ("cur", "new"):
            found.extend(files)
    return found


def test_pop3_add_records_keys_with_the_messages(store: Store) -> None:
    folder = inbox(store)
    ids = store.pop3_add(folder, [("u1", msg(1)), ("u2", msg(2))], NOW)
    assert all(isinstance(i, int) for i in ids)
    assert store.pop3_seen("pop") == {"u1": NOW, "u2": NOW}
    summaries = store.summaries([i for i in ids if i is not None])
    assert [s.envelope.subject for s in summaries] == ["Message number 1", "Message number 2"]
    assert [s.uid for s in summaries] == [1, 2]  # real, increasing local uids
    assert all(s.has_body for s in summaries)
    assert store.folder_by_id(folder).total == 2
    assert len(maildir_files(store)) == 2


def test_pop3_add_never_stores_a_key_twice(store: Store) -> None:
    folder = inbox(store)
    store.pop3_add(folder, [("u1", msg(1))], NOW)
    again = store.pop3_add(folder, [("u1", msg(1)), ("u2", msg(2)), ("u2", msg(2))], NOW)
    assert again[0] is None and again[2] is None and isinstance(again[1], int)
    assert store.folder_by_id(folder).total == 2
    assert len(maildir_files(store)) == 2


def test_two_processes_storing_the_same_key_store_it_once(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as a, Store.open(tmp_path / "s") as b:
        folder = inbox(a)
        results: list[list[int | None]] = []
        barrier = threading.Barrier(2)

        def add(store_root: Path) -> None:
            with Store.open(store_root) as s:
                barrier.wait()
                results.append(s.pop3_add(folder, [("same", msg(1)), (f"own{id(s)}", msg(2))], NOW))

        threads = [threading.Thread(target=add, args=(tmp_path / "s",)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(r[0] is None for r in results) == [False, True]
        assert b.folder_by_id(folder).total == 3
        assert len(maildir_files(a)) == 3


def test_keys_are_per_account(store: Store) -> None:
    store.pop3_add(inbox(store, "one"), [("u1", msg(1))], NOW)
    assert store.pop3_add(inbox(store, "two"), [("u1", msg(1))], NOW)[0] is not None
    assert set(store.pop3_seen("one")) == set(store.pop3_seen("two")) == {"u1"}
    assert store.pop3_seen("nobody") == {}


def test_a_local_delete_keeps_the_key(store: Store) -> None:
    folder = inbox(store)
    [mid] = store.pop3_add(folder, [("u1", msg(1))], NOW)
    assert mid is not None
    store.delete([mid])
    assert "u1" in store.pop3_seen("pop")  # so it is not downloaded again


def test_pop3_forget(store: Store) -> None:
    folder = inbox(store)
    store.pop3_add(folder, [("u1", msg(1)), ("u2", msg(2))], NOW)
    assert store.pop3_forget("pop", ["u1", "u1", "zz"]) == 1
    assert set(store.pop3_seen("pop")) == {"u2"}
    assert store.pop3_forget("nobody", ["u2"]) == 0
    # A reused UIDL is a new message now: stored with a new uid, the old row kept.
    [mid] = store.pop3_add(folder, [("u1", msg(3))], NOW)
    assert mid is not None and store.folder_by_id(folder).total == 3
    assert store.summaries([mid])[0].uid == 3


def test_pop3_add_takes_complete_messages_only(store: Store) -> None:
    partial = NewMessage(uid=None, raw=b"Subject: x\r\n\r\n", complete=False)
    with pytest.raises(ValueError, match="complete"):
        store.pop3_add(inbox(store), [("k", partial)], NOW)


def test_a_failed_transaction_leaves_no_files_and_no_keys(store: Store) -> None:
    folder = inbox(store)
    original = store._store_new

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("disk full")

    store._store_new = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        store.pop3_add(folder, [("u1", msg(1))], NOW)
    store._store_new = original  # type: ignore[method-assign]
    assert store.pop3_seen("pop") == {}
    assert maildir_files(store) == []
    assert store.pop3_add(folder, [("u1", msg(1))], NOW)[0] is not None


# ----------------------------------------------------------------------------- session


def account(**incoming: object) -> AccountConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 995,
        "tls": TLSMode.IMPLICIT,
        "username": "u",
        "protocol": Protocol.POP3,
        "poll_interval": 300,
    }
    values.update(incoming)
    return AccountConfig(name="pop", address="u@example.org", incoming=IncomingConfig(**values))  # type: ignore[arg-type]


def test_only_pop3_accounts(store: Store) -> None:
    with pytest.raises(ConfigError):
        Pop3Session(account(protocol=Protocol.IMAP), store)


def test_local_changes_stay_local(store: Store) -> None:
    folder = inbox(store)
    [mid] = store.pop3_add(folder, [("u1", msg(1))], NOW)
    assert mid is not None
    store.set_flags([mid], add=["seen", "flagged"])
    assert store.pending_ops("pop")
    session = Pop3Session(account(), store)
    assert session.push_pending(lambda p: None) == 0
    assert store.pending_ops("pop") == []
    summary = store.summaries([mid])[0]
    assert summary.flags.seen and summary.flags.flagged  # kept locally


def test_sync_of_other_folders_says_pop3_has_only_the_inbox(store: Store) -> None:
    summary = Pop3Session(account(), store).sync(["Archive"], lambda p: None)
    assert summary.folders == () and "only the Inbox" in summary.warnings[0]


def test_wait_returns_at_once_when_stopped(store: Store) -> None:
    session = Pop3Session(account(), store)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    start = time.monotonic()
    assert session.wait_for_changes(60, stop) is False
    assert time.monotonic() - start < 1.0


def test_wait_reports_the_poll_interval(store: Store) -> None:
    session = Pop3Session(account(poll_interval=1), store)
    start = time.monotonic()
    assert session.wait_for_changes(60, threading.Event()) is True
    assert 0.5 < time.monotonic() - start < 3.0
    # A timeout shorter than the interval: nothing due yet.
    session._last_sync = time.monotonic()
    assert session.wait_for_changes(0.2, threading.Event()) is False


def test_serve_prepare_answers_each_batch(tmp_path: Path) -> None:
    import io
    import pickle

    from tuimail.store.indexing import index_headers, index_message
    from tuimail.store.pop3state import Prepared, serve_prepare
    from tuimail.store.rows import index_row

    box = tmp_path / "box"
    batches = [[full_message(1), full_message(2)], [], [b"not a message at all"]]
    requests: list[tuple[object, ...]] = [(str(box), b) for b in batches]
    # With `complete`, header blocks are indexed as such and get no file.
    mixed = [full_message(3), full_message(4).split(b"\r\n\r\n")[0] + b"\r\n\r\n"]
    requests.append((str(box), mixed, [True, False]))
    requests.append((str(tmp_path / "file" / "x"), [b"m"]))
    (tmp_path / "file").write_text("not a directory")
    stdin = io.BytesIO(b"".join(pickle.dumps(r) for r in requests))
    stdout = io.BytesIO()
    serve_prepare(stdin, stdout)
    stdout.seek(0)
    for batch in batches:
        answer = pickle.load(stdout)
        assert isinstance(answer, Prepared)
        assert answer.rows == [index_row(index_message(raw)) for raw in batch]
        assert [(box / "tmp" / str(b)).read_bytes() for b in answer.bases] == batch
    answer = pickle.load(stdout)
    assert answer.rows == [index_row(index_message(mixed[0])), index_row(index_headers(mixed[1]))]
    assert answer.bases[1] is None and (box / "tmp" / str(answer.bases[0])).read_bytes() == mixed[0]
    failed = pickle.load(stdout)
    assert isinstance(failed, str)  # the parent falls back to doing the batch itself


def test_pop3_add_publishes_a_prepared_batch(store: Store) -> None:
    from tuimail.store.pop3state import prepare

    folder = inbox(store)
    store.pop3_add(folder, [("old", msg(1))], NOW)
    box = store.folder_dir(folder)
    items = [("old", msg(1)), ("new", msg(2)), ("new", msg(2))]
    prepared = prepare(box, [m.raw for _, m in items])
    assert len(list((box / "tmp").iterdir())) == 3
    ids = store.pop3_add(folder, items, NOW, prepared=prepared)
    assert ids[0] is None and ids[2] is None and isinstance(ids[1], int)
    assert list((box / "tmp").iterdir()) == []  # published or removed, nothing left
    assert len(list((box / "cur").iterdir())) == 2
    assert store.raw(ids[1]) == msg(2).raw
    assert store.summaries([ids[1]])[0].envelope.subject == "Message number 2"


def test_pop3_add_rejects_a_prepared_batch_that_does_not_match(store: Store) -> None:
    from tuimail.store.pop3state import prepare

    folder = inbox(store)
    box = store.folder_dir(folder)
    prepared = prepare(box, [msg(1).raw])
    with pytest.raises(ValueError, match="one to one"):
        store.pop3_add(folder, [("a", msg(1)), ("b", msg(2))], NOW, prepared=prepared)
    assert list((box / "tmp").iterdir()) == []
    store.discard_prepared(folder, prepare(box, [msg(3).raw]))
    assert list((box / "tmp").iterdir()) == []
