"""Column conversions (pure): flags bits, address packing, dates, thread ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from tuimail.models import Address, Envelope, Flags
from tuimail.store.rows import (
    envelope_extra,
    envelope_from_row,
    epoch,
    flags_from_columns,
    flags_to_columns,
    offset_minutes,
    thread_id,
)

addresses = st.tuples(st.text(max_size=20), st.text(max_size=20)).map(lambda p: Address(*p))
address_lists = st.lists(addresses, max_size=3).map(tuple)
keywords = st.frozensets(st.text(alphabet="$abcXYZ_-", min_size=1, max_size=8), max_size=3)


@given(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans(), keywords)
def test_flags_round_trip(
    seen: bool, answered: bool, flagged: bool, deleted: bool, draft: bool, kw: frozenset[str]
) -> None:
    flags = Flags(seen, answered, flagged, deleted, draft, kw)
    assert flags_from_columns(*flags_to_columns(flags)) == flags


def test_seen_is_bit_zero() -> None:
    assert flags_to_columns(Flags(seen=True))[0] == 1  # the unread counters rely on it


@given(address_lists, address_lists, address_lists, address_lists)
def test_address_lists_round_trip(
    from_: tuple[Address, ...],
    to: tuple[Address, ...],
    cc: tuple[Address, ...],
    reply_to: tuple[Address, ...],
) -> None:
    env = Envelope(from_=from_, to=to, cc=cc, reply_to=reply_to, subject="s")
    first = from_[0] if from_ else Address("", "")
    back = envelope_from_row("", "", "", None, 0, first.name, first.addr, envelope_extra(env), "s")

    def clean(addrs: tuple[Address, ...]) -> tuple[Address, ...]:
        bad = str.maketrans({c: "\ufffd" for c in "\x1c\x1d\x1e\x1f"})
        return tuple(Address(a.name.translate(bad), a.addr.translate(bad)) for a in addrs)

    assert back.to == clean(to) and back.cc == clean(cc) and back.reply_to == clean(reply_to)
    if len(from_) > 1:
        assert back.from_ == clean(from_)


def test_dates_keep_offset_and_instant() -> None:
    d = datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=-7)))
    env = envelope_from_row("", "", "", epoch(d), offset_minutes(d), "", "", "", "")
    assert env.date == d and env.date is not None and env.date.utcoffset() == d.utcoffset()
    assert epoch(datetime(2024, 1, 1)) == epoch(datetime(2024, 1, 1, tzinfo=UTC))  # naive = UTC


def test_thread_id_is_stable_and_positive() -> None:
    assert thread_id("<root@x>") == thread_id("<root@x>") != thread_id("<other@x>")
    assert 0 < thread_id("<root@x>") < 2**63
