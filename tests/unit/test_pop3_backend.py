"""POP3 backend, pure parts: the bounded reader, dot-stuffing, listings, keys, auth choice."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.backends import pop3
from tuimail.backends.pop3 import (
    Capabilities,
    LineTooLong,
    ReplyTooLarge,
    _Reader,
    arrival_time,
    choose_auth,
    fingerprint,
    header_block,
    parse_capa,
    parse_listing,
    parse_sizes,
    stuff,
)

# ----------------------------------------------------------------------------- the reader


class Feed:
    """A _Reader over one end of a socket pair; the other end is fed in given chunks."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.ours.settimeout(5)
        self.thread = threading.Thread(target=self._send, args=(list(chunks),), daemon=True)
        self.thread.start()
        self.reader = _Reader(self.ours)

    def _send(self, chunks: list[bytes]) -> None:
        try:
            for chunk in chunks:
                self.theirs.sendall(chunk)
        except OSError:
            pass  # the reader gave up early: fine
        finally:
            self.theirs.close()

    def close(self) -> None:
        self.ours.close()
        self.thread.join(5)


@pytest.fixture
def feed() -> Iterator[type[Feed]]:
    made: list[Feed] = []

    class Tracked(Feed):
        def __init__(self, chunks: Sequence[bytes]) -> None:
            super().__init__(chunks)
            made.append(self)

    yield Tracked
    for f in made:
        f.close()


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return [p for p in pieces if p]


line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
dotty_line = st.one_of(line_text, line_text.map(lambda b: b"." + b), st.just(b"."), st.just(b".."))
message = st.lists(dotty_line, max_size=12).map(lambda lines: b"".join(x + b"\r\n" for x in lines))


@settings(max_examples=150, deadline=None)
@given(messages=st.lists(message, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 10_000)))
def test_multiline_replies_come_back_exactly_whatever_the_packet_boundaries(
    messages: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(b"+OK here it is\r\n" + stuff(m) for m in messages) + b"+OK bye\r\n"
    f = Feed(split(wire, cuts))
    try:
        for m in messages:
            assert f.reader.readline() == b"+OK here it is\r\n"
            assert f.reader.read_multiline(1 << 20) == m
        assert f.reader.readline() == b"+OK bye\r\n"
    finally:
        f.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b".\r\n", b""),  # empty message: the terminator is the first line
        (b"..\r\n.\r\n", b".\r\n"),
        (b"...x\r\n.\r\n", b"..x\r\n"),
        (b"a\r\n..\r\n..b\r\n.\r\n", b"a\r\n.\r\n.b\r\n"),
        (b"a\n.\n", b"a\n"),  # a server with bare LF line ends
        (b"a\r\n.x\r\n.\r\n", b"a\r\n.x\r\n"),  # an unstuffed dot line is not the end
    ],
)
def test_dot_unstuffing_and_terminators(feed: type[Feed], body: bytes, expected: bytes) -> None:
    f = feed([b"+OK\r\n" + body + b"+OK next\r\n"])
    f.reader.readline()
    assert f.reader.read_multiline(1000) == expected
    assert f.reader.readline() == b"+OK next\r\n"


def test_terminator_split_across_packets(feed: type[Feed]) -> None:
    f = feed([b"+OK\r\nabc\r\n", b".", b"\r", b"\n", b"+OK\r\n"])
    f.reader.readline()
    assert f.reader.read_multiline(1000) == b"abc\r\n"
    assert f.reader.readline() == b"+OK\r\n"


def test_a_reply_that_never_ends_is_cut_at_the_limit(feed: type[Feed]) -> None:
    f = feed([b"+OK\r\n"] + [b"x" * 1000 + b"\r\n"] * 200)
    f.reader.readline()
    with pytest.raises(ReplyTooLarge) as info:
        f.reader.read_multiline(10_000)
    assert not info.value.synced  # the rest is unread: the caller must drop the connection


def test_a_complete_reply_over_the_limit_keeps_the_stream_in_step(feed: type[Feed]) -> None:
    f = feed([b"+OK\r\n" + b"y" * 1020 + b"\r\n.\r\n+OK after\r\n"])
    f.reader.readline()
    with pytest.raises(ReplyTooLarge) as info:
        f.reader.read_multiline(1000)
    assert info.value.synced
    assert f.reader.readline() == b"+OK after\r\n"


def test_an_over_long_line_is_skipped_and_the_next_one_read(feed: type[Feed]) -> None:
    f = feed([b"1 " + b"z" * 5000 + b"\r\n2 ok\r\n"])
    with pytest.raises(LineTooLong) as info:
        f.reader.readline(100)
    assert info.value.synced and info.value.prefix.startswith(b"1 zzz")
    assert f.reader.readline(100) == b"2 ok\r\n"


def test_a_line_without_end_gives_the_stream_up(feed: type[Feed]) -> None:
    f = feed([b"q" * (pop3.MAX_DRAIN + 300_000)])
    with pytest.raises(LineTooLong) as info:
        f.reader.readline(100)
    assert not info.value.synced


def test_eof_is_an_error_not_an_empty_line(feed: type[Feed]) -> None:
    f = feed([b"+OK\r\npartial"])
    f.reader.readline()
    with pytest.raises(EOFError):
        f.reader.read_multiline(1000)


def test_discard_drops_what_was_buffered(feed: type[Feed]) -> None:
    f = feed([b"+OK begin TLS\r\n+OK injected\r\n"])
    # Wait until both lines are buffered: read the first, the second came in the same recv.
    assert f.reader.readline() == b"+OK begin TLS\r\n"
    assert f.reader.discard() == len(b"+OK injected\r\n")


def test_buffer_is_compacted_on_long_runs(feed: type[Feed]) -> None:
    one = b"+OK\r\n" + stuff(b"m" * 70 + b"\r\n") * 1
    f = feed([one * 3000])
    for _ in range(3000):
        f.reader.readline()
        f.reader.read_multiline(1000)
    assert len(f.reader._buf) < 300_000


# ----------------------------------------------------------------------------- stuffing


@given(message)
def test_stuff_never_lets_a_line_be_a_lone_dot(m: bytes) -> None:
    wire = stuff(m)
    lines = wire.split(b"\r\n")
    assert lines[-2:] == [b".", b""]
    assert b"." not in lines[:-2]


def test_stuff_terminates_an_unterminated_last_line() -> None:
    assert stuff(b"abc") == b"abc\r\n.\r\n"
    assert stuff(b"") == b".\r\n"


# ----------------------------------------------------------------------------- listings


def test_parse_capa() -> None:
    caps = parse_capa([b"TOP", b"UIDL", b"SASL PLAIN LOGIN", b"pipelining", b"STLS", b""])
    assert caps.has("stls") and caps.pipelining and caps.has("UIDL")
    assert caps.sasl == {"PLAIN", "LOGIN"}
    assert not Capabilities(known=False).has("STLS")


def test_parse_listing_keeps_good_entries_and_reports_bad_ones() -> None:
    listing = parse_listing(
        [b"1 000001a", b"2 abc\xff\x1b", b"x 3", b"0 zero", b"3", b"4 dup extra", b""]
    )
    assert listing.entries == {1: "000001a", 2: "abc\\xff\\x1b", 4: "dup"}
    assert parse_listing([b"1 a\\b"]).entries == {1: "a\\x5cb"}
    assert len(listing.bad) == 3
    assert all("\x1b" not in b for b in listing.bad)


def test_parse_sizes_marks_unreadable_sizes_unknown() -> None:
    assert parse_sizes(parse_listing([b"1 120", b"2 big"])) == {1: 120, 2: -1}


# ----------------------------------------------------------------------------- keys


HEAD = (
    b"Received: from mx.example.org by pop.example.org; Tue, 2 Jan 2024 10:00:00 +0100\r\n"
    b"Received: from elsewhere; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"From: A <a@example.org>\r\n"
    b"Subject: hello\r\n  folded\r\n"
    b"Date: Tue, 2 Jan 2024 09:59:00 +0100\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
)


def test_header_block() -> None:
    assert header_block(HEAD + b"body\r\n\r\nmore") == HEAD[:-2]
    assert header_block(b"\r\nbody only") == b""
    assert header_block(b"A: b\nC: d\n\nbody") == b"A: b\nC: d\n"
    assert header_block(b"no body at all") == b"no body at all"


def test_fingerprint_is_stable_and_ignores_what_servers_rewrite() -> None:
    key = fingerprint(HEAD, 1234)
    assert key.startswith("fp ") and " " in key  # a real UIDL never has a space
    # mbox servers add Status: after RETR, which also changes the LIST size.
    rewritten = HEAD[:-2] + b"Status: RO\r\n\r\n"
    assert fingerprint(rewritten, 1246) == key
    # Folding and CRLF vs LF do not matter.
    assert fingerprint(HEAD.replace(b"\r\n", b"\n"), 1234) == key


def test_fingerprint_tells_two_deliveries_apart() -> None:
    other = HEAD.replace(b"10:00:00 +0100", b"10:00:05 +0100", 1)
    assert fingerprint(other, 1234) != fingerprint(HEAD, 1234)


def test_fingerprint_without_identifying_headers_uses_the_whole_block() -> None:
    a = fingerprint(b"X-A: 1\r\n\r\n", 10)
    assert a != fingerprint(b"X-A: 2\r\n\r\n", 10)
    assert a != fingerprint(b"X-A: 1\r\n\r\n", 11)


@given(st.binary(max_size=300), st.integers(-1, 10**9))
def test_fingerprint_never_raises(block: bytes, size: int) -> None:
    assert fingerprint(block, size).startswith("fp ")
    arrival_time(block)


def test_arrival_time_is_the_topmost_received() -> None:
    assert arrival_time(HEAD) == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    assert arrival_time(b"Received: no date here\r\n\r\n") is None
    assert arrival_time(b"Received: x; not a date\r\n\r\n") is None
    assert arrival_time(b"From: a\r\n\r\n") is None


# ----------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("configured", "sasl", "expected"),
    [
        ("auto", "PLAIN LOGIN", "PLAIN"),
        ("auto", "LOGIN", "USER"),
        ("auto", None, "USER"),
        ("plain", None, "PLAIN"),
        ("login", "PLAIN", "USER"),
        ("xoauth2", "PLAIN", "XOAUTH2"),
        ("oauthbearer", None, "OAUTHBEARER"),
    ],
)
def test_choose_auth(configured: str, sasl: str | None, expected: str) -> None:
    lines = [b"USER"] + ([b"SASL " + sasl.encode()] if sasl else [])
    assert choose_auth(configured, parse_capa(lines)) == expected


def test_sasl_responses() -> None:
    assert base64.b64decode(pop3.auth_plain_response("u", "p\u00e9")) == b"\0u\0p\xc3\xa9"
    assert base64.b64decode(pop3.xoauth2_response("u", "t")) == b"user=u\x01auth=Bearer t\x01\x01"
    decoded = base64.b64decode(pop3.oauthbearer_response("u", "t", "h", 995))
    assert decoded == b"n,a=u,\x01host=h\x01port=995\x01auth=Bearer t\x01\x01"


def test_clean_makes_server_text_safe() -> None:
    text = pop3.clean(b"-ERR \x1b[31mred\x1b[0m\r\n" + b"x" * 500)
    assert "\x1b" not in text and "\r" not in text and len(text) <= 200
