"""Pure sync planning (tuimail.sync.plan): tables and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.models import Flags, FolderState
from tuimail.sync import plan
from tuimail.sync.plan import FlagDelta, Mode, Selected

SEEN = Flags(seen=True)
NONE = Flags()
FLAGGED = Flags(flagged=True)
SEEN_FLAGGED = Flags(seen=True, flagged=True)

flag_names = st.sampled_from(
    ["seen", "answered", "flagged", "deleted", "draft", "$Label1", "$Junk", "work"]
)
flags_st = st.builds(
    lambda names: Flags().with_changes(add=names), st.frozensets(flag_names, max_size=4)
)
deltas = st.builds(
    FlagDelta.of, st.frozensets(flag_names, max_size=3), st.frozensets(flag_names, max_size=3)
)


# ----------------------------------------------------------------------------- deltas


def test_delta_apply_and_conflict_rule() -> None:
    # Local marked seen; meanwhile the server flagged it: both survive.
    assert FlagDelta.of(add=["seen"]).apply(FLAGGED) == SEEN_FLAGGED
    # Local marked unseen; server says seen: the local change wins for \Seen.
    assert FlagDelta.of(remove=["seen"]).apply(SEEN_FLAGGED) == FLAGGED
    # Keywords are flags like the others.
    assert FlagDelta.of(add=["$Label1"]).apply(NONE) == Flags(keywords=frozenset({"$Label1"}))
    assert plan.resolve_modified(FLAGGED, FlagDelta.of(add=["seen"])) == SEEN_FLAGGED


def test_delta_of_add_wins_over_remove_of_same_flag() -> None:
    d = FlagDelta.of(add=["seen"], remove=["seen", "flagged"])
    assert d.add == {"seen"} and d.remove == {"flagged"}


@given(deltas, deltas, flags_st)
def test_delta_then_is_sequential_application(a: FlagDelta, b: FlagDelta, flags: Flags) -> None:
    assert a.then(b).apply(flags) == b.apply(a.apply(flags))


@given(st.lists(st.tuples(st.integers(1, 4), deltas), max_size=8), flags_st)
def test_combine_deltas(ops: list[tuple[int, FlagDelta]], flags: Flags) -> None:
    combined = plan.combine_deltas(ops)
    for uid in {u for u, _ in ops}:
        expected = flags
        for u, d in ops:
            if u == uid:
                expected = d.apply(expected)
        assert combined[uid].apply(flags) == expected


# ----------------------------------------------------------------------------- modes


@pytest.mark.parametrize(
    ("state", "qresync", "condstore", "mode"),
    [
        (FolderState(), True, True, Mode.FULL),  # never synced
        (FolderState(5, 10, 0), True, True, Mode.FULL),  # no modseq known yet
        (FolderState(5, 10, 7), True, True, Mode.QRESYNC),
        (FolderState(5, 10, 7), False, True, Mode.CONDSTORE),
        (FolderState(5, 10, 7), False, False, Mode.FULL),
    ],
)
def test_choose_mode(state: FolderState, qresync: bool, condstore: bool, mode: Mode) -> None:
    assert plan.choose_mode(state, qresync=qresync, condstore=condstore) is mode


@pytest.mark.parametrize(
    ("state", "sel", "reset", "mode"),
    [
        (FolderState(5, 10, 7), Selected(5, 10, 7, 9), False, Mode.QRESYNC),
        (FolderState(5, 10, 7), Selected(6, 10, 7, 9), True, Mode.FULL),
        (FolderState(0, 0, 0), Selected(6, 10, 7, 9), False, Mode.QRESYNC),
        (FolderState(5, 10, 7), Selected(5, 10, 0, 9), False, Mode.FULL),  # NOMODSEQ
    ],
)
def test_reset_and_effective_mode(
    state: FolderState, sel: Selected, reset: bool, mode: Mode
) -> None:
    assert plan.needs_reset(state, sel) is reset
    assert plan.effective_mode(Mode.QRESYNC, state, sel) is mode


def test_flags_unchanged() -> None:
    st_ = FolderState(5, 10, 7)
    assert plan.flags_unchanged(st_, Selected(5, 10, 7, 9), Mode.QRESYNC)
    assert not plan.flags_unchanged(st_, Selected(5, 10, 8, 9), Mode.CONDSTORE)
    assert not plan.flags_unchanged(st_, Selected(5, 10, 7, 9), Mode.FULL)


@pytest.mark.parametrize(
    ("mode", "local_known", "new", "pending", "exists", "needed"),
    [
        (Mode.QRESYNC, 10, 0, False, 3, False),  # QRESYNC reports expunges itself
        (Mode.FULL, 10, 0, False, 3, False),  # FULL fetches every UID anyway
        (Mode.CONDSTORE, 0, 0, False, 3, False),  # nothing local to remove
        (Mode.CONDSTORE, 10, 0, False, 10, False),  # counts agree
        (Mode.CONDSTORE, 10, 2, False, 12, False),
        (Mode.CONDSTORE, 10, 2, False, 11, True),  # one expunged
        (Mode.CONDSTORE, 10, None, False, 10, True),  # new count unknown
        (Mode.CONDSTORE, 10, 0, True, 10, True),  # local moves pending: counts unreliable
    ],
)
def test_need_uid_list(
    mode: Mode, local_known: int, new: int | None, pending: bool, exists: int, needed: bool
) -> None:
    sel = Selected(5, 20, 9, exists)
    assert plan.need_uid_list(mode, FolderState(5, 11, 7), sel, local_known, new, pending) is needed


# ----------------------------------------------------------------------------- changes


def test_plan_changes_table() -> None:
    state = FolderState(5, 11, 7)  # UIDs 1..10 known
    local = {1: NONE, 2: SEEN, 3: NONE, 4: FLAGGED, 12: NONE}
    pending = {3: FlagDelta.of(add=["seen"]), 4: FlagDelta.of(remove=["flagged"])}
    server = {
        1: SEEN,  # changed on the server
        2: SEEN,  # same as local: no update
        3: FLAGGED,  # pending +seen: server's \Flagged kept, our \Seen too
        4: SEEN_FLAGGED,  # pending -flagged: server's \Seen kept, \Flagged stays off
        7: SEEN,  # not local (moved away locally, not pushed): ignored
        11: SEEN,  # new on the server: the new-message step fetches it
        12: SEEN,  # at/above our UIDNEXT: ignored here
    }
    changes = plan.plan_changes(state, local, pending, server)
    assert changes.flags == {1: SEEN, 3: SEEN_FLAGGED, 4: SEEN}
    assert changes.remove == frozenset()


def test_plan_changes_vanished_and_present() -> None:
    state = FolderState(5, 11, 7)
    local = {1: NONE, 2: NONE, 3: NONE, 12: NONE}
    pending = {2: FlagDelta.of(add=["seen"])}
    changes = plan.plan_changes(
        state, local, pending, {2: SEEN}, vanished=[(2, 2), (5, 4294967295)]
    )
    assert changes.remove == {2, 12} - {12}  # 12 is above UIDNEXT: not judged here
    assert changes.flags == {}
    assert changes.dropped_pending == {2}
    changes = plan.plan_changes(state, local, {}, {}, present={1, 3, 7})
    assert changes.remove == {2}


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[FolderState, dict[int, Flags], dict[int, FlagDelta], dict[int, Flags], set[int]]:
    uidnext = draw(st.integers(1, 40))
    state = FolderState(1, uidnext, 5)
    local = draw(st.dictionaries(st.integers(1, 45), flags_st, max_size=30))
    pending = draw(st.dictionaries(st.sampled_from(sorted(local) or [1]), deltas, max_size=5))
    server = draw(st.dictionaries(st.integers(1, 45), flags_st, max_size=40))
    return state, local, pending, server, set(server)


@given(scenarios(), st.booleans())
@settings(max_examples=300)
def test_plan_changes_properties(
    case: tuple[FolderState, dict[int, Flags], dict[int, FlagDelta], dict[int, Flags], set[int]],
    full: bool,
) -> None:
    state, local, pending, server, present = case
    top = state.uidnext - 1
    changes = plan.plan_changes(state, local, pending, server, present=present if full else None)
    after = dict(local)
    after.update(changes.flags)
    for uid in changes.remove:
        del after[uid]
    for uid, mine in local.items():
        if uid > top:
            # never judged by the flag/expunge step
            assert after[uid] == mine
            continue
        if full and uid not in server:
            assert uid not in after  # expunged on the server: removed locally
            continue
        if uid in server:
            delta = pending.get(uid, FlagDelta())
            # the local change wins for the flags it touched; the server for the others
            assert after[uid] == delta.apply(server[uid])
        else:
            assert after[uid] == mine
    # nothing appears that was not local
    assert set(after) <= set(local)
    # only real differences are written
    assert all(local[u] != f for u, f in changes.flags.items())


@given(
    st.dictionaries(st.integers(1, 300), flags_st, max_size=60),
    st.lists(st.tuples(st.integers(1, 400), st.integers(0, 400)), max_size=6),
)
def test_vanished_matches_membership(local: dict[int, Flags], raw: list[tuple[int, int]]) -> None:
    from tuimail.backends.imap_parse import merge_ranges

    ranges = merge_ranges((min(a, b) or 1, max(a, b) or 1) for a, b in raw)
    state = FolderState(1, 301, 1)
    changes = plan.plan_changes(state, local, {}, {}, vanished=ranges)
    expected = {u for u in local if any(a <= u <= b for a, b in ranges)}
    assert changes.remove == expected


# ----------------------------------------------------------------------------- new messages, state


@pytest.mark.parametrize(
    ("state", "sel", "reset", "start"),
    [
        (FolderState(), Selected(5, 101, 0, 100), False, 1),
        (FolderState(5, 101, 3), Selected(5, 101, 3, 100), False, 0),  # nothing new
        (FolderState(5, 101, 3), Selected(5, 105, 3, 104), False, 101),
        (FolderState(5, 101, 3), Selected(6, 50, 3, 40), True, 1),  # reset: everything
        (FolderState(5, 101, 3), Selected(5, 0, 3, 40), False, 101),  # UIDNEXT not reported
        (FolderState(), Selected(5, 1, 0, 0), False, 0),  # empty folder
        (FolderState(5, 101, 3), Selected(5, 0, 3, 0), False, 0),  # emptied folder
    ],
)
def test_new_range(state: FolderState, sel: Selected, reset: bool, start: int) -> None:
    assert plan.new_range(state, sel, reset) == start


def test_stale_placeholders() -> None:
    sel = Selected(5, 110, 3, 9)
    # 105 came back from the fetch, 107 did not (expunged), 120 is beyond what SELECT saw.
    assert plan.stale_placeholders([3, 105, 107, 120], 101, {101, 105}, sel) == {107}


def test_final_and_progress_state() -> None:
    sel = Selected(5, 110, 30, 9)
    assert plan.final_state(sel, 0) == FolderState(5, 110, 30)
    assert plan.final_state(sel, 115) == FolderState(5, 116, 30)
    assert plan.final_state(Selected(5, 110, 0, 9), 0) == FolderState(5, 110, 0)
    # a server that does not report UIDNEXT never moves ours back
    assert plan.final_state(Selected(5, 0, 30, 9), 0, floor=81) == FolderState(5, 81, 30)
    old = FolderState(5, 50, 20)
    assert plan.progress_state(old, sel, False, 80) == FolderState(5, 81, 20)
    assert plan.progress_state(old, sel, True, 10) == FolderState(5, 11, 0)
    assert plan.progress_state(old, sel, False, 10) == FolderState(5, 50, 20)


# ----------------------------------------------------------------------------- bodies


def test_body_policy() -> None:
    now = datetime(2024, 6, 30, tzinfo=UTC)
    since = plan.bodies_since("recent", 30, now)
    assert since == now - timedelta(days=30)
    assert plan.bodies_since("all", 30, now) is None
    assert plan.wants_body("all", None, None)
    assert not plan.wants_body("none", None, now)
    assert plan.wants_body("recent", since, now - timedelta(days=1))
    assert not plan.wants_body("recent", since, now - timedelta(days=31))
    assert plan.wants_body("recent", since, None)  # unknown date: fetch rather than miss it


@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)),
        unique_by=lambda t: t[0],
        max_size=100,
    ),
    st.integers(1, 20),
    st.integers(1, 3 * 10**6),
)
def test_body_batches(items: list[tuple[int, int]], max_count: int, max_bytes: int) -> None:
    batches = plan.body_batches(items, max_count, max_bytes)
    assert [u for b in batches for u in b] == sorted(u for u, _ in items)
    sizes = dict(items)
    for b in batches:
        assert 1 <= len(b) <= max_count
        assert len(b) == 1 or sum(sizes[u] for u in b) <= max_bytes


@pytest.mark.parametrize(
    ("state", "status", "qresync", "unchanged"),
    [
        (FolderState(5, 101, 30), Selected(5, 101, 30), True, True),
        (FolderState(5, 101, 30), Selected(5, 101, 30), False, False),  # CONDSTORE only
        (FolderState(5, 101, 30), Selected(5, 102, 30), True, False),  # new mail
        (FolderState(5, 101, 30), Selected(5, 101, 31), True, False),  # flags/expunge
        (FolderState(5, 101, 30), Selected(6, 101, 30), True, False),  # renumbered
        (FolderState(5, 101, 0), Selected(5, 101, 0), True, False),  # no modseq known
        (FolderState(), Selected(5, 1, 1), True, False),  # never synced
    ],
)
def test_status_unchanged(
    state: FolderState, status: Selected, qresync: bool, unchanged: bool
) -> None:
    assert plan.status_unchanged(state, status, qresync=qresync) is unchanged


def _store_semantics(local: dict[int, Flags], changes: plan.Changes) -> dict[int, Flags]:
    """What the store does: unknown UIDs ignored, removed ones deleted."""
    after = dict(local)
    for uid, flags in changes.flags.items():
        if uid in after:
            after[uid] = flags
    for uid in changes.remove:
        after.pop(uid, None)
    return after


@given(
    scenarios(),
    st.lists(st.tuples(st.integers(1, 50), st.integers(0, 5)), max_size=4),
)
@settings(max_examples=300)
def test_plan_reported_equals_plan_changes_under_store_semantics(
    case: tuple[FolderState, dict[int, Flags], dict[int, FlagDelta], dict[int, Flags], set[int]],
    raw_vanished: list[tuple[int, int]],
) -> None:
    from tuimail.backends.imap_parse import merge_ranges

    state, local, pending, server, _present = case
    pending = {u: d for u, d in pending.items() if u in local}  # pending ops are on local rows
    vanished = merge_ranges((a, a + n) for a, n in raw_vanished)
    full = plan.plan_changes(state, local, pending, server, vanished=vanished)
    reported = plan.plan_reported(state, pending, server, vanished)
    assert reported is not None
    assert _store_semantics(local, reported) == _store_semantics(local, full)
    assert reported.dropped_pending == full.dropped_pending


def test_plan_reported_gives_up_on_huge_ranges() -> None:
    state = FolderState(1, 4_000_000_000, 5)
    assert plan.plan_reported(state, {}, {}, [(1, 3_999_999_999)], max_expand=1000) is None


# ----------------------------------------------------------------------------- renames


def _st(uidvalidity: int, uidnext: int = 0, modseq: int = 0) -> FolderState:
    return FolderState(uidvalidity, uidnext, modseq)


def _sel(uidvalidity: int, uidnext: int = 0, modseq: int = 0, messages: int = 0) -> Selected:
    return Selected(uidvalidity, uidnext, modseq, messages)


@pytest.mark.parametrize(
    ("vanished", "appeared", "expected"),
    [
        # Same UIDVALIDITY, UIDNEXT unchanged or grown: a rename.
        ({"A": _st(7, 10)}, {"B": _sel(7, 10)}, {"A": "B"}),
        ({"A": _st(7, 10)}, {"B": _sel(7, 12)}, {"A": "B"}),
        # UIDNEXT went back: not the same folder (a coincidence).
        ({"A": _st(7, 10)}, {"B": _sel(7, 9)}, {}),
        # Different UIDVALIDITY: a delete and a create.
        ({"A": _st(7, 10)}, {"B": _sel(8, 10)}, {}),
        # Never synced locally: nothing to match on.
        ({"A": _st(0, 0)}, {"B": _sel(0, 1)}, {}),
        # No UIDNEXT reported: HIGHESTMODSEQ decides, and without it nothing does.
        ({"A": _st(7, 10, 50)}, {"B": _sel(7, 0, 50)}, {"A": "B"}),
        ({"A": _st(7, 10, 50)}, {"B": _sel(7, 0, 49)}, {}),
        ({"A": _st(7, 10, 0)}, {"B": _sel(7, 0, 0, 3)}, {}),
        # Two candidates for one vanished folder: ambiguous, no rename.
        ({"A": _st(7, 10)}, {"B": _sel(7, 10), "C": _sel(7, 11)}, {}),
        # One candidate claimed by two vanished folders: ambiguous for both.
        ({"A": _st(7, 10), "X": _st(7, 5)}, {"B": _sel(7, 10)}, {}),
        # ... but an unambiguous pair beside it still counts.
        (
            {"A": _st(7, 10), "X": _st(7, 5), "P": _st(9, 3)},
            {"B": _sel(7, 10), "Q": _sel(9, 3)},
            {"P": "Q"},
        ),
        # A parent renamed with its child: each pair on its own UIDVALIDITY.
        (
            {"Work": _st(100, 4), "Work/2025": _st(101, 30)},
            {"Jobs": _sel(100, 4), "Jobs/2025": _sel(101, 31)},
            {"Work": "Jobs", "Work/2025": "Jobs/2025"},
        ),
        # Nothing appeared or nothing vanished.
        ({"A": _st(7, 10)}, {}, {}),
        ({}, {"B": _sel(7, 10)}, {}),
    ],
)
def test_match_renames(
    vanished: dict[str, FolderState], appeared: dict[str, Selected], expected: dict[str, str]
) -> None:
    assert plan.match_renames(vanished, appeared) == expected


@given(
    st.dictionaries(
        st.text("abc", min_size=1, max_size=2),
        st.builds(_st, st.integers(0, 3), st.integers(0, 5), st.integers(0, 5)),
        max_size=5,
    ),
    st.dictionaries(
        st.text("xyz", min_size=1, max_size=2),
        st.builds(_sel, st.integers(0, 3), st.integers(0, 5), st.integers(0, 5)),
        max_size=5,
    ),
)
def test_match_renames_is_a_safe_one_to_one_map(
    vanished: dict[str, FolderState], appeared: dict[str, Selected]
) -> None:
    renames = plan.match_renames(vanished, appeared)
    assert len(set(renames.values())) == len(renames)
    for old, new in renames.items():
        assert vanished[old].uidvalidity == appeared[new].uidvalidity != 0
        same = [n for n, s in appeared.items() if s.uidvalidity == vanished[old].uidvalidity]
        assert new in same
