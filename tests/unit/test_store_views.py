"""Store reads for the app's views: several folders in one order, and thread rows."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import SEEN, UNSEEN, header_block

from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store import NewMessage, SortKey, Store, ThreadRow


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store")
    yield s  # type: ignore[misc]
    s.close()


BASE = datetime(2024, 3, 1, tzinfo=UTC)
# Few distinct values, so sort keys tie often and the tie-breaks are exercised.
message = st.tuples(
    st.integers(0, 3),  # folder index
    st.integers(0, 5),  # date step
    st.sampled_from(["ann <a@x.org>", "Bob <b@x.org>", "cy <c@x.org>"]),
    st.sampled_from(["alpha", "Re: beta", "gamma"]),
    st.integers(1, 4),  # size step
    st.booleans(),  # seen
)


def _new(uid: int, item: tuple[int, int, str, str, int, bool]) -> NewMessage:
    _, step, sender, subject, size, seen = item
    raw = header_block(uid, sender=sender, subject=subject, date=BASE + timedelta(hours=step))
    return NewMessage(uid=uid, flags=SEEN if seen else UNSEEN, size=size * 100, raw=raw)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(message, max_size=40),
    sort=st.sampled_from(list(SortKey)),
    descending=st.booleans(),
    unread_only=st.booleans(),
)
def test_several_folders_sort_as_if_they_were_one(
    items: list[tuple[int, int, str, str, int, bool]],
    sort: SortKey,
    descending: bool,
    unread_only: bool,
) -> None:
    """Oracle: the same messages, added in the same order, all in one folder of another store."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        Store.open(Path(tmp) / "split") as split,
        Store.open(Path(tmp) / "one") as one,
    ):
        folders = [split.ensure_folder("a", FolderInfo(f"F{i}")).id for i in range(4)]
        single = one.ensure_folder("a", FolderInfo("All")).id
        key_of: dict[int, int] = {}  # id in `split` -> uid in `one`
        for uid, item in enumerate(items, 1):
            [mid] = split.add_messages(folders[item[0]], [_new(uid, item)])
            one.add_messages(single, [_new(uid, item)])
            key_of[mid] = uid
        wanted = folders[:3]  # F3 is left out of the view
        got = split.list_ids(wanted, sort, descending, unread_only)
        expected = one.list_ids(single, sort, descending, unread_only)
        in_view = {one_uid for mid, one_uid in key_of.items() if mid in got}
        uid_of_one = {s.id: s.uid for s in one.summaries(expected)}
        assert [key_of[mid] for mid in got] == [
            uid_of_one[mid] for mid in expected if uid_of_one[mid] in in_view
        ]
        assert len(got) == sum(
            1 for item in items if item[0] < 3 and (not unread_only or not item[5])
        )


def test_list_ids_takes_one_folder_or_several(store: Store) -> None:
    a = store.ensure_folder("x", FolderInfo("INBOX", role=FolderRole.INBOX)).id
    b = store.ensure_folder("y", FolderInfo("INBOX", role=FolderRole.INBOX)).id
    [old] = store.add_messages(a, [NewMessage(1, raw=header_block(1, date=BASE))])
    [new] = store.add_messages(b, [NewMessage(1, raw=header_block(2, date=BASE + timedelta(1)))])
    assert store.list_ids([a, b]) == [new, old]
    assert store.list_ids((a,)) == store.list_ids(a) == [old]
    assert store.list_ids([a, a, b], descending=False) == [old, new]  # duplicates ignored
    assert store.list_ids([]) == []
    store.set_flags([new], add=["flagged"])
    assert store.list_ids([a, b], flagged_only=True) == [new]


@pytest.mark.parametrize("sort", list(SortKey))
def test_the_unified_query_reads_folder_indexes_not_the_whole_store(
    store: Store, sort: SortKey
) -> None:
    a = store.ensure_folder("x", FolderInfo("INBOX")).id
    b = store.ensure_folder("y", FolderInfo("INBOX")).id
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    store.list_ids([a, b], sort)
    store._conn.set_trace_callback(None)
    [sql] = [q for q in seen if q.startswith("SELECT id FROM messages")]
    plan = " ".join(str(row) for row in store._conn.execute("EXPLAIN QUERY PLAN " + sql))
    # A search of each folder's range of an index, never a scan of every message.
    assert "SEARCH messages USING COVERING INDEX" in plan, plan
    assert "messages_all_by_date" not in plan and "SCAN" not in plan, plan


def test_thread_rows_match_the_summaries(store: Store) -> None:
    fid = store.ensure_folder("a", FolderInfo("INBOX", role=FolderRole.INBOX)).id
    other = store.ensure_folder("a", FolderInfo("Lists")).id
    root = header_block(1, message_id="<root@x>", date=BASE)
    reply = header_block(
        2,
        message_id="<reply@x>",
        date=BASE + timedelta(hours=1),
        extra="In-Reply-To: <mid@x>\r\nReferences: <root@x>  <mid@x>",
    )
    undated = b"From: a@x.org\r\nSubject: no date\r\nMessage-ID: <nodate@x>\r\n\r\n"
    arrived = BASE + timedelta(days=2)
    ids = store.add_messages(
        fid,
        [
            NewMessage(1, raw=root),
            NewMessage(2, raw=reply),
            NewMessage(3, raw=undated, internaldate=arrived),
        ],
    )
    [elsewhere] = store.add_messages(other, [NewMessage(1, raw=header_block(9))])
    rows = {row[0]: row for row in store.thread_rows(fid)}
    assert set(rows) == set(ids)
    for summary in store.summaries(ids):
        row = rows[summary.id]
        env = summary.envelope
        expected: ThreadRow = (
            summary.id,
            summary.thread_id,
            env.date.timestamp() if env.date else arrived.timestamp(),
            env.message_id,
            env.in_reply_to,
            " ".join(env.references),
        )
        assert row == expected and type(row) is tuple
    assert rows[ids[1]][5] == "<root@x> <mid@x>"
    assert rows[ids[0]][1] == rows[ids[1]][1] != 0  # one thread
    assert rows[ids[2]][2] == arrived.timestamp()  # no Date: the server's arrival time
    both = store.thread_rows([fid, other])
    assert {row[0] for row in both} == {*ids, elsewhere}
    assert store.thread_rows([]) == []


def test_thread_rows_leave_out_hidden_messages(store: Store) -> None:
    # No Trash: deleting hides the row until the expunge is replayed.
    fid = store.ensure_folder("a", FolderInfo("INBOX", role=FolderRole.INBOX)).id
    ids = store.add_messages(fid, [NewMessage(i, Flags(), raw=header_block(i)) for i in (1, 2)])
    store.delete([ids[0]])
    assert [row[0] for row in store.thread_rows(fid)] == [ids[1]]
    assert store.list_ids(fid) == [ids[1]]


def test_thread_rows_are_plain_tuples_the_collector_lets_go() -> None:
    """Plain tuples of atoms are untracked by the GC's first pass; a NamedTuple never is."""
    import gc

    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s") as store:
        fid = store.ensure_folder("a", FolderInfo("INBOX")).id
        refs = "In-Reply-To: <a@x>\r\nReferences: <r@x> <a@x>"
        store.add_messages(fid, [NewMessage(1, raw=header_block(1, extra=refs))])
        rows = store.thread_rows(fid)
        gc.collect(0)
        assert not gc.is_tracked(rows[0])
