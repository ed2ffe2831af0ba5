"""The bounded IMAP response reader and the fast FETCH parser (tuimail.backends.imap_parse)."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.backends import imap_parse as p
from tuimail.errors import NetworkError, ProtocolError
from tuimail.models import Flags

HEADER = b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nFrom: a@b.example\r\nSubject: hi\r\n\r\n"


def reader(data: bytes, max_literal: int = 1 << 20, **kw: int) -> p.ResponseReader:
    return p.ResponseReader(io.BufferedReader(io.BytesIO(data)), max_literal, **kw)  # type: ignore[arg-type]


def fetch_line(seq: int, uid: int, flags: bytes = rb"\Seen", body: bytes = HEADER) -> bytes:
    return (
        b'* %d FETCH (UID %d FLAGS (%s) RFC822.SIZE 7000 INTERNALDATE "07-Jul-2024 10:00:00 +0200" '
        b"BODY[HEADER.FIELDS (DATE FROM SUBJECT)] {%d}\r\n%s)\r\n"
        % (seq, uid, flags, len(body), body)
    )


# ----------------------------------------------------------------------------- reader


def test_reader_joins_literals_and_lines() -> None:
    data = fetch_line(1, 10) + b"A1 OK done\r\n"
    r = reader(data)
    first = r.read_response()
    assert first == fetch_line(1, 10)
    assert r.read_response() == b"A1 OK done\r\n"


def test_reader_two_literals_in_one_response() -> None:
    data = b"* 1 FETCH (UID 3 BODY[HEADER] {2}\r\nab BODY[] {3}\r\nxyz)\r\n"
    assert reader(data).read_response() == data


def test_reader_eof_is_network_error() -> None:
    with pytest.raises(NetworkError):
        reader(b"").read_response()
    with pytest.raises(NetworkError):
        reader(b"* 1 FETCH (UID 1 BODY[] {10}\r\nabc").read_response()
    with pytest.raises(NetworkError):
        reader(b"* 1 EXISTS").read_response()  # no CRLF: cut mid-line


def test_reader_huge_literal_claim_is_refused_without_reading() -> None:
    class Exploding(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            assert size is not None and size <= 1 << 20, "tried to allocate the claimed literal"
            return super().read(size)

    data = b"* 1 FETCH (UID 1 BODY[] {2147483648}\r\n" + b"x" * 100
    r = p.ResponseReader(Exploding(data), 1 << 20, hard_literal=64 << 20)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="2147483648"):
        r.read_response()


def test_reader_skips_literal_above_soft_limit() -> None:
    big = b"y" * 5000
    data = b"* 1 FETCH (UID 7 BODY[] {5000}\r\n" + big + b")\r\n" + b"A1 OK\r\n"
    r = reader(data, max_literal=1000, hard_literal=10_000)
    resp = r.read_response()
    assert len(resp) < 100
    f = p.parse_fetch(resp)
    assert f is not None and f.uid == 7 and f.body == p.TooLarge(5000)
    assert r.read_response() == b"A1 OK\r\n"


def test_reader_line_too_long() -> None:
    with pytest.raises(ProtocolError):
        reader(b"* SEARCH " + b"1 " * 1000 + b"\r\n", max_line=100).read_response()


def test_reader_bounds_total_response() -> None:
    lit = b"z" * 900
    many = (
        b"* 1 FETCH (UID 1"
        + b"".join(b" X[%d] {900}\r\n%s" % (i, lit) for i in range(10))
        + b")\r\n"
    )
    with pytest.raises(ProtocolError):
        reader(many, max_literal=1000, max_line=100).read_response()


# ----------------------------------------------------------------------------- FETCH


def test_fetch_fast_shape() -> None:
    f = p.parse_fetch(fetch_line(3, 42, rb"\Seen \Flagged $Label1"))
    assert f is not None
    assert (f.seq, f.uid, f.size) == (3, 42, 7000)
    assert f.flags == Flags(seen=True, flagged=True, keywords=frozenset({"$Label1"}))
    assert f.internaldate == datetime(2024, 7, 7, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    assert f.header == HEADER and f.body is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # flags-only shapes (QRESYNC SELECT, CHANGEDSINCE)
        (b"* 1 FETCH (UID 5 FLAGS (\\Seen))\r\n", {"uid": 5, "modseq": None}),
        (b"* 1 FETCH (UID 5 FLAGS () MODSEQ (99))\r\n", {"uid": 5, "modseq": 99}),
        (b"* 1 FETCH (UID 5 MODSEQ (99) FLAGS (\\Seen))\r\n", {"uid": 5, "modseq": 99}),
        (b"* 1 FETCH (FLAGS (\\Seen) UID 5 MODSEQ (99))\r\n", {"uid": 5, "modseq": 99}),
        # no UID: an unsolicited update in sequence numbers
        (b"* 9 FETCH (FLAGS (\\Deleted))\r\n", {"uid": None, "seq": 9}),
        # items in another order, quoted body, NIL
        (b'* 1 FETCH (BODY[] "abc" UID 8)\r\n', {"uid": 8, "body": b"abc"}),
        (b"* 1 FETCH (BODY[] NIL UID 8)\r\n", {"uid": 8, "body": None}),
        (b'* 1 FETCH (UID 8 BODY[] "a\\"b\\\\c")\r\n', {"body": b'a"b\\c'}),
        # unrequested items are skipped
        (
            b'* 1 FETCH (X-GM-LABELS ("\\\\Inbox" foo) UID 4 ENVELOPE ("d" "s" (("n" NIL "a" "b")) '
            b'NIL NIL NIL NIL NIL NIL "<m@x>") '
            b'BODYSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3 1))\r\n',
            {"uid": 4},
        ),
        # a partial body is never requested: ignored
        (b"* 1 FETCH (UID 4 BODY[]<0> {3}\r\nabc)\r\n", {"uid": 4, "body": None}),
        (b"* 1 FETCH (UID 4 BODY[HEADER] {3}\r\nabc)\r\n", {"uid": 4, "header": b"abc"}),
        (b"* 1 FETCH (UID 4 BINARY[] {3}\r\nabc)\r\n", {"uid": 4, "body": b"abc"}),
        (b"* 1 fetch (uid 4 flags (\\seen))\r\n", {"uid": 4}),
        (b"* 1 FETCH (UID 4 INTERNALDATE NIL)\r\n", {"uid": 4, "internaldate": None}),
    ],
)
def test_fetch_shapes(data: bytes, expected: dict[str, object]) -> None:
    f = p.parse_fetch(data)
    assert f is not None
    for key, value in expected.items():
        assert getattr(f, key) == value, key


@pytest.mark.parametrize(
    "data",
    [
        b"* 1 FETCH (UID)\r\n",
        b"* 1 FETCH (UID 5\r\n",
        b"* 1 FETCH (UID 5 FLAGS (\\Seen)\r\n",
        b"* 1 FETCH (BODY[] {10}\r\nabc)\r\n",
        b"* 1 FETCH (UID 5 X " + b"(" * 100 + b")" * 100 + b")\r\n",
        b'* 1 FETCH (UID 5 BODY[] "unterminated)\r\n',
        b"* 1 FETCH (UID 5 RFC822.SIZE 123456789012345678901234)\r\n",
    ],
)
def test_fetch_malformed_is_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        p.parse_fetch(data)


def test_not_a_fetch() -> None:
    assert p.parse_fetch(b"* 5 EXISTS\r\n") is None
    assert p.parse_fetch(b"A1 OK FETCH done\r\n") is None


@st.composite
def fetch_items(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    uid = draw(st.integers(1, 2**32 - 1))
    keywords = draw(
        st.lists(st.from_regex(r"\$?[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True), max_size=3)
    )
    system = draw(
        st.lists(st.sampled_from([r"\Seen", r"\Answered", r"\Flagged", r"\Draft"]), unique=True)
    )
    flags = " ".join(system + keywords).encode()
    body = draw(st.binary(max_size=300))
    size = draw(st.integers(0, 10**9))
    when = draw(st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1))).replace(microsecond=0)
    offset = draw(st.integers(-14 * 60, 14 * 60))
    when = when.replace(tzinfo=timezone(timedelta(minutes=offset)))
    items = [
        b"UID %d" % uid,
        b"FLAGS (%s)" % flags,
        b"RFC822.SIZE %d" % size,
        b"INTERNALDATE " + p.format_internaldate(when),
        b"BODY[] {%d}\r\n%s" % (len(body), body),
        b"MODSEQ (%d)" % draw(st.integers(1, 2**63)),
    ]
    if draw(st.booleans()):
        items.append(b'ENVELOPE (NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL)')
    order = draw(st.permutations(items))
    data = b"* %d FETCH (" % draw(st.integers(1, 10**6)) + b" ".join(order) + b")\r\n"
    expected = {
        "uid": uid,
        "body": body,
        "size": size,
        "internaldate": when,
        "flags": Flags.from_imap(system + keywords),
    }
    return data, expected


@given(fetch_items())
@settings(max_examples=300)
def test_fetch_roundtrip_any_order(case: tuple[bytes, dict[str, object]]) -> None:
    data, expected = case
    f = p.parse_fetch(reader(data).read_response())
    assert f is not None
    for key, value in expected.items():
        assert getattr(f, key) == value, key


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_fetch_never_crashes_on_garbage(tail: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        p.parse_fetch(b"* 1 FETCH (" + tail)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_reader_never_crashes_on_garbage(data: bytes) -> None:
    r = reader(data, max_literal=100, hard_literal=200, max_line=100)
    try:
        while True:
            assert len(r.read_response()) <= r.max_response
    except (ProtocolError, NetworkError):
        pass


# ----------------------------------------------------------------------------- other responses


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"17-Jul-1996 02:44:25 -0700", datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)),
        (b" 7-Jul-1996 02:44:25 +0000", datetime(1996, 7, 7, 2, 44, 25, tzinfo=UTC)),
        (b"7-jul-1996 02:44:25 +0100", datetime(1996, 7, 7, 1, 44, 25, tzinfo=UTC)),
        (b"31-Feb-1996 02:44:25 +0000", None),
        (b"17-Foo-1996 02:44:25 +0000", None),
        (b"17-Jul-1996 02:44:25 +9999", None),
        (b"garbage", None),
    ],
)
def test_internaldate(raw: bytes, expected: datetime | None) -> None:
    assert p.parse_internaldate(raw) == expected


def test_internaldate_roundtrip() -> None:
    when = datetime(2024, 3, 5, 10, 0, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    text = p.format_internaldate(when)
    assert text == b'"05-Mar-2024 10:00:00 -0530"'
    assert p.parse_internaldate(text.strip(b'"')) == when


@pytest.mark.parametrize(
    ("line", "tag", "status", "code", "args", "text"),
    [
        (b"A1 OK done\r\n", b"A1", b"OK", b"", b"", b"done"),
        (b"A1 ok [COPYUID 5 1:3 7:9] Moved\r\n", b"A1", b"OK", b"COPYUID", b"5 1:3 7:9", b"Moved"),
        (b"T9 NO [MODIFIED 7,9] Conflict\r\n", b"T9", b"NO", b"MODIFIED", b"7,9", b"Conflict"),
        (b"T9 BAD\r\n", b"T9", b"BAD", b"", b"", b""),
        (
            b"T9 OK [APPENDUID 38505 3955] APPEND completed\r\n",
            b"T9",
            b"OK",
            b"APPENDUID",
            b"38505 3955",
            b"APPEND completed",
        ),
    ],
)
def test_tagged(
    line: bytes, tag: bytes, status: bytes, code: bytes, args: bytes, text: bytes
) -> None:
    t = p.parse_tagged(line)
    assert t == p.Tagged(tag, status, code, args, text)


def test_untagged_kinds() -> None:
    assert p.parse_untagged(b"* 5 EXISTS\r\n") == p.Untagged(b"EXISTS", 5, b"", b"", b"")
    assert p.parse_untagged(b"* 3 expunge\r\n") == p.Untagged(b"EXPUNGE", 3, b"", b"", b"")
    u = p.parse_untagged(b"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n")
    assert u is not None and (u.kind, u.code, u.code_args) == (
        b"OK",
        b"HIGHESTMODSEQ",
        b"715194045007",
    )
    u = p.parse_untagged(b"* OK [NOMODSEQ] Sorry\r\n")
    assert u is not None and u.code == b"NOMODSEQ"
    u = p.parse_untagged(b"* BYE [ALERT] going down\r\n")
    assert u is not None and (u.kind, u.code, u.rest) == (b"BYE", b"ALERT", b"going down")
    u = p.parse_untagged(b"* VANISHED (EARLIER) 300:310,405,411\r\n")
    assert u is not None and u.kind == b"VANISHED"
    assert p.parse_vanished(u.rest) == (True, [(300, 310), (405, 405), (411, 411)])
    assert p.parse_vanished(b"405") == (False, [(405, 405)])
    assert p.parse_untagged(b"A1 OK\r\n") is None


def test_search_and_esearch() -> None:
    assert p.parse_search(b"2 84 882") == [2, 84, 882]
    assert p.parse_search(b"") == []
    assert p.parse_search(b"2 5 (MODSEQ 917162500)") == [2, 5]
    assert p.parse_esearch(b'(TAG "A1") UID ALL 1:3,5 COUNT 4') == ([(1, 3), (5, 5)], 4)
    assert p.parse_esearch(b'(TAG "A1") UID') == ([], None)


# ----------------------------------------------------------------------------- UID sets


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        (b"1:5,7,9:8", [(1, 5), (7, 9)]),
        (b"3,2,1", [(1, 3)]),
        (b"", []),
        (b"1:4294967295", [(1, 4294967295)]),
    ],
)
def test_parse_uid_set(text: bytes, ranges: list[tuple[int, int]]) -> None:
    assert p.parse_uid_set(text) == ranges


@pytest.mark.parametrize("text", [b"1:*", b"0", b"a", b"1,,2", b"4294967296", b"1:99999999999"])
def test_parse_uid_set_rejects(text: bytes) -> None:
    with pytest.raises(ProtocolError):
        p.parse_uid_set(text)


@given(st.sets(st.integers(1, 5000), max_size=200))
def test_uid_set_roundtrip(uids: set[int]) -> None:
    text = p.format_uid_set(uids)
    ranges = p.parse_uid_set(text)
    assert {u for a, b in ranges for u in range(a, b + 1)} == uids
    for u in range(0, 5002):
        assert p.uid_in_ranges(u, ranges) == (u in uids)


def test_expand_uid_set_keeps_order_and_bounds() -> None:
    assert p.expand_uid_set(b"5,1:3", 10) == [5, 1, 2, 3]
    assert p.expand_uid_set(b"3:1", 10) == [3, 2, 1]
    assert p.expand_uid_set(b"1:4000000000", 10) is None
    assert p.expand_uid_set(b"x", 10) is None


@given(st.lists(st.integers(1, 10**9), unique=True, max_size=3000), st.integers(1, 500))
@settings(max_examples=100)
def test_chunk_uids(uids: list[int], max_count: int) -> None:
    uids.sort()
    chunks = list(p.chunk_uids(uids, max_count, max_bytes=400))
    assert [u for c in chunks for u in c] == uids
    for c in chunks:
        assert 1 <= len(c) <= max_count
        assert len(p.format_uid_set(c)) <= 430


# ----------------------------------------------------------------------------- commands


def test_quote_and_mailbox() -> None:
    assert p.quote(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert p.encode_mailbox("Entwürfe") == b'"Entw&APw-rfe"'
    assert p.encode_mailbox("a&b") == b'"a&-b"'
    for bad in ("a\r\nA2 DELETE INBOX", "x\x00", "\x7f"):
        with pytest.raises(ValueError):
            p.encode_mailbox(bad)


def test_flag_atoms() -> None:
    assert p.flag_atoms(["seen", "$Label1", "flagged", "bad kw", "x)y", "draft"]) == [
        b"\\Seen",
        b"$Label1",
        b"\\Flagged",
        b"\\Draft",
    ]


def test_read_value_lists() -> None:
    value, end = p.read_value(b'(\\HasNoChildren \\Sent) "/" "Sent"', 0)
    assert value == [b"\\HasNoChildren", b"\\Sent"] and end == 22
    value, _ = p.read_value(b'(1 NIL (a {3}\r\nxyz) "q")', 0)
    assert value == [1, None, [b"a", b"xyz"], b"q"]


# ----------------------------------------------------------------------------- buffer fast path


@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.binary(max_size=200), st.booleans(), st.booleans()),
        max_size=20,
    ),
    st.integers(0, 50),
)
@settings(max_examples=200)
def test_fetch_at_agrees_with_the_general_parser(
    items: list[tuple[int, bytes, bool, bool]], cut: int
) -> None:
    parts = []
    for uid, body, header, flags_only in items:
        if flags_only:
            parts.append(b"* 1 FETCH (UID %d FLAGS (\\Seen $X) MODSEQ (%d))\r\n" % (uid, uid + 1))
        else:
            parts.append(
                b'* 1 FETCH (UID %d FLAGS () RFC822.SIZE 9 INTERNALDATE "01-Jan-2024 10:00:00 '
                b'+0000" BODY[%s] {%d}\r\n%s)\r\n'
                % (uid, b"HEADER.FIELDS (DATE)" if header else b"", len(body), body)
            )
    data = b"".join(parts)
    data = data[: max(len(data) - cut, 0)]  # a buffer may end anywhere
    expected = []
    r = reader(data)
    with contextlib.suppress(NetworkError):
        while True:
            expected.append(p.parse_fetch(r.read_response()))
    got = []
    pos = 0
    while (found := p.fetch_at(bytearray(data), pos, 1 << 20)) is not None:
        got.append(found[0])
        pos = found[1]
    # the fast path takes every whole response (and nothing partial), in order
    assert got == expected[: len(got)]
    assert len(got) == len(expected)


def test_fetch_at_leaves_large_literals_to_the_bounded_reader() -> None:
    data = fetch_line(1, 5, body=b"x" * 100)
    assert p.fetch_at(data, 0, 1000) is not None
    assert p.fetch_at(data, 0, 99) is None
    assert p.fetch_at(b"* 1 FETCH (UID 5 ENVELOPE NIL)\r\n", 0, 99) is None


# ----------------------------------------------------------------------------- modified UTF-7


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("INBOX", b"INBOX"),
        ("Entwürfe", b"Entw&APw-rfe"),
        ("a&b", b"a&-b"),
        ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Gelöschte Elemente", b"Gel&APY-schte Elemente"),
        ("😀", b"&2D3eAA-"),
    ],
)
def test_modified_utf7_table(name: str, encoded: bytes) -> None:
    assert p.encode_utf7(name) == encoded
    assert p.decode_utf7(encoded) == name


@given(st.text(max_size=30))
def test_modified_utf7_roundtrip_and_agrees_with_imapclient(name: str) -> None:
    from imapclient import imap_utf7

    encoded = p.encode_utf7(name)
    assert p.decode_utf7(encoded) == name
    assert all(0x20 <= c <= 0x7E for c in encoded)
    assert encoded == imap_utf7.encode(name)


@pytest.mark.parametrize("raw", [b"&", b"&-x&ZZZ-", b"&!!-", b"caf\xc3\xa9", b"\xff&A"])
def test_modified_utf7_decode_never_raises(raw: bytes) -> None:
    assert isinstance(p.decode_utf7(raw), str)


def test_mailbox_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError):
        p.encode_mailbox("bad\udcff")
