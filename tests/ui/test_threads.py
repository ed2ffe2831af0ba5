"""Thread layout (pure): order, tree drawings, collapsing, hostile headers."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tuimail.store.types import ThreadRow
from tuimail.ui.threads import layout, prefix


def row(
    mid: int, thread: int, when: float, msgid: str = "", parent: str = "", *refs: str
) -> ThreadRow:
    return (mid, thread, when, msgid, parent, " ".join(refs))


# A thread (key 7): 1 <- 2 <- 3, and 1 <- 4; a lone message 5 newer than the thread's start.
CONVERSATION = [
    row(1, 7, 10.0, "<a>"),
    row(2, 7, 20.0, "<b>", "<a>"),
    row(3, 7, 30.0, "<c>", "<b>", "<a>", "<b>"),
    row(4, 7, 40.0, "<d>", "<a>"),
    row(5, 9, 35.0, "<e>"),
]


def test_threads_order_by_their_newest_message_and_draw_a_tree() -> None:
    got = layout(CONVERSATION)
    assert got.ids == [1, 2, 3, 4, 5]  # the thread's newest (40) beats the lone message (35)
    assert got.prefixes == ["", "├─>", "│ └─>", "└─>", ""]
    assert got.thread_of == {1: 7, 2: 7, 3: 7, 4: 7, 5: 9}
    assert got.sizes == {7: 4, 9: 1}
    assert layout(CONVERSATION, descending=False).ids == [5, 1, 2, 3, 4]


def test_a_collapsed_thread_shows_its_first_message_and_its_size() -> None:
    got = layout(CONVERSATION, collapsed=frozenset({7}))
    assert got.ids == [1, 5]
    assert got.prefixes == ["[4] ", ""]
    assert got.thread_of[3] == 7  # hidden members still map to their thread (to expand)


@pytest.mark.parametrize(
    ("rows", "expected_ids"),
    [
        # Parent known only through References (In-Reply-To missing).
        ([row(1, 1, 1.0, "<a>"), row(2, 1, 2.0, "<b>", "", "<a>")], [1, 2]),
        # Self-reference: no loop, stands as the root.
        ([row(1, 1, 1.0, "<a>", "<a>"), row(2, 1, 2.0, "<b>", "<a>")], [1, 2]),
        # A cycle a -> b -> a: both shown once.
        ([row(1, 1, 1.0, "<a>", "<b>"), row(2, 1, 2.0, "<b>", "<a>")], [1, 2]),
        # Duplicate Message-IDs: the older one is the parent; the copy hangs beside the reply.
        ([row(1, 1, 1.0, "<a>"), row(2, 1, 2.0, "<a>"), row(3, 1, 3.0, "<c>", "<a>")], [1, 2, 3]),
        # Thread id 0 (rows made by hand): each stands alone.
        ([row(1, 0, 1.0, "<a>"), row(2, 0, 2.0, "<b>", "<a>")], [2, 1]),
    ],
)
def test_odd_headers_never_loop_or_lose_a_message(
    rows: list[ThreadRow], expected_ids: list[int]
) -> None:
    assert layout(rows).ids == expected_ids


def test_deep_threads_are_drawn_at_a_readable_depth() -> None:
    chain = [row(1, 1, 0.0, "<m0>")] + [
        row(i + 1, 1, float(i), f"<m{i}>", f"<m{i - 1}>") for i in range(1, 40)
    ]
    deepest = layout(chain).prefixes[-1]
    assert deepest == prefix((True,) * 40) and len(deepest) == 2 * 11 + 3


ids_ = st.integers(1, 60)
msgids = st.sampled_from(["", "<a>", "<b>", "<c>", "<d>", "<e>"])
rows_ = st.lists(
    st.tuples(
        ids_,
        st.integers(0, 4),  # thread id
        st.floats(0, 100, allow_nan=False),  # date
        msgids,
        msgids,  # in-reply-to
        st.lists(msgids, max_size=3).map(" ".join),  # references
    ),
    unique_by=lambda r: r[0],
    max_size=40,
)


@given(rows=rows_, descending=st.booleans(), collapse=st.sets(st.integers(-60, 4)))
def test_every_message_appears_once_whatever_the_headers(
    rows: list[ThreadRow], descending: bool, collapse: set[int]
) -> None:
    got = layout(rows, descending, frozenset(collapse))
    assert len(got.ids) == len(set(got.ids)) == len(got.prefixes)
    assert set(got.thread_of) == {r[0] for r in rows}
    assert sum(got.sizes.values()) == len(rows)
    shown = set(got.ids)
    for key, size in got.sizes.items():
        members = {mid for mid, k in got.thread_of.items() if k == key}
        assert len(members) == size
        visible = members & shown
        assert len(visible) == (1 if key in collapse else size)
    if not collapse:
        assert shown == {r[0] for r in rows}


@given(rows=rows_, descending=st.booleans(), collapse=st.sets(st.integers(-60, 4)))
def test_placing_threads_by_the_stores_order_matches_sorting_them(
    rows: list[ThreadRow], descending: bool, collapse: set[int]
) -> None:
    """The list's ids come sorted by (date, id) from the store; walking them places each
    thread where sorting by its newest message would. (On equal dates the two may differ:
    the walk lets the newest member's id decide, the sort the thread's highest id.)"""
    assume(len({r[2] for r in rows}) == len(rows))
    order = [r[0] for r in sorted(rows, key=lambda r: (r[2], r[0]), reverse=descending)]
    by_walk = layout(rows, descending, frozenset(collapse), order)
    by_sort = layout(rows, descending, frozenset(collapse))
    assert by_walk.ids == by_sort.ids
    assert by_walk.prefixes == by_sort.prefixes


@given(rows=rows_, more=rows_, descending=st.booleans())
def test_an_earlier_layouts_trees_change_nothing_but_the_work(
    rows: list[ThreadRow], more: list[ThreadRow], descending: bool
) -> None:
    """A refresh passes the last layout's trees: same result as laying out from scratch."""
    before = layout(rows, descending)
    seen = {r[0] for r in rows}
    grown = rows + [r for r in more if r[0] not in seen]
    assert layout(grown, descending, trees=before.trees) == layout(grown, descending)


def test_unchanged_threads_are_not_walked_again() -> None:
    first = layout(CONVERSATION)
    again = layout([*CONVERSATION, row(6, 3, 50.0, "<f>")], trees=first.trees)
    assert again.trees[7] is first.trees[7]  # the same tree object: reused, not rebuilt
    changed = layout([*CONVERSATION, row(6, 7, 50.0, "<f>", "<d>")], trees=first.trees)
    assert changed.trees[7] is not first.trees[7]
    assert changed.ids == [1, 2, 3, 4, 6, 5] and changed.prefixes[4] == "  └─>"
