"""Store: folders, messages from the server, reading."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_helpers import SEEN, UNSEEN, full_message, header_block, tz

from tuimail.errors import NotFoundError, StoreError, UsageError
from tuimail.models import Address, Flags, FolderInfo, FolderRole, FolderState
from tuimail.store import NewMessage, SortKey, Store
from tuimail.store.schema import SCHEMA_VERSION


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store")
    yield s  # type: ignore[misc]
    s.close()


def inbox(store: Store, account: str = "acct") -> int:
    return store.ensure_folder(account, FolderInfo("INBOX", role=FolderRole.INBOX)).id


def headers(uid: int, flags: Flags = UNSEEN, **kw: object) -> NewMessage:
    return NewMessage(uid=uid, flags=flags, size=1000 + uid, raw=header_block(uid, **kw))  # type: ignore[arg-type]


def complete(uid: int, flags: Flags = UNSEEN, **kw: object) -> NewMessage:
    raw = full_message(uid, **kw)
    return NewMessage(uid=uid, flags=flags, size=len(raw), raw=raw, complete=True)


def cur_files(store: Store, account: str = "acct", folder: str = "INBOX") -> list[str]:
    return sorted(p.name for p in (store.root / "maildir" / account / folder / "cur").iterdir())


# ----------------------------------------------------------------------------- opening


def test_open_sets_up_schema_wal_and_is_reopenable(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root) as s:
        inbox(s)
    conn = sqlite3.connect(root / "index.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with Store.open(root) as s:
        assert [f.name for f in s.folders("acct")] == ["INBOX"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "s"
    Store.open(root).close()
    conn = sqlite3.connect(root / "index.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(root)


# ----------------------------------------------------------------------------- folders


def test_sync_folders_adds_updates_removes(store: Store) -> None:
    changes = store.sync_folders(
        "a", [FolderInfo("INBOX", role=FolderRole.INBOX), FolderInfo("Old"), FolderInfo("Keep")]
    )
    assert sorted(changes.added) == ["INBOX", "Keep", "Old"]
    old = store.folder("a", "Old")
    assert old is not None
    store.add_messages(old.id, [complete(1)])
    changes = store.sync_folders(
        "a",
        [
            FolderInfo("INBOX", role=FolderRole.INBOX),
            FolderInfo("Keep", role=FolderRole.ARCHIVE, subscribed=False),
            FolderInfo("New"),
        ],
    )
    assert changes.added == ["New"]
    assert changes.removed == ["Old"]
    assert changes.updated == ["Keep"]
    assert store.folder("a", "Old") is None
    assert not (store.root / "maildir" / "a" / "Old").exists()
    keep = store.folder("a", "Keep")
    assert keep is not None and keep.role is FolderRole.ARCHIVE and not keep.subscribed
    assert store.integrity_check() == []


def test_folders_order_role_then_name(store: Store) -> None:
    store.sync_folders(
        "a",
        [
            FolderInfo("zeta"),
            FolderInfo("Trash", role=FolderRole.TRASH),
            FolderInfo("alpha"),
            FolderInfo("INBOX", role=FolderRole.INBOX),
            FolderInfo("Sent", role=FolderRole.SENT),
        ],
    )
    assert [f.name for f in store.folders("a")] == ["INBOX", "Sent", "Trash", "alpha", "zeta"]
    trash = store.folder_by_role("a", FolderRole.TRASH)
    assert trash is not None and trash.name == "Trash"
    assert store.folder_by_role("a", FolderRole.JUNK) is None
    assert store.accounts() == ["a"]


def test_ensure_folder_is_idempotent(store: Store) -> None:
    a = store.ensure_folder("x", FolderInfo("INBOX"))
    b = store.ensure_folder("x", FolderInfo("INBOX"))
    assert a.id == b.id
    assert store.folder_by_id(a.id) == a
    with pytest.raises(NotFoundError):
        store.folder_by_id(9999)


def test_rename_folder_moves_its_maildir(store: Store) -> None:
    fid = store.ensure_folder("a", FolderInfo("Work")).id
    [mid] = store.add_messages(fid, [complete(1)])
    store.rename_folder(fid, "Work/2024")
    assert store.folder_by_id(fid).name == "Work/2024"
    assert (store.root / "maildir" / "a" / "Work%2F2024" / "cur").is_dir()
    assert store.raw(mid) == full_message(1)


def test_set_folder_state(store: Store) -> None:
    fid = inbox(store)
    store.set_folder_state(fid, FolderState(7, 100, 12345))
    assert store.folder_by_id(fid).state == FolderState(7, 100, 12345)


# ----------------------------------------------------------------------------- adding


def test_add_headers_then_body(store: Store) -> None:
    fid = inbox(store)
    [mid] = store.add_messages(fid, [headers(5, subject="Hi there")])
    summary = store.message(mid)
    assert summary is not None
    assert summary.uid == 5 and summary.envelope.subject == "Hi there"
    assert not summary.has_body and store.raw(mid) is None
    assert store.messages_without_body(fid) == [(mid, 5)]
    raw = full_message(5, subject="Hi there", body="the full body\r\n")
    store.set_body(mid, raw)
    assert store.raw(mid) == raw
    summary = store.message(mid)
    assert summary is not None and summary.has_body and "full body" in summary.preview
    assert store.messages_without_body(fid) == []
    assert store.search("full body") == [mid]


def test_add_is_idempotent_on_uid(store: Store) -> None:
    fid = inbox(store)
    first = store.add_messages(fid, [headers(1), headers(2)])
    again = store.add_messages(fid, [headers(1, flags=SEEN), complete(2)])
    assert first == again
    folder = store.folder_by_id(fid)
    assert (folder.total, folder.unread) == (2, 1)
    assert store.raw(first[1]) == full_message(2)
    assert len(cur_files(store)) == 1
    # a complete message seen again writes no second file
    store.add_messages(fid, [complete(2, flags=SEEN)])
    assert cur_files(store) == [cur_files(store)[0]]
    assert cur_files(store)[0].endswith(":2,S")
    assert store.integrity_check() == []


def test_duplicate_uid_within_one_batch(store: Store) -> None:
    fid = inbox(store)
    ids = store.add_messages(fid, [headers(1), headers(1, flags=SEEN)])
    assert ids[0] == ids[1]
    assert store.folder_by_id(fid).total == 1
    assert store.uid_flags(fid) == {1: SEEN}
    ids = store.add_messages(fid, [complete(2, flags=SEEN), complete(2)])
    assert ids[0] == ids[1]
    assert store.uid_flags(fid)[2] == UNSEEN
    assert [n.rsplit(",", 1)[1] for n in cur_files(store)] == [""]  # one file, no S
    assert store.integrity_check() == []


def test_unparseable_message_is_stored_with_warning(store: Store) -> None:
    fid = inbox(store)
    junk = b"\xff\xfe\x00garbage without headers" * 3
    [mid] = store.add_messages(fid, [NewMessage(uid=1, raw=junk, complete=True)])
    assert store.raw(mid) == junk
    assert store.message(mid) is not None


def test_uid_flags_max_uid_remove_uids(store: Store) -> None:
    fid = inbox(store)
    ids = store.add_messages(fid, [headers(1), complete(2, flags=SEEN), headers(10)])
    assert store.max_uid(fid) == 10
    assert store.uid_flags(fid) == {1: Flags(), 2: SEEN, 10: Flags()}
    assert store.remove_uids(fid, [2, 10, 99]) == 2
    assert store.uid_flags(fid) == {1: Flags()}
    assert cur_files(store) == []
    assert store.message(ids[1]) is None
    folder = store.folder_by_id(fid)
    assert (folder.total, folder.unread) == (1, 1)
    assert store.search("number") == [ids[0]]


def test_apply_server_flags_renames_files(store: Store) -> None:
    fid = inbox(store)
    ids = store.add_messages(fid, [complete(1), headers(2)])
    changed = store.apply_server_flags(
        fid, {1: Flags(seen=True, flagged=True, keywords=frozenset({"$Work"})), 2: SEEN, 77: SEEN}
    )
    assert changed == 2
    assert cur_files(store)[0].endswith(":2,FS")
    summary = store.message(ids[0])
    assert summary is not None and summary.flags.keywords == frozenset({"$Work"})
    assert store.folder_by_id(fid).unread == 0
    assert store.apply_server_flags(fid, {2: SEEN}) == 0
    assert store.integrity_check() == []


def test_reset_folder_drops_everything(store: Store) -> None:
    fid = inbox(store)
    ids = store.add_messages(fid, [complete(1), headers(2)])
    store.set_flags([ids[1]], add=["flagged"])
    store.set_folder_state(fid, FolderState(1, 3, 9))
    dropped = store.reset_folder(fid, 2)
    assert dropped == 1
    folder = store.folder_by_id(fid)
    assert folder.state == FolderState(2, 0, 0)
    assert (folder.total, folder.unread) == (0, 0)
    assert store.list_ids(fid) == []
    assert store.pending_ops("acct") == []
    assert cur_files(store) == []
    with pytest.raises(UsageError, match="Nothing to search"):
        store.search("")
    assert store.search("number") == []
    assert store.integrity_check() == []


# ----------------------------------------------------------------------------- reading


def test_dates_sort_by_true_instant(store: Store) -> None:
    fid = inbox(store)
    # 10:00+02:00 is 08:00Z; 09:00-05:00 is 14:00Z; 12:00Z.
    ids = store.add_messages(
        fid,
        [
            headers(1, date=datetime(2024, 5, 1, 10, 0, tzinfo=tz(120))),
            headers(2, date=datetime(2024, 5, 1, 9, 0, tzinfo=tz(-300))),
            headers(3, date=datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        ],
    )
    assert store.list_ids(fid) == [ids[1], ids[2], ids[0]]
    assert store.list_ids(fid, descending=False) == [ids[0], ids[2], ids[1]]
    assert store.list_ids(fid, limit=2) == [ids[1], ids[2]]
    assert store.list_ids(fid, descending=False, limit=1) == [ids[0]]
    summary = store.message(ids[0])
    assert summary is not None and summary.envelope.date is not None
    assert summary.envelope.date.utcoffset() == tz(120).utcoffset(None)
    assert summary.envelope.date == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (SortKey.FROM, ["c", "b", "a"]),  # alice, Bob, carol (case-insensitive)
        (SortKey.SUBJECT, ["a", "c", "b"]),  # "Re: apple" sorts as apple
        (SortKey.SIZE, ["c", "b", "a"]),
    ],
)
def test_sort_keys(store: Store, sort: SortKey, expected: list[str]) -> None:
    fid = inbox(store)
    ids = store.add_messages(
        fid,
        [
            NewMessage(
                uid=1, size=10, raw=header_block(1, sender="alice <a@x.org>", subject="zebra")
            ),
            NewMessage(
                uid=2, size=20, raw=header_block(2, sender="Bob <b@x.org>", subject="Re: apple")
            ),
            NewMessage(
                uid=3, size=30, raw=header_block(3, sender="carol <c@x.org>", subject="mango")
            ),
        ],
    )
    names = dict(zip(ids, "abc", strict=True))
    got = [names[i] for i in store.list_ids(fid, sort=sort)]
    assert got == expected
    assert [names[i] for i in store.list_ids(fid, sort=sort, descending=False)] == expected[::-1]


def test_list_ids_filters(store: Store) -> None:
    fid = inbox(store)
    ids = store.add_messages(
        fid, [headers(1), headers(2, flags=SEEN), headers(3, flags=Flags(flagged=True))]
    )
    assert store.list_ids(fid, unread_only=True) == [ids[2], ids[0]]
    assert store.list_ids(fid, flagged_only=True) == [ids[2]]
    assert store.list_ids(fid, unread_only=True, flagged_only=True) == [ids[2]]


def test_summaries_keep_order_and_skip_unknown(store: Store) -> None:
    fid = inbox(store)
    ids = store.add_messages(fid, [headers(i) for i in range(1, 6)])
    order = [ids[3], 9999, ids[0], ids[4]]
    assert [s.id for s in store.summaries(order)] == [ids[3], ids[0], ids[4]]
    summary = store.summaries([ids[0]])[0]
    assert summary.account == "acct" and summary.folder == "INBOX"
    assert summary.envelope.to == (Address("Me", "me@example.org"),)


def test_list_messages_across_accounts(store: Store) -> None:
    a = inbox(store, "a")
    b = inbox(store, "b")
    [m1] = store.add_messages(a, [headers(1)])
    [m2] = store.add_messages(b, [headers(2, flags=SEEN)])
    assert [m.id for m in store.list_messages()] == [m2, m1]
    assert [m.id for m in store.list_messages(account="a")] == [m1]
    assert [m.id for m in store.list_messages(unread_only=True)] == [m1]
    assert [m.id for m in store.list_messages(folder="INBOX", limit=1)] == [m2]


def test_addresses_for_completion_and_first_time_sender(store: Store) -> None:
    fid = inbox(store)
    sent = store.ensure_folder("acct", FolderInfo("Sent", role=FolderRole.SENT)).id
    store.add_messages(fid, [headers(1, sender="Zoë Quux <zoe@example.net>")])
    assert not store.address_seen("zoe@example.net")  # only the one message so far
    store.add_messages(fid, [headers(2, sender="Zoë Quux <ZOE@example.net>")])
    assert store.address_seen("zoe@example.net")
    store.add_messages(sent, [headers(3, sender="Me <me@example.org>", to="Friend <f@ex.com>")])
    assert store.address_seen("f@ex.com")
    assert store.known_addresses("zo") == [Address("Zoë Quux", "zoe@example.net")]
    assert store.known_addresses("Qu") == [Address("Zoë Quux", "zoe@example.net")]
    assert store.known_addresses("%") == []
    assert store.known_addresses("f", limit=5)[0] == Address("Friend", "f@ex.com")


def test_ids_are_never_reused(store: Store) -> None:
    fid = inbox(store)
    [first] = store.add_messages(fid, [headers(1)])
    store.remove_uids(fid, [1])
    [second] = store.add_messages(fid, [headers(2)])
    assert second > first
    assert store.message(first) is None


def test_replies_share_the_thread_id(store: Store) -> None:
    fid = inbox(store)
    root, reply, other = store.add_messages(
        fid,
        [
            headers(1, message_id="<root@x>"),
            headers(2, message_id="<r1@x>", extra="In-Reply-To: <root@x>\r\nReferences: <root@x>"),
            headers(3, message_id="<other@x>"),
        ],
    )
    a, b, c = store.summaries([root, reply, other])
    assert a.thread_id == b.thread_id != c.thread_id
    assert b.envelope.in_reply_to == "<root@x>" and b.envelope.references == ("<root@x>",)


def test_headers_guess_attachments(store: Store) -> None:
    fid = inbox(store)
    [mid] = store.add_messages(
        fid, [headers(1, extra='Content-Type: multipart/mixed; boundary="b"')]
    )
    summary = store.message(mid)
    assert summary is not None and summary.has_attachments


def test_messages_without_body_since(store: Store) -> None:
    fid = inbox(store)
    old, new, _full = store.add_messages(
        fid,
        [
            headers(1, date=datetime(2020, 1, 1, tzinfo=UTC)),
            headers(2, date=datetime(2024, 1, 1, tzinfo=UTC)),
            complete(3),
        ],
    )
    assert store.messages_without_body(fid) == [(new, 2), (old, 1)]
    assert store.messages_without_body(fid, since=datetime(2023, 1, 1, tzinfo=UTC)) == [(new, 2)]


def test_a_version_2_store_gets_the_without_body_index(tmp_path: Path) -> None:
    from tuimail.store import schema

    root = tmp_path / "s"
    root.mkdir()
    conn = sqlite3.connect(root / "index.sqlite3", isolation_level=None)
    for migration in schema.MIGRATIONS[:2]:  # a store written by the previous release
        migration(conn)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with Store.open(root) as s:
        folder = inbox(s)
        s.add_messages(folder, [NewMessage(7, Flags(), 10, None, header_block(7))])
        assert s.messages_without_body(folder) == [(s.list_ids(folder)[0], 7)]
    conn = sqlite3.connect(root / "index.sqlite3")
    # The store's query names the index (INDEXED BY fails if it is missing or unusable).
    assert (
        conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_without_body'")
        .fetchone()[0]
        .endswith("WHERE filename IS NULL AND uid IS NOT NULL AND hidden = 0")
    )
    conn.close()
