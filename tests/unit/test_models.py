"""Flags conversions between IMAP atoms, Maildir info letters and names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail.models import Address, Flags

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
