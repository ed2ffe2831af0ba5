"""mail.threads: JWZ threading and the store's cheap thread key."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.mail.threads import ThreadInput, ThreadNode, base_subject, thread, thread_key
from tuimail.models import Envelope

T0 = datetime(2024, 4, 1, tzinfo=UTC)


def m(
    key: str,
    mid: str | None = None,
    irt: str = "",
    refs: tuple[str, ...] = (),
    subject: str = "s",
    minute: int = 0,
) -> ThreadInput:
    return ThreadInput(
        key=key,
        message_id=f"<{key}>" if mid is None else mid,
        in_reply_to=irt,
        references=refs,
        subject=subject,
        date=T0 + timedelta(minutes=minute),
    )


def shape(nodes: list[ThreadNode]) -> list[object]:
    """A forest as nested lists of keys; dummies are '*'."""

    def one(n: ThreadNode) -> object:
        label = "*" if n.message is None else n.message.key
        return [label, *[one(c) for c in n.children]] if n.children else label

    return [one(n) for n in nodes]


CASES = [
    ("single", [m("a")], ["a"]),
    (
        "simple chain",
        [
            m("a", minute=0),
            m("b", irt="<a>", refs=("<a>",), minute=1),
            m("c", refs=("<a>", "<b>"), minute=2),
        ],
        [["a", ["b", "c"]]],
    ),
    (
        "order of arrival does not matter",
        [m("c", refs=("<a>", "<b>"), minute=2), m("b", refs=("<a>",), minute=1), m("a", minute=0)],
        [["a", ["b", "c"]]],
    ),
    (
        "missing parent becomes a dummy with two replies",
        [
            m("b", refs=("<x>",), minute=1, subject="Re: s"),
            m("c", refs=("<x>",), minute=2, subject="Re: s"),
        ],
        [["*", "b", "c"]],
    ),
    (
        "missing parent with one reply: no dummy",
        [m("b", refs=("<x>",), subject="Re: t")],
        ["b"],
    ),
    (
        "missing middle message",
        [m("a", minute=0), m("c", refs=("<a>", "<b>"), minute=2)],
        [["a", "c"]],
    ),
    (
        "in-reply-to is the direct parent",
        [
            m("a", minute=0),
            m("b", refs=("<a>",), minute=1),
            m("c", irt="<b>", refs=("<a>",), minute=2),
        ],
        [["a", ["b", "c"]]],
    ),
    (
        "self reference",
        [m("a", refs=("<a>",), irt="<a>")],
        ["a"],
    ),
    (
        "two messages referencing each other",
        [m("a", refs=("<b>",), minute=0), m("b", refs=("<a>",), minute=1)],
        [["b", "a"]],
    ),
    (
        "cycle in one References header",
        [m("a", refs=("<x>", "<y>", "<x>"), minute=0), m("b", refs=("<y>", "<x>"), minute=1)],
        [["*", "a", "b"]],
    ),
    (
        "duplicate message-ids are both kept",
        [
            m("a1", mid="<a>", minute=0),
            m("a2", mid="<a>", minute=1, subject="other"),
            m("b", refs=("<a>",), minute=2),
        ],
        [["a1", "b"], "a2"],
    ),
    (
        "no message-id",
        [m("x", mid="", subject="one"), m("y", mid="", subject="two")],
        ["x", "y"],
    ),
    (
        "subject grouping: reply under its original",
        [m("a", subject="Plans", minute=0), m("b", mid="<b>", subject="Re: plans", minute=1)],
        [["a", "b"]],
    ),
    (
        "subject grouping: two originals get a dummy",
        [m("a", subject="Hello", minute=0), m("b", subject="hello", minute=1)],
        [["*", "a", "b"]],
    ),
    (
        "empty subjects never group",
        [m("a", subject="", minute=0), m("b", subject="Re:", minute=1)],
        ["a", "b"],
    ),
]


@pytest.mark.parametrize(("name", "messages", "expected"), CASES, ids=[c[0] for c in CASES])
def test_thread_table(name: str, messages: list[ThreadInput], expected: list[object]) -> None:
    got = shape(thread(messages, newest_first=False))
    assert sorted(map(str, got)) == sorted(map(str, expected))


def test_roots_sorted_by_newest_message() -> None:
    msgs = [
        m("old-root", subject="x", minute=0),
        m("new-reply", refs=("<old-root>",), subject="Re: x", minute=50),
        m("middle", subject="y", minute=20),
        ThreadInput(key="undated", message_id="<u>", subject="z"),
    ]
    assert [n.message.key for n in thread(msgs)] == ["old-root", "middle", "undated"]  # type: ignore[union-attr]
    assert [n.message.key for n in thread(msgs, newest_first=False)] == [  # type: ignore[union-attr]
        "undated",
        "middle",
        "old-root",
    ]


def test_children_chronological() -> None:
    msgs = [
        m("r", minute=0),
        m("late", refs=("<r>",), minute=9),
        m("early", refs=("<r>",), minute=1),
    ]
    (root,) = thread(msgs)
    assert [c.message.key for c in root.children] == ["early", "late"]  # type: ignore[union-attr]


def test_walk_and_dummy_ids() -> None:
    (root,) = thread([m("b", refs=("<x@y>",), minute=1), m("c", refs=("<x@y>",), minute=2)])
    assert root.is_dummy and root.message_id == "<x@y>"
    assert [(d, n.message.key if n.message else None) for d, n in root.walk()] == [
        (0, None),
        (1, "b"),
        (1, "c"),
    ]


def test_deep_chain_is_fast_and_loop_free() -> None:
    n = 3000
    msgs = [m("0")] + [
        m(str(i), irt=f"<{i - 1}>", refs=("<0>", f"<{i - 1}>"), minute=i) for i in range(1, n)
    ]
    t0 = time.perf_counter()
    (root,) = thread(msgs)
    assert time.perf_counter() - t0 < 5
    assert max(d for d, _ in root.walk()) == n - 1


def test_many_messages() -> None:
    msgs = []
    for t in range(2000):
        msgs.append(m(f"t{t}", subject=f"topic {t}", minute=t))
        for r in range(5):
            msgs.append(m(f"t{t}r{r}", refs=(f"<t{t}>",), subject=f"Re: topic {t}", minute=t + r))
    t0 = time.perf_counter()
    roots = thread(msgs)
    assert time.perf_counter() - t0 < 5
    assert len(roots) == 2000
    assert all(len(r.children) == 5 for r in roots)


# --- properties ---------------------------------------------------------------------------------

ids = st.sampled_from([f"<{c}>" for c in "abcdefgh"] + [""])
inputs = st.lists(
    st.builds(
        ThreadInput,
        key=st.integers(0, 5),  # keys may repeat: identity is what must be preserved
        message_id=ids,
        in_reply_to=ids,
        references=st.lists(ids, max_size=5).map(tuple),
        subject=st.sampled_from(["", "a", "Re: a", "RE: Re: a", "b", "Re: b"]),
        date=st.one_of(st.none(), st.integers(0, 100).map(lambda i: T0 + timedelta(minutes=i))),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(inputs, st.booleans())
def test_every_input_exactly_once_and_no_loops(msgs: list[ThreadInput], by_subject: bool) -> None:
    roots = thread(msgs, group_by_subject=by_subject)
    seen: list[int] = []
    visited: set[int] = set()
    for root in roots:
        for _, node in root.walk():
            assert id(node) not in visited  # a node reached twice would mean a loop or a DAG
            visited.add(id(node))
            if node.message is None:
                assert node.children  # no empty dummies
            else:
                seen.append(id(node.message))
    assert sorted(seen) == sorted(id(x) for x in msgs)


# --- thread_key -------------------------------------------------------------------------------

KEY_CASES = [
    (("<m>", "", ()), "<m>"),
    (("<m>", "<p>", ()), "<p>"),
    (("<m>", "<p>", ("<root>", "<p>")), "<root>"),
    (("<m>", "junk <p> junk", ()), "<p>"),
    (("<m>", "", "<root> <p>"), "<root>"),
    (("<m>", "", ("", "<x>")), "<x>"),
    (("", "", ()), ""),
]


@pytest.mark.parametrize(("args", "key"), KEY_CASES)
def test_thread_key_table(args: tuple[str, str, tuple[str, ...] | str], key: str) -> None:
    assert thread_key(*args) == key


def test_thread_key_accepts_an_envelope() -> None:
    env = Envelope(message_id="<m>", in_reply_to="<p>", references=("<root>", "<p>"))
    assert thread_key(env) == "<root>"


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Hello", "hello", False),
        ("Re: Hello", "hello", True),
        ("RE: re:  Hello  world", "hello world", True),
        ("Aw: Sv: Antw: x", "x", True),
        ("Re[2]: x", "x", True),
        ("Fwd: x", "fwd: x", False),
        ("", "", False),
    ],
)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)
