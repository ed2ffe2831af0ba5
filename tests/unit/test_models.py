"""Flags conversions between IMAP atoms, Maildir info letters and names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail.models import Address, Envelope, Flags, FolderRef, Frozen

system = st.booleans()
keywords = st.frozensets(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz$_", min_size=1, max_size=8), max_size=3
)
flags_strategy = st.builds(
    Flags,
    seen=system,
    answered=system,
    flagged=system,
    deleted=system,
    draft=system,
    keywords=keywords,
)


@given(flags_strategy)
def test_imap_roundtrip(flags: Flags) -> None:
    assert Flags.from_imap(flags.to_imap()) == flags


@given(flags_strategy)
def test_maildir_roundtrip_keeps_system_flags(flags: Flags) -> None:
    info = flags.maildir_info()
    assert info.startswith("2,")
    letters = info[2:]
    assert list(letters) == sorted(letters)  # the Maildir spec wants ASCII order
    back = Flags.from_maildir_info(letters)
    assert back == Flags(flags.seen, flags.answered, flags.flagged, flags.deleted, flags.draft)


@pytest.mark.parametrize(
    ("atoms", "expected"),
    [
        ([b"\\Seen", b"\\Recent"], Flags(seen=True)),
        (["\\SEEN", "\\answered"], Flags(seen=True, answered=True)),
        (["$Forwarded", "\\Flagged"], Flags(flagged=True, keywords=frozenset({"$Forwarded"}))),
        (["\\Unknown", ""], Flags()),
    ],
)
def test_from_imap_table(atoms: list[str | bytes], expected: Flags) -> None:
    assert Flags.from_imap(atoms) == expected


def test_with_changes_and_names() -> None:
    f = Flags(seen=True).with_changes(add=["flagged", "$Work"], remove=["seen"])
    assert f == Flags(flagged=True, keywords=frozenset({"$Work"}))
    assert f.names() == ["flagged", "$Work"]


def test_address_domain_and_str() -> None:
    a = Address("Ann", "ann@Example.COM")
    assert a.domain() == "example.com"
    assert str(a) == "Ann <ann@Example.COM>"
    assert str(Address("", "x@y")) == "x@y"


# ----------------------------------------------------------------------------- Frozen


def test_frozen_values_behave_like_frozen_dataclasses() -> None:
    import copy
    import pickle

    env = Envelope(message_id="<a@x>", subject="hi", from_=(Address("Ann", "a@x"),))
    same = Envelope(message_id="<a@x>", subject="hi", from_=(Address("Ann", "a@x"),))
    assert env == same and hash(env) == hash(same)
    assert env != Envelope(message_id="<a@x>", subject="other")
    assert env != ("<a@x>",)  # compared by type and fields, never with a plain tuple
    assert Address("Ann", "a@x") != FolderRef("Ann", "a@x")  # same values, another type
    assert repr(Address("Ann", "a@x")) == "Address(name='Ann', addr='a@x')"
    assert Envelope.__match_args__[:3] == ("message_id", "in_reply_to", "references")
    with pytest.raises(AttributeError):
        env.subject = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del env.subject
    assert pickle.loads(pickle.dumps(env)) == env  # the POP3 helper pickles these
    assert copy.deepcopy(env) == env
    match Address("Ann", "a@x"):
        case Address(name, addr):
            assert (name, addr) == ("Ann", "a@x")


def test_frozen_subclass_fields_follow_the_base_and_mistakes_are_refused() -> None:
    from tuimail.config import IncomingConfig, ServerConfig
    from tuimail.models import TLSMode

    assert IncomingConfig.__match_args__[: len(ServerConfig.__match_args__)] == (
        ServerConfig.__match_args__
    )
    incoming = IncomingConfig("h", 993, TLSMode.IMPLICIT, "u", recent_days=7)
    assert incoming.host == "h" and incoming.recent_days == 7
    assert incoming != ServerConfig("h", 993, TLSMode.IMPLICIT, "u")

    with pytest.raises(TypeError, match="__slots__"):

        class MissingSlot(Frozen):
            __slots__ = ("a",)
            a: int
            b: int

            def __init__(self, a: int, b: int) -> None: ...

    with pytest.raises(TypeError, match="__init__"):

        class NoInit(Frozen):
            __slots__ = ("a",)
            a: int
