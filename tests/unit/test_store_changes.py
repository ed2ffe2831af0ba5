"""Store: local changes (applied at once) and the pending operations that replay them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import SEEN, UNSEEN, full_message, header_block

from tuimail.errors import UnsupportedError
from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store import NewMessage, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    s.sync_folders(
        "acct",
        [
            FolderInfo("INBOX", role=FolderRole.INBOX),
            FolderInfo("Archive", role=FolderRole.ARCHIVE),
            FolderInfo("Trash", role=FolderRole.TRASH),
            FolderInfo("Sent", role=FolderRole.SENT),
        ],
    )
    yield s
    assert s.integrity_check() == []
    s.close()


def fid(store: Store, name: str, account: str = "acct") -> int:
    folder = store.folder(account, name)
    assert folder is not None
    return folder.id


def add(store: Store, folder: str, uids: range | list[int], complete: bool = True) -> list[int]:
    items = [
        NewMessage(
            uid=u,
            flags=UNSEEN,
            size=100,
            raw=full_message(u) if complete else header_block(u),
            complete=complete,
        )
        for u in uids
    ]
    return store.add_messages(fid(store, folder), items)


def files(store: Store, folder: str) -> list[str]:
    cur = store.root / "maildir" / "acct" / folder / "cur"
    return sorted(p.name for p in cur.iterdir()) if cur.exists() else []


def counts(store: Store, folder: str) -> tuple[int, int]:
    row = store.folder_by_id(fid(store, folder))
    return row.total, row.unread


# ----------------------------------------------------------------------------- flags


def test_set_flags_applies_locally_queues_and_renames(store: Store) -> None:
    ids = add(store, "INBOX", [1, 2])
    store.set_flags(ids, add=["seen", "$Work"])
    summary = store.message(ids[0])
    assert summary is not None
    assert summary.flags == Flags(seen=True, keywords=frozenset({"$Work"}))
    assert counts(store, "INBOX") == (2, 0)
    assert all(name.endswith(":2,S") for name in files(store, "INBOX"))
    ops = store.pending_ops("acct")
    assert [(o.kind, o.folder, o.uid, o.add, o.remove) for o in ops] == [
        ("flags", "INBOX", 1, ("$Work", "seen"), ()),
        ("flags", "INBOX", 2, ("$Work", "seen"), ()),
    ]


def test_flag_ops_on_one_message_are_coalesced(store: Store) -> None:
    [mid] = add(store, "INBOX", [1])
    store.set_flags([mid], add=["seen"])
    store.set_flags([mid], add=["flagged"])
    store.set_flags([mid], remove=["seen"])
    [op] = store.pending_ops("acct")
    assert (op.kind, op.add, op.remove) == ("flags", ("flagged",), ("seen",))
    summary = store.message(mid)
    assert summary is not None and summary.flags == Flags(flagged=True)


def test_completing_a_replaced_op_keeps_the_merged_one(store: Store) -> None:
    """A worker replaying op 1 while the UI merges a new change into it must not lose it."""
    [mid] = add(store, "INBOX", [1])
    store.set_flags([mid], add=["seen"])
    [in_flight] = store.pending_ops("acct")
    store.set_flags([mid], remove=["seen"])  # merged into a new op
    store.complete_op(in_flight.id)  # the worker finishes the old one
    [op] = store.pending_ops("acct")
    assert op.remove == ("seen",)


def test_no_op_flag_change_queues_nothing(store: Store) -> None:
    [mid] = add(store, "INBOX", [1])
    store.set_flags([mid], remove=["seen"])
    store.set_flags([], add=["seen"])
    assert store.pending_ops("acct") == []


def test_server_flags_do_not_undo_pending_local_change(store: Store) -> None:
    ids = add(store, "INBOX", [1, 2])
    store.set_flags([ids[0]], add=["flagged"])
    # the server has not seen it yet, and someone marked both read elsewhere
    changed = store.apply_server_flags(fid(store, "INBOX"), {1: SEEN, 2: SEEN})
    assert changed == 2
    first, second = store.summaries(ids)
    assert first.flags == Flags(seen=True, flagged=True)
    assert second.flags == SEEN
    # once replayed, the server wins again
    [op] = store.pending_ops("acct")
    store.complete_op(op.id)
    store.apply_server_flags(fid(store, "INBOX"), {1: SEEN})
    assert store.summaries([ids[0]])[0].flags == SEEN


def test_add_messages_keeps_pending_local_flags(store: Store) -> None:
    [mid] = add(store, "INBOX", [1], complete=False)
    store.set_flags([mid], add=["seen"])
    store.add_messages(fid(store, "INBOX"), [NewMessage(uid=1, raw=full_message(1), complete=True)])
    summary = store.message(mid)
    assert summary is not None and summary.flags == SEEN and summary.has_body
    assert files(store, "INBOX")[0].endswith(":2,S")


def test_fail_op_counts_attempts(store: Store) -> None:
    [mid] = add(store, "INBOX", [1])
    store.set_flags([mid], add=["seen"])
    [op] = store.pending_ops("acct")
    store.fail_op(op.id, "NO [CANNOT] try later")
    store.fail_op(op.id, "timeout")
    [op] = store.pending_ops("acct")
    assert (op.attempts, op.last_error) == (2, "timeout")


# ----------------------------------------------------------------------------- move / copy


def test_move_moves_row_file_and_counts_and_queues(store: Store) -> None:
    ids = add(store, "INBOX", [1, 2, 3])
    archive = fid(store, "Archive")
    store.move(ids[:2], archive)
    assert counts(store, "INBOX") == (1, 1)
    assert counts(store, "Archive") == (2, 2)
    assert len(files(store, "INBOX")) == 1 and len(files(store, "Archive")) == 2
    moved = store.message(ids[0])
    assert moved is not None and moved.folder == "Archive" and moved.uid == 0
    assert store.raw(ids[0]) == full_message(1)
    assert store.list_ids(archive) == [ids[1], ids[0]]
    ops = store.pending_ops("acct")
    assert [(o.kind, o.folder, o.uid, o.dest_folder, o.message_id) for o in ops] == [
        ("move", "INBOX", 1, "Archive", ids[0]),
        ("move", "INBOX", 2, "Archive", ids[1]),
    ]
    # a sync of INBOX before the move is replayed must not fetch 1 and 2 back
    assert set(store.uid_flags(fid(store, "INBOX"))) == {1, 2, 3}
    assert store.max_uid(fid(store, "INBOX")) == 3


def test_flag_op_then_move_replays_in_order_and_uid_is_handed_on(store: Store) -> None:
    [mid] = add(store, "INBOX", [7])
    archive = fid(store, "Archive")
    store.set_flags([mid], add=["seen"])
    store.move([mid], archive)
    store.set_flags([mid], add=["flagged"])  # on the placeholder in Archive
    ops = store.pending_ops("acct")
    assert [(o.kind, o.folder, o.uid) for o in ops] == [
        ("flags", "INBOX", 7),
        ("move", "INBOX", 7),
        ("flags", "Archive", None),
    ]
    store.complete_op(ops[0].id)
    store.complete_op(ops[1].id, new_uid=501)  # COPYUID from the server
    [op] = store.pending_ops("acct")
    assert (op.kind, op.folder, op.uid) == ("flags", "Archive", 501)
    summary = store.message(mid)
    assert summary is not None and summary.uid == 501
    assert store.uid_flags(archive) == {501: Flags(seen=True, flagged=True)}


def test_chained_moves_hand_the_uid_to_the_next_move(store: Store) -> None:
    [mid] = add(store, "INBOX", [7])
    store.move([mid], fid(store, "Archive"))
    store.move([mid], fid(store, "Sent"))
    first, second = store.pending_ops("acct")
    assert (second.folder, second.uid, second.dest_folder) == ("Archive", None, "Sent")
    store.complete_op(first.id, new_uid=40)
    [second] = store.pending_ops("acct")
    assert second.uid == 40
    summary = store.message(mid)
    assert summary is not None and summary.folder == "Sent" and summary.uid == 0
    store.complete_op(second.id, new_uid=9)
    summary = store.message(mid)
    assert summary is not None and (summary.folder, summary.uid) == ("Sent", 9)
    assert len(files(store, "Sent")) == 1


def test_placeholder_is_matched_by_message_id_on_next_sync(store: Store) -> None:
    [mid] = add(store, "INBOX", [7])
    archive = fid(store, "Archive")
    store.move([mid], archive)
    [op] = store.pending_ops("acct")
    store.complete_op(op.id)  # the server had no UIDPLUS: no new UID
    [again] = store.add_messages(archive, [NewMessage(uid=33, raw=header_block(7))])
    assert again == mid
    assert counts(store, "Archive") == (1, 1)
    assert store.uid_flags(archive) == {33: UNSEEN}


def test_sync_before_completion_does_not_duplicate(store: Store) -> None:
    [mid] = add(store, "INBOX", [7])
    archive = fid(store, "Archive")
    store.move([mid], archive)
    [op] = store.pending_ops("acct")
    # the server did the move, a sync of Archive saw UID 33 before complete_op ran
    [synced] = store.add_messages(archive, [NewMessage(uid=33, raw=header_block(7))])
    assert synced != mid
    store.complete_op(op.id, new_uid=33)
    assert store.list_ids(archive) == [synced]
    assert store.message(mid) is None
    assert counts(store, "Archive") == (1, 1)
    assert files(store, "Archive") == []  # the placeholder's file went with it


def test_assign_uid(store: Store) -> None:
    mid = store.append_local(fid(store, "Sent"), full_message(5), SEEN, remote=False)
    store.assign_uid(mid, 8)
    assert store.uid_flags(fid(store, "Sent")) == {8: SEEN}
    store.assign_uid(mid, 9)  # not a placeholder any more: ignored
    assert store.uid_flags(fid(store, "Sent")) == {8: SEEN}


def test_drop_move_puts_the_message_back(store: Store) -> None:
    [mid] = add(store, "INBOX", [7])
    store.move([mid], fid(store, "Archive"))
    [op] = store.pending_ops("acct")
    store.drop_op(op.id, "source message vanished")
    summary = store.message(mid)
    assert summary is not None and (summary.folder, summary.uid) == ("INBOX", 7)
    assert counts(store, "INBOX") == (1, 1) and counts(store, "Archive") == (0, 0)
    assert store.raw(mid) == full_message(7)
    assert files(store, "Archive") == []


def test_copy_makes_a_placeholder_with_its_own_file(store: Store) -> None:
    [mid] = add(store, "INBOX", [4])
    archive = fid(store, "Archive")
    [copy] = store.copy([mid], archive)
    assert copy != mid
    assert counts(store, "INBOX") == (1, 1) and counts(store, "Archive") == (1, 1)
    assert store.raw(copy) == full_message(4)
    assert store.search("body of message 4") == [copy, mid]
    [op] = store.pending_ops("acct")
    assert (op.kind, op.folder, op.uid, op.dest_folder, op.message_id) == (
        "copy",
        "INBOX",
        4,
        "Archive",
        copy,
    )
    store.complete_op(op.id, new_uid=12)
    assert store.uid_flags(archive) == {12: UNSEEN}
    store.remove_uids(fid(store, "INBOX"), [4])
    assert store.raw(copy) == full_message(4)


def test_drop_copy_removes_the_placeholder(store: Store) -> None:
    [mid] = add(store, "INBOX", [4])
    [copy] = store.copy([mid], fid(store, "Archive"))
    [op] = store.pending_ops("acct")
    store.drop_op(op.id, "quota")
    assert store.message(copy) is None
    assert files(store, "Archive") == []


def test_move_between_accounts_is_refused(store: Store) -> None:
    [mid] = add(store, "INBOX", [1])
    other = store.ensure_folder("other", FolderInfo("INBOX")).id
    with pytest.raises(UnsupportedError):
        store.move([mid], other)
    with pytest.raises(UnsupportedError):
        store.copy([mid], other)
    assert store.pending_ops("acct") == []


def test_headers_only_message_moves_without_file(store: Store) -> None:
    [mid] = add(store, "INBOX", [1], complete=False)
    store.move([mid], fid(store, "Archive"))
    summary = store.message(mid)
    assert summary is not None and summary.folder == "Archive" and not summary.has_body


# ----------------------------------------------------------------------------- delete


def test_delete_moves_to_trash(store: Store) -> None:
    ids = add(store, "INBOX", [1, 2])
    store.delete([ids[0]])
    summary = store.message(ids[0])
    assert summary is not None and summary.folder == "Trash"
    assert counts(store, "INBOX") == (1, 1) and counts(store, "Trash") == (1, 1)
    [op] = store.pending_ops("acct")
    assert (op.kind, op.dest_folder) == ("move", "Trash")


def test_delete_in_trash_hides_and_expunges(store: Store) -> None:
    [mid] = add(store, "Trash", [5])
    trash = fid(store, "Trash")
    store.delete([mid])
    assert store.list_ids(trash) == []
    assert counts(store, "Trash") == (0, 0)
    assert store.search("body") == []
    assert files(store, "Trash")[0].endswith(":2,T")
    [op] = store.pending_ops("acct")
    assert (op.kind, op.folder, op.uid, op.add) == ("expunge", "Trash", 5, ("deleted",))
    # the server still has it until the expunge is replayed: keep its UID known
    assert 5 in store.uid_flags(trash)
    store.complete_op(op.id)
    assert store.message(mid) is None
    assert files(store, "Trash") == []


def test_delete_without_trash_expunges(store: Store) -> None:
    inbox = store.ensure_folder("pop", FolderInfo("INBOX", role=FolderRole.INBOX)).id
    [mid] = store.add_messages(inbox, [NewMessage(uid=1, raw=full_message(1), complete=True)])
    store.delete([mid])
    [op] = store.pending_ops("pop")
    assert op.kind == "expunge"
    store.drop_op(op.id, "POP3 keeps it")
    summary = store.message(mid)
    assert summary is not None and not summary.flags.deleted
    assert store.list_ids(inbox) == [mid]


# ----------------------------------------------------------------------------- append


def test_append_local_stores_and_queues(store: Store) -> None:
    sent = fid(store, "Sent")
    raw = full_message(1, to="Friend <friend@example.net>")
    mid = store.append_local(sent, raw, SEEN)
    assert store.raw(mid) == raw
    assert counts(store, "Sent") == (1, 0)
    [op] = store.pending_ops("acct")
    assert (op.kind, op.folder, op.uid, op.message_id) == ("append", "Sent", None, mid)
    assert store.address_seen("friend@example.net")
    store.complete_op(op.id, new_uid=77)
    assert store.uid_flags(sent) == {77: SEEN}


def test_append_local_without_remote(store: Store) -> None:
    mid = store.append_local(fid(store, "Sent"), full_message(2), SEEN, remote=False)
    assert store.pending_ops("acct") == []
    assert store.raw(mid) == full_message(2)


def test_reset_keeps_unsent_appends(store: Store) -> None:
    sent = fid(store, "Sent")
    add(store, "Sent", [1, 2])
    mid = store.append_local(sent, full_message(3), SEEN)
    assert store.reset_folder(sent, 99) == 0
    assert store.list_ids(sent) == [mid]
    [op] = store.pending_ops("acct")
    assert op.kind == "append"


def test_remove_uids_drops_flag_ops_of_vanished_messages(store: Store) -> None:
    ids = add(store, "INBOX", [1, 2])
    store.set_flags(ids, add=["seen"])
    store.remove_uids(fid(store, "INBOX"), [1])
    [op] = store.pending_ops("acct")
    assert op.uid == 2


def test_folder_removal_drops_its_ops(store: Store) -> None:
    ids = add(store, "Archive", [1])
    store.set_flags(ids, add=["seen"])
    store.sync_folders(
        "acct",
        [
            FolderInfo("INBOX", role=FolderRole.INBOX),
            FolderInfo("Trash", role=FolderRole.TRASH),
            FolderInfo("Sent", role=FolderRole.SENT),
        ],
    )
    assert store.pending_ops("acct") == []
    assert store.message(ids[0]) is None


def test_drop_move_with_later_ops_takes_them_along(store: Store) -> None:
    # INBOX -> Archive, then a flag change: the source vanished on the server, so the move
    # is dropped and the flag op (waiting for a UID that will never come) goes with it.
    [mid] = add(store, "INBOX", [7])
    store.move([mid], fid(store, "Archive"))
    store.set_flags([mid], add=["flagged"])
    first = store.pending_ops("acct")[0]
    store.drop_op(first.id, "source message vanished")
    assert store.pending_ops("acct") == []
    summary = store.message(mid)
    assert summary is not None and (summary.folder, summary.uid) == ("INBOX", 7)
    assert store.raw(mid) == full_message(7)
    assert store.integrity_check() == []


def test_drop_move_after_the_message_came_back_keeps_its_file(store: Store) -> None:
    # INBOX -> Archive -> INBOX, then the first move is dropped: the file is already home.
    [mid] = add(store, "INBOX", [7])
    store.move([mid], fid(store, "Archive"))
    store.move([mid], fid(store, "INBOX"))
    first = store.pending_ops("acct")[0]
    store.drop_op(first.id, "source message vanished")
    assert store.raw(mid) == full_message(7)
    assert files(store, "Archive") == []
    assert store.integrity_check() == []


# ----------------------------------------------------------------------------- folder renames


ALL_BUT_ARCHIVE = [
    FolderInfo("INBOX", role=FolderRole.INBOX),
    FolderInfo("Trash", role=FolderRole.TRASH),
    FolderInfo("Sent", role=FolderRole.SENT),
]


def test_rename_from_the_server_keeps_rows_state_ops_and_files(store: Store) -> None:
    from tuimail.models import FolderState

    archive = fid(store, "Archive")
    ids = add(store, "Archive", [1, 2])
    store.set_folder_state(archive, FolderState(7, 3, 40))
    store.set_flags([ids[0]], add=["seen"])
    mid = store.append_local(archive, full_message(9), SEEN)
    before = files(store, "Archive")
    changes = store.sync_folders(
        "acct", [*ALL_BUT_ARCHIVE, FolderInfo("Old/Archive")], {"Archive": "Old/Archive"}
    )
    assert changes.renamed == [("Archive", "Old/Archive")]
    assert changes.added == changes.removed == changes.rescued == []
    row = store.folder("acct", "Old/Archive")
    assert row is not None and row.id == archive and row.state == FolderState(7, 3, 40)
    assert sorted(store.list_ids(archive)) == sorted([*ids, mid])
    ops = store.pending_ops("acct")
    assert [(op.kind, op.folder) for op in ops] == [
        ("flags", "Old/Archive"),
        ("append", "Old/Archive"),
    ]
    assert not (store.root / "maildir" / "acct" / "Archive").exists()
    assert files(store, "Old%2FArchive") == before
    assert store.raw(mid) == full_message(9)
    assert store.raw(ids[1]) is not None


def test_a_rename_to_a_name_not_listed_is_not_applied(store: Store) -> None:
    ids = add(store, "Archive", [1])
    changes = store.sync_folders("acct", ALL_BUT_ARCHIVE, {"Archive": "Elsewhere"})
    assert changes.renamed == [] and changes.removed == ["Archive"]
    assert store.message(ids[0]) is None


def test_folder_deleted_on_the_server_keeps_unsent_appends_in_inbox(store: Store) -> None:
    archive = fid(store, "Archive")
    add(store, "Archive", [1])
    mid = store.append_local(archive, full_message(5), SEEN)
    store.set_flags([mid], add=["flagged"])  # a later op on the placeholder goes along
    changes = store.sync_folders("acct", ALL_BUT_ARCHIVE)
    assert changes.removed == ["Archive"]
    assert changes.rescued == [("Archive", "INBOX", 1)]
    summary = store.message(mid)
    assert summary is not None and summary.folder == "INBOX" and summary.uid == 0
    assert store.raw(mid) == full_message(5)
    assert [(op.kind, op.folder) for op in store.pending_ops("acct")] == [
        ("append", "INBOX"),
        ("flags", "INBOX"),
    ]
    assert counts(store, "INBOX") == (1, 0)
    [op, _] = store.pending_ops("acct")
    store.complete_op(op.id, new_uid=31)
    assert store.uid_flags(fid(store, "INBOX")) == {31: Flags(seen=True, flagged=True)}


def test_moves_out_of_and_into_a_folder_deleted_on_the_server(store: Store) -> None:
    out_id, in_id = add(store, "Archive", [1]) + add(store, "INBOX", [4])
    store.move([out_id], fid(store, "Sent"))  # its source vanishes: upload our copy
    store.move([in_id], fid(store, "Archive"))  # its destination vanishes: undone
    changes = store.sync_folders("acct", ALL_BUT_ARCHIVE)
    assert changes.rescued == []
    [op] = store.pending_ops("acct")
    assert (op.kind, op.folder, op.message_id, op.uid) == ("append", "Sent", out_id, None)
    assert store.raw(out_id) is not None
    back = store.message(in_id)
    assert back is not None and (back.folder, back.uid) == ("INBOX", 4)


def test_a_rename_puts_debris_in_its_way_aside(store: Store) -> None:
    ids = add(store, "Archive", [1])
    debris = store.root / "maildir" / "acct" / "Kept" / "cur"
    debris.mkdir(parents=True)
    (debris / "left-by-a-crash").write_bytes(b"x")
    changes = store.sync_folders(
        "acct", [*ALL_BUT_ARCHIVE, FolderInfo("Kept")], {"Archive": "Kept"}
    )
    assert changes.renamed == [("Archive", "Kept")]
    assert store.raw(ids[0]) is not None
    [aside] = (store.root / "maildir" / "acct").glob(".orphan-*-Kept")
    assert (aside / "cur" / "left-by-a-crash").read_bytes() == b"x"


def test_a_failed_rename_leaves_the_folder_as_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add(store, "Archive", [1])

    def broken(*args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("tuimail.store.store.fsync_dir", broken)
    with pytest.raises(OSError):
        store.sync_folders("acct", [*ALL_BUT_ARCHIVE, FolderInfo("Kept")], {"Archive": "Kept"})
    monkeypatch.undo()
    assert store.folder("acct", "Kept") is None
    assert store.raw(ids[0]) is not None and store.message(ids[0]) is not None
    assert files(store, "Archive") and not (store.root / "maildir" / "acct" / "Kept").exists()
