"""Pure sync planning for one IMAP folder: states and server reports in, decisions out.

The engine (`tuimail.sync.engine`) does the talking and the storing; every decision about
*what* to fetch, apply, remove or record is made here, so it can be tested on tables and
random states without a server.

How a folder is brought up to date
----------------------------------
1. `choose_mode`: QRESYNC when the server has it and we know the folder's UIDVALIDITY and
   HIGHESTMODSEQ (the SELECT itself returns VANISHED and changed flags); CONDSTORE when it
   has that (flags changed since our HIGHESTMODSEQ, plus a UID list to spot expunges);
   otherwise FULL (every UID with its flags, compared with ours).
2. `needs_reset`: a UIDVALIDITY different from the stored one invalidates every local UID:
   the folder is emptied (headers, bodies, FTS rows, pending operations for its old UIDs —
   reported as a warning) and fetched again.
3. `plan_changes`: which local messages get new flags and which are removed. Only UIDs
   below our stored UIDNEXT ("known" UIDs) are compared; a server UID below it that we do
   not have (its row was moved or deleted locally and the operation not pushed yet) is never
   fetched again.
4. `new_range`: messages with UIDs from our UIDNEXT up are new; `stale_placeholders` then
   removes local rows at or above it that the server no longer has.
5. `final_state`: what `store.set_folder_state` records once everything is stored.

Conflict rule (flags)
---------------------
A local flag change is a pending operation holding a delta (flags added, flags removed).
*The local change wins for the flags it touched; the server wins for every other flag.*
While an operation is pending, the flags a sync writes locally are the server's flags with
the delta applied again (`FlagDelta.apply`). The delta is replayed as `+FLAGS`/`-FLAGS`
(never a whole `FLAGS` replacement), with `UNCHANGEDSINCE <our HIGHESTMODSEQ>` where the
server has CONDSTORE; when the server answers `[MODIFIED]` (another client changed the
message since we last looked), the engine re-reads the server's flags, applies them locally
with `resolve_modified` (server flags + our delta) and replays only the delta again without
UNCHANGEDSINCE. A local change is therefore never silently dropped, and a concurrent change
to a different flag (or a keyword) is kept. Keywords are ordinary flags in this rule, both
ways. A message expunged on the server while a local flag change is pending is removed
locally (the change has nothing left to apply to); the engine drops that operation with a
reason.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from operator import itemgetter

from tuimail.models import Flags, FolderState, Frozen

_set = object.__setattr__  # Frozen values, not dataclasses: cheaper to import (start-up)


class Mode(StrEnum):
    QRESYNC = "qresync"
    CONDSTORE = "condstore"
    FULL = "full"


class FlagDelta(Frozen):
    """A local flag change: names as in `Flags.with_changes` (`seen`, ..., keywords)."""

    __slots__ = ("add", "remove")
    add: frozenset[str]
    remove: frozenset[str]

    def __init__(
        self, add: frozenset[str] = frozenset(), remove: frozenset[str] = frozenset()
    ) -> None:
        _set(self, "add", add)
        _set(self, "remove", remove)

    @classmethod
    def of(cls, add: Iterable[str] = (), remove: Iterable[str] = ()) -> FlagDelta:
        adds = frozenset(add)
        return cls(adds, frozenset(remove) - adds)

    def apply(self, flags: Flags) -> Flags:
        return flags.with_changes(add=self.add, remove=self.remove) if self else flags

    def then(self, later: FlagDelta) -> FlagDelta:
        """This change followed by `later`: for a flag touched by both, `later` wins."""
        touched = later.add | later.remove
        return FlagDelta((self.add - touched) | later.add, (self.remove - touched) | later.remove)

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


def combine_deltas(ops: Iterable[tuple[int, FlagDelta]]) -> dict[int, FlagDelta]:
    """Pending flag operations in queue order -> one delta per UID."""
    out: dict[int, FlagDelta] = {}
    for uid, delta in ops:
        prev = out.get(uid)
        out[uid] = delta if prev is None else prev.then(delta)
    return out


def choose_mode(state: FolderState, *, qresync: bool, condstore: bool) -> Mode:
    known = state.uidvalidity > 0 and state.highestmodseq > 0
    if qresync and known:
        return Mode.QRESYNC
    if condstore and known:
        return Mode.CONDSTORE
    return Mode.FULL


class Selected(Frozen):
    """What SELECT reported. 0 means "not reported" (HIGHESTMODSEQ 0 = NOMODSEQ)."""

    __slots__ = ("exists", "highestmodseq", "uidnext", "uidvalidity")
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    exists: int

    def __init__(
        self, uidvalidity: int, uidnext: int = 0, highestmodseq: int = 0, exists: int = 0
    ) -> None:
        _set(self, "uidvalidity", uidvalidity)
        _set(self, "uidnext", uidnext)
        _set(self, "highestmodseq", highestmodseq)
        _set(self, "exists", exists)


def status_unchanged(state: FolderState, status: Selected, *, qresync: bool) -> bool:
    """True when a folder's STATUS (from LIST-STATUS) proves nothing changed since our
    state, so it need not even be selected. Only with QRESYNC: a server that has it must
    move HIGHESTMODSEQ on every change, expunges included (RFC 7162); under bare
    CONDSTORE an expunge may leave it alone."""
    return (
        qresync
        and state.highestmodseq > 0
        and (status.uidvalidity, status.uidnext, status.highestmodseq)
        == (state.uidvalidity, state.uidnext, state.highestmodseq)
    )


def needs_reset(state: FolderState, sel: Selected) -> bool:
    return state.uidvalidity != 0 and state.uidvalidity != sel.uidvalidity


def effective_mode(mode: Mode, state: FolderState, sel: Selected) -> Mode:
    """The mode actually usable after SELECT: a reset or a NOMODSEQ folder means FULL."""
    if needs_reset(state, sel) or sel.highestmodseq == 0:
        return Mode.FULL
    return mode


def known_top(state: FolderState) -> int:
    """The highest UID whose messages we hold completely (0: none)."""
    return max(state.uidnext - 1, 0)


def flags_unchanged(state: FolderState, sel: Selected, mode: Mode) -> bool:
    """True when the server says nothing changed since our state (no flag query needed)."""
    return mode is not Mode.FULL and sel.highestmodseq == state.highestmodseq


def need_uid_list(
    mode: Mode,
    state: FolderState,
    sel: Selected,
    local_known: int,
    new_on_server: int | None,
    pending_in_folder: bool,
) -> bool:
    """CONDSTORE without QRESYNC cannot report expunges: fetch the server's UID list unless
    counting proves nothing was expunged. `local_known` counts our UIDs below our UIDNEXT,
    `new_on_server` the server's UIDs at or above it (None: unknown). Rows moved away
    locally and not yet pushed make counts unreliable, hence `pending_in_folder`."""
    if mode is not Mode.CONDSTORE or local_known == 0:
        return False
    if pending_in_folder or new_on_server is None:
        return True
    return sel.exists != local_known + new_on_server


class Changes(Frozen):
    __slots__ = ("dropped_pending", "flags", "remove")
    flags: dict[int, Flags]  # uid -> flags to store locally
    remove: frozenset[int]  # uids expunged on the server
    dropped_pending: frozenset[int]  # removed uids that had a pending flag change

    def __init__(
        self,
        flags: dict[int, Flags] | None = None,
        remove: frozenset[int] = frozenset(),
        dropped_pending: frozenset[int] = frozenset(),
    ) -> None:
        _set(self, "flags", {} if flags is None else flags)
        _set(self, "remove", remove)
        _set(self, "dropped_pending", dropped_pending)


def plan_changes(
    state: FolderState,
    local: Mapping[int, Flags],
    pending: Mapping[int, FlagDelta],
    server_flags: Mapping[int, Flags],
    *,
    vanished: Sequence[tuple[int, int]] = (),
    present: Collection[int] | None = None,
) -> Changes:
    """Local updates from what the server reported.

    `server_flags`: UID -> server flags, for changed messages (QRESYNC/CONDSTORE) or for
    every message (FULL). `vanished`: inclusive UID ranges expunged (QRESYNC). `present`:
    every UID the server has below our UIDNEXT (FULL, or CONDSTORE's UID list), None when
    not known. Only UIDs we know (local and below our UIDNEXT) are touched.
    """
    top = known_top(state)
    flags: dict[int, Flags] = {}
    for uid, server in server_flags.items():
        if uid > top:
            continue  # new on the server: fetched whole by the new-message step
        mine = local.get(uid)
        if mine is None:
            continue  # not ours (moved/deleted locally, not pushed yet): never re-fetched
        delta = pending.get(uid)
        target = delta.apply(server) if delta is not None else server
        if target != mine:
            flags[uid] = target
    removed: set[int] = set()
    if vanished:
        removed.update(_uids_in_ranges(local, vanished, top))
    if present is not None:
        removed.update(uid for uid in local if uid <= top and uid not in present)
    for uid in removed:
        flags.pop(uid, None)
    return Changes(
        flags,
        frozenset(removed),
        frozenset(uid for uid in removed if uid in pending),
    )


def plan_reported(
    state: FolderState,
    pending: Mapping[int, FlagDelta],
    server_flags: Mapping[int, Flags],
    vanished: Sequence[tuple[int, int]],
    *,
    max_expand: int = 1_000_000,
) -> Changes | None:
    """`plan_changes` for QRESYNC without reading the local flags of the whole folder: the
    targets of every reported UID and every vanished UID below our UIDNEXT, for a store
    that ignores UIDs it does not hold and writes only real differences. None when the
    vanished ranges are too wide to list (then read the local flags and use
    `plan_changes`)."""
    top = known_top(state)
    span = sum(min(b, top) - a + 1 for a, b in vanished if a <= top)
    if span > max_expand:
        return None
    removed = frozenset(u for a, b in vanished for u in range(a, min(b, top) + 1))
    flags = {
        uid: (pending[uid].apply(server) if uid in pending else server)
        for uid, server in server_flags.items()
        if uid <= top and uid not in removed
    }
    return Changes(flags, removed, frozenset(uid for uid in removed if uid in pending))


def _uids_in_ranges(
    local: Mapping[int, Flags], ranges: Sequence[tuple[int, int]], top: int
) -> Iterable[int]:
    span = sum(b - a + 1 for a, b in ranges)
    if span <= len(local):
        # Few vanished UIDs: look each up (a server may report 1:4294967295).
        return (u for a, b in ranges for u in range(a, min(b, top) + 1) if u in local)
    return (u for u in local if u <= top and _in(u, ranges))


def _in(uid: int, ranges: Sequence[tuple[int, int]]) -> bool:
    i = bisect.bisect_right(ranges, uid, key=itemgetter(0)) - 1
    return i >= 0 and uid <= ranges[i][1]


def new_range(state: FolderState, sel: Selected, reset: bool) -> int:
    """The first UID of the new messages to fetch, 0 when the server has none."""
    start = 1 if reset else max(state.uidnext, 1)
    if sel.uidnext and sel.uidnext <= start:
        return 0
    if sel.exists == 0:
        return 0
    return start


def stale_placeholders(
    local_uids: Iterable[int], start: int, returned: Collection[int], sel: Selected
) -> frozenset[int]:
    """Local UIDs at or above `start` (given to moved/appended rows by COPYUID/APPENDUID)
    that a completed new-message fetch from `start` did not return: gone on the server."""
    limit = sel.uidnext if sel.uidnext else None
    return frozenset(
        u for u in local_uids if u >= start and u not in returned and (limit is None or u < limit)
    )


def final_state(sel: Selected, max_uid_seen: int, floor: int = 0) -> FolderState:
    """The state recorded once the folder's changes and new messages are all stored.

    The HIGHESTMODSEQ is SELECT's: every change up to it has been applied (QRESYNC and
    CONDSTORE report them, FULL read every flag after SELECT). New mail that arrived after
    SELECT and was fetched anyway moves UIDNEXT past it; `floor` (our UIDNEXT before) keeps
    a server that did not report UIDNEXT from moving it back."""
    uidnext = max(sel.uidnext, max_uid_seen + 1, floor)
    return FolderState(sel.uidvalidity, uidnext, sel.highestmodseq)


def progress_state(
    state: FolderState, sel: Selected, reset: bool, stored_through: int
) -> FolderState:
    """The state to record after new messages up to `stored_through` are stored (in UID
    order), before the folder is done: UIDNEXT moves, HIGHESTMODSEQ stays where it was so
    the next run still asks for every flag change since then."""
    old_modseq = 0 if reset else state.highestmodseq
    uidnext = max(stored_through + 1, 1 if reset else state.uidnext)
    return FolderState(sel.uidvalidity, uidnext, old_modseq)


def resolve_modified(server: Flags, delta: FlagDelta) -> Flags:
    """After `[MODIFIED]`: the server's current flags with our change re-applied."""
    return delta.apply(server)


# ----------------------------------------------------------------------------- bodies


def bodies_since(policy: str, recent_days: int, now: datetime) -> datetime | None:
    """For `bodies = "recent"`: the oldest INTERNALDATE whose body is downloaded ahead."""
    if policy == "recent":
        return now - timedelta(days=max(recent_days, 0))
    return None


def wants_body(policy: str, since: datetime | None, internaldate: datetime | None) -> bool:
    if policy == "all":
        return True
    if policy != "recent" or since is None:
        return False
    return internaldate is None or internaldate >= since


def body_batches(
    items: Sequence[tuple[int, int]], max_count: int, max_bytes: int
) -> list[list[int]]:
    """Group (uid, size) pairs into fetch batches of at most `max_count` messages and about
    `max_bytes` (one message larger than that goes alone), UIDs ascending."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid, size in sorted(items):
        if current and (len(current) >= max_count or total + size > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches


# ----------------------------------------------------------------------------- folders


def match_renames(
    vanished: Mapping[str, FolderState], appeared: Mapping[str, Selected]
) -> dict[str, str]:
    """Which local folders that vanished from LIST were renamed (old name -> new name)
    into folders that appeared in the same LIST, given the local states of the vanished
    ones and the STATUS of the new ones (`Selected.exists` is MESSAGES).

    RFC 3501 (6.3.5) keeps a folder's UIDVALIDITY across RENAME, so the same UIDVALIDITY is
    the sign. To be safe against a coincidence (another folder created in the same second,
    UIDVALIDITY being a timestamp on many servers) the server folder must also be able to
    be ours: its UIDNEXT is at least ours (UIDs never go back), or, when it reported no
    UIDNEXT, its HIGHESTMODSEQ is at least ours. A folder we never synced (UIDVALIDITY 0)
    has nothing to match. Ambiguous matches are not renames: a vanished folder with two
    candidates, or a candidate claimed by two vanished folders. A parent's rename shows as
    one vanished/appeared pair per folder, each matched on its own."""
    candidates: dict[str, list[str]] = {}
    claimed: dict[str, int] = {}
    for old, state in vanished.items():
        if state.uidvalidity == 0:
            continue
        found = [
            new
            for new, status in appeared.items()
            if status.uidvalidity == state.uidvalidity and _may_continue(state, status)
        ]
        candidates[old] = found
        for new in found:
            claimed[new] = claimed.get(new, 0) + 1
    return {
        old: found[0]
        for old, found in candidates.items()
        if len(found) == 1 and claimed[found[0]] == 1
    }


def _may_continue(state: FolderState, status: Selected) -> bool:
    """Whether the server folder's counters can be the continuation of our state."""
    if status.uidnext:
        return status.uidnext >= state.uidnext
    if status.highestmodseq and state.highestmodseq:
        return status.highestmodseq >= state.highestmodseq
    return False
