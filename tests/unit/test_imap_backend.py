"""Pure parts of tuimail.backends.imap: folder roles, LIST lines, login choice, the reader."""

from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.backends import imap
from tuimail.backends.imap import ListEntry, SocketReader, choose_mechanism, folder_infos
from tuimail.errors import AuthError, ProtocolError
from tuimail.models import FolderRole


def entry(name: str, *attrs: str, delim: str = "/") -> ListEntry:
    return ListEntry(name, delim, frozenset(a.lower() for a in attrs))


def roles(entries: list[ListEntry]) -> dict[str, FolderRole]:
    return {f.name: f.role for f in folder_infos(entries, None) if f.role is not FolderRole.NONE}


def test_special_use_attributes_win_over_names() -> None:
    got = roles(
        [
            entry("INBOX"),
            entry("Sent"),  # a name match, but another folder carries \Sent
            entry("Gesendet", "\\Sent"),
            entry("Papierkorb", "\\Trash"),
            entry("[Gmail]/All Mail", "\\All"),
        ]
    )
    assert got == {
        "INBOX": FolderRole.INBOX,
        "Gesendet": FolderRole.SENT,
        "Papierkorb": FolderRole.TRASH,
    }


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (
            ["Sent Items", "Deleted Items", "Junk E-mail", "Drafts"],
            {
                "Sent Items": FolderRole.SENT,
                "Deleted Items": FolderRole.TRASH,
                "Junk E-mail": FolderRole.JUNK,
                "Drafts": FolderRole.DRAFTS,
            },
        ),
        (
            ["INBOX/Sent", "INBOX/Spam", "Archive"],
            {
                "INBOX/Sent": FolderRole.SENT,
                "INBOX/Spam": FolderRole.JUNK,
                "Archive": FolderRole.ARCHIVE,
            },
        ),
        # one folder per role, the top-level one preferred
        (["Old/Trash", "Trash"], {"Trash": FolderRole.TRASH}),
        (["Sent", "Sent Messages"], {"Sent": FolderRole.SENT}),
        (["Stuff", "Sentimental"], {}),
    ],
)
def test_name_heuristics_without_special_use(
    names: list[str], expected: dict[str, FolderRole]
) -> None:
    got = roles([entry("INBOX"), *(entry(n) for n in names)])
    got.pop("INBOX")
    assert got == expected


def test_noselect_and_subscriptions() -> None:
    infos = {
        f.name: f
        for f in folder_infos(
            [entry("INBOX"), entry("Lists", "\\Noselect"), entry("Lists/a"), entry("Trash")],
            {"Lists/a"},
        )
    }
    assert not infos["Lists"].selectable and infos["Lists/a"].selectable
    assert infos["INBOX"].subscribed and infos["Lists/a"].subscribed
    assert not infos["Trash"].subscribed


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b'(\\HasNoChildren \\Sent) "/" "Sent"',
            (frozenset({"\\hasnochildren", "\\sent"}), "/", b"Sent"),
        ),
        (b'() "." INBOX', (frozenset(), ".", b"INBOX")),
        (b"(\\Noselect) NIL {5}\r\nA B C", (frozenset({"\\noselect"}), "", b"A B C")),
        (b'() "/" "Entw&APw-rfe"', (frozenset(), "/", b"Entw&APw-rfe")),
        (b'() "/" 2024', (frozenset(), "/", b"2024")),
        (b"garbage", None),
    ],
)
def test_parse_list_line(line: bytes, expected: object) -> None:
    assert imap.parse_list_line(line) == expected


def test_decode_mailbox() -> None:
    assert imap.decode_mailbox(b"Entw&APw-rfe") == "Entwürfe"
    assert imap.decode_mailbox(b"a&-b") == "a&b"


@pytest.mark.parametrize(
    ("configured", "caps", "oauth", "expected"),
    [
        ("auto", {"AUTH=PLAIN", "AUTH=LOGIN"}, False, "PLAIN"),
        ("auto", {"AUTH=LOGIN"}, False, "LOGIN-CMD"),
        ("auto", {"AUTH=LOGIN", "LOGINDISABLED"}, False, "LOGIN"),
        ("auto", set(), False, "LOGIN-CMD"),
        ("plain", set(), False, "PLAIN"),
        ("login", {"AUTH=PLAIN"}, False, "LOGIN-CMD"),
        ("login", {"AUTH=PLAIN", "LOGINDISABLED"}, False, "LOGIN"),
        ("auto", {"AUTH=XOAUTH2", "AUTH=OAUTHBEARER"}, True, "XOAUTH2"),
        ("auto", {"AUTH=OAUTHBEARER"}, True, "OAUTHBEARER"),
        ("oauthbearer", {"AUTH=XOAUTH2"}, True, "OAUTHBEARER"),
        ("xoauth2", set(), True, "XOAUTH2"),
    ],
)
def test_choose_mechanism(configured: str, caps: set[str], oauth: bool, expected: str) -> None:
    assert choose_mechanism(configured, frozenset(caps), oauth) == expected


@pytest.mark.parametrize(("caps", "oauth"), [({"LOGINDISABLED"}, False), ({"AUTH=PLAIN"}, True)])
def test_choose_mechanism_refuses(caps: set[str], oauth: bool) -> None:
    with pytest.raises(AuthError):
        choose_mechanism("auto", frozenset(caps), oauth)


def test_sasl_payloads() -> None:
    assert imap._plain("u", "p€") == "\0u\0p€".encode()
    assert imap._xoauth2("u", "t") == b"user=u\x01auth=Bearer t\x01\x01"
    assert imap._oauthbearer("a,b=c", "t", "h", 993) == (
        b"n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer t\x01\x01"
    )
    one = imap._one_shot(b"first")
    assert (one(b""), one(b"error json"), one(b"")) == (b"first", b"", b"")
    login = imap._login_steps("u", "p")
    assert (login(b"Username:"), login(b"Password:"), login(b"?")) == (b"u", b"p", b"")


def test_server_text_is_one_bounded_line() -> None:
    assert imap.server_text(b"a\r\n  b\tc") == "a b c"
    assert len(imap.server_text("x" * 1000)) == 300


# ----------------------------------------------------------------------------- SocketReader


def _pair(chunks: list[bytes]) -> tuple[SocketReader, threading.Thread]:
    a, b = socket.socketpair()
    a.settimeout(5)

    def feed() -> None:
        for c in chunks:
            b.sendall(c)
        b.close()

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return SocketReader(a, hard_limit=1000), t


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=20), st.integers(1, 40))
@settings(max_examples=100, deadline=None)
def test_socket_reader_matches_bytesio(chunks: list[bytes], limit: int) -> None:
    import io

    data = b"".join(chunks)
    reader, t = _pair(chunks)
    ref = io.BytesIO(data)
    while True:
        got = reader.readline(limit)
        assert got == ref.readline(limit)
        if not got:
            break
        n = len(got) % 7
        assert reader.read(n) == ref.read(n)
    t.join()


def test_socket_reader_refuses_huge_reads() -> None:
    reader, t = _pair([b"x"])
    with pytest.raises(ProtocolError):
        reader.read(10**9)
    t.join()


def test_socket_reader_buffered() -> None:
    reader, t = _pair([b"a\r\nb\r\n"])
    t.join()
    assert reader.readline() == b"a\r\n"
    assert reader.buffered() == 3
    assert reader.readline() == b"b\r\n"
    assert reader.buffered() == 0
    assert reader.readline() == b""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b'"INBOX" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 17 HIGHESTMODSEQ 9)',
            (b"INBOX", imap.FolderStatus(3, 4, 17, 9)),
        ),
        (b"Sent (UIDNEXT 1)", (b"Sent", imap.FolderStatus(uidnext=1))),
        (b'"x" (UNSEEN 2 MESSAGES 5 X-FOO (a b))', (b"x", imap.FolderStatus(messages=5))),
        (b"{3}\r\na b (MESSAGES 1)", (b"a b", imap.FolderStatus(messages=1))),
        (b'"x" garbage', None),
        (b"(", None),
    ],
)
def test_parse_status_line(line: bytes, expected: object) -> None:
    assert imap.parse_status_line(line) == expected
