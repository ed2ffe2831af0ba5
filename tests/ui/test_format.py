"""Pure list formatting: column layout, dates, sizes and cell-exact fitting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from tuimail.models import Address, Flags
from tuimail.ui.format import (
    address_label,
    fit,
    fit_right,
    flag_cells,
    format_date,
    format_size,
    layout_columns,
)

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=400))
def test_columns_never_exceed_the_width(width: int) -> None:
    cols = layout_columns(width)
    assert cols.total <= width
    assert min(cols.flags, cols.date, cols.from_, cols.subject, cols.size) >= 0


@pytest.mark.parametrize(
    ("width", "date", "size", "min_subject"),
    [(80, 6, 0, 40), (100, 6, 5, 50), (120, 10, 5, 60), (200, 10, 5, 140), (45, 0, 0, 20)],
)
def test_columns_by_width(width: int, date: int, size: int, min_subject: int) -> None:
    cols = layout_columns(width)
    assert (cols.date, cols.size) == (date, size)
    assert cols.subject >= min_subject
    assert cols.total == width  # the subject takes what is left, exactly


@given(st.text(), st.integers(min_value=0, max_value=60))
def test_fit_is_cell_exact(text: str, width: int) -> None:
    out = fit(text, width)
    assert cell_len(out) == width
    right = fit_right(text, width)
    assert cell_len(right) == width


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("hello", 8, "hello   "),
        ("hello world", 8, "hello w…"),
        ("日本語のメール", 7, "日本語…"),  # wide characters: 3x2 cells + ellipsis
        ("abc", 0, ""),
        ("12K", 5, "12K  "),
    ],
)
def test_fit_table(text: str, width: int, expected: str) -> None:
    assert fit(text, width) == expected


@pytest.mark.parametrize(
    ("when", "width", "expected"),
    [
        (NOW - timedelta(hours=2), 6, "10:00"),
        (datetime(2024, 3, 5, 9, 0, tzinfo=UTC), 6, "Mar 05"),
        (datetime(2023, 12, 24, 9, 0, tzinfo=UTC), 6, "Dec 24"),  # recent, previous year
        (datetime(2022, 3, 5, 9, 0, tzinfo=UTC), 6, "Mar'22"),
        (datetime(2022, 3, 5, 9, 0, tzinfo=UTC), 10, "2022-03-05"),
        (None, 6, ""),
    ],
)
def test_format_date(when: datetime | None, width: int, expected: str) -> None:
    assert format_date(when, NOW, width) == expected


def test_format_date_uses_local_time_of_now() -> None:
    tz = timezone(timedelta(hours=-5))
    when = datetime(2024, 6, 15, 3, 30, tzinfo=UTC)  # 22:30 the day before in UTC-5
    assert format_date(when, NOW.astimezone(tz), 6) == "Jun 14"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1.0K"),
        (12_345, "12K"),
        (1_300_000, "1.2M"),
        (35_000_000, "33M"),
        (2 * 1024**3, "2.0G"),
    ],
)
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


@given(st.integers(min_value=0, max_value=10**15))
def test_size_fits_five_cells(size: int) -> None:
    assert len(format_size(size)) <= 5


@pytest.mark.parametrize(
    ("flags", "attach", "marked", "expected"),
    [
        (Flags(), False, False, " N  "),
        (Flags(seen=True, flagged=True), True, True, "* !@"),
        (Flags(seen=True, answered=True), False, False, " r  "),
        (Flags(seen=True, deleted=True), False, False, " D  "),
    ],
)
def test_flag_cells(flags: Flags, attach: bool, marked: bool, expected: str) -> None:
    assert flag_cells(flags, attach, marked) == expected


def test_address_label() -> None:
    assert address_label(()) == ""
    assert address_label((Address("", "a@x.org"),)) == "a@x.org"
    assert address_label((Address(" Ann ", "a@x.org"), Address("", "b@x.org"))) == "Ann +1"
