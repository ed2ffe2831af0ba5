"""Pure formatting for the message list: column layout, dates, sizes, cell-exact fitting.

Kept free of Textual so it can be table- and property-tested; only `rich.cells` is used, for
terminal cell widths (wide CJK characters, combining marks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.cells import cell_len, set_cell_size

from tuimail.models import Address, Flags

# Fixed English month names: the list must not change with the locale (and tests stay stable).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def now() -> datetime:
    """The current local time; the list's dates are relative to it (tests pin it)."""
    return datetime.now().astimezone()


FLAGS_WIDTH = 4  # mark, status, flagged, attachment
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Columns:
    """Cell widths of the list's columns; 0 means the column is hidden."""

    flags: int
    date: int
    from_: int
    subject: int
    size: int

    @property
    def total(self) -> int:
        widths = [w for w in (self.flags, self.date, self.from_, self.subject, self.size) if w]
        return sum(widths) + max(len(widths) - 1, 0)  # one space between visible columns


def layout_columns(width: int) -> Columns:
    """Column widths for a list `width` cells wide.

    Size goes first on narrow terminals, then the date; 80 columns keep flags, a compact date,
    the sender and a subject of about 48 cells.
    """
    width = max(width, 0)
    flags = min(FLAGS_WIDTH, width)
    size = 5 if width >= 100 else 0
    date = 10 if width >= 120 else (6 if width >= 50 else 0)
    if width >= 160:
        from_ = 30
    elif width >= 40:
        from_ = max(12, min(24, width // 4))
    else:
        from_ = max(0, min(12, (width - flags - 1) // 3))
    used = flags + date + from_ + size + sum(1 for w in (date, from_, size) if w)
    subject = max(width - used - 1, 0)
    cols = Columns(flags=flags, date=date, from_=from_, subject=subject, size=size)
    if cols.total > width:  # tiny widths: give up columns right to left until it fits
        cols = Columns(flags=flags, date=0, from_=0, subject=max(width - flags - 1, 0), size=0)
        if cols.total > width:
            cols = Columns(flags=flags, date=0, from_=0, subject=0, size=0)
    return cols


def fit(text: str, width: int) -> str:
    """`text` cropped or padded to exactly `width` cells; cropping shows an ellipsis."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + ELLIPSIS


def fit_right(text: str, width: int) -> str:
    """Like `fit`, right-aligned (numbers)."""
    if width <= 0:
        return ""
    length = cell_len(text)
    if length >= width:
        return fit(text, width)
    return " " * (width - length) + text


def format_date(when: datetime | None, now: datetime, width: int) -> str:
    """A list date in the local time of `now`: time today, month/day this year, else the year.

    `width` is 10 (ISO date for old mail) or 6 (compact: `Mar'23`).
    """
    if when is None:
        return ""
    if when.tzinfo is not None and now.tzinfo is not None:
        when = when.astimezone(now.tzinfo)
    if when.date() == now.date():
        return f"{when.hour:02d}:{when.minute:02d}"
    month = _MONTHS[when.month - 1]
    # "This year" means the last ~11 months, so a December mail read in January keeps its day.
    age_days = (now.date() - when.date()).days
    if 0 <= age_days < 330 or (when.year == now.year and age_days >= 0):
        return f"{month} {when.day:02d}"
    if width >= 10:
        return f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    return f"{month}'{when.year % 100:02d}"


def format_size(size: int) -> str:
    """Bytes in at most 5 cells: `512B`, `12K`, `1.2M`, `34M`, `2.0G`."""
    size = max(size, 0)
    if size < 1000:
        return f"{size}B"
    for unit, scale in (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4)):
        value = size / scale
        if value < 9.95:
            return f"{value:.1f}{unit}"
        if value < 999.5:
            return f"{value:.0f}{unit}"
    return "huge"


def flag_cells(flags: Flags, has_attachments: bool, marked: bool) -> str:
    """The 4-cell flags column, mutt-like: `*` marked, N/r/D status, `!` flagged, `@` attached."""
    if flags.deleted:
        status = "D"
    elif not flags.seen:
        status = "N"
    elif flags.answered:
        status = "r"
    elif flags.draft:
        status = "d"
    else:
        status = " "
    return (
        ("*" if marked else " ")
        + status
        + ("!" if flags.flagged else " ")
        + ("@" if has_attachments else " ")
    )


def address_label(addresses: tuple[Address, ...]) -> str:
    """Who, in a list column: the first display name, else the address; `+N` for more."""
    if not addresses:
        return ""
    first = addresses[0]
    label = first.name.strip() or first.addr
    if len(addresses) > 1:
        label += f" +{len(addresses) - 1}"
    return label
