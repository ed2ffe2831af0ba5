"""What `tuimail send` does with its input before anything is queued: address checks,
account choice, and the sendmail-mode message (Bcc removed, missing headers added)."""

from __future__ import annotations

import argparse
from email import message_from_bytes, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail import config as config_mod
from tuimail.account.sending import header_fields, split_message
from tuimail.cli import build_parser
from tuimail.cli.send_cmd import parse_addresses, pick_account, prepare_whole_message
from tuimail.config import AccountConfig
from tuimail.errors import ConfigError, UsageError


def _config(**accounts: dict[str, object]) -> config_mod.Config:
    config, problems = config_mod.parse({"accounts": accounts})
    assert not problems, problems
    return config


OUT = {"host": "smtp.example.com"}
CONFIG = _config(
    home={"address": "me@home.example", "name": "Me", "outgoing": OUT},
    work={
        "address": "me@work.example",
        "aliases": ["boss@work.example"],
        "default": True,
        "outgoing": OUT,
    },
    readonly={"address": "ro@x.example", "incoming": {"host": "imap.example.com"}},
)


# ----------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "addr",
    [
        "a@example.com",
        "first.last+tag@sub.example.co.uk",
        "x@localhost",
        "jörg@bücher.example",
        '"odd local"@example.com',
        "a@[192.0.2.1]",
        "o'brien@example.ie",
    ],
)
def test_valid_addresses(addr: str) -> None:
    assert [a.addr for a in parse_addresses(addr)] == [addr]


@pytest.mark.parametrize(
    "addr",
    [
        "root",
        "a@",
        "@example.com",
        "a@b@c",
        "a..b@example.com",
        ".a@example.com",
        "a@-example.com",
        "a@example-.com",
        "a@exa_mple.com",
        "a@example..com",
        "a@example.com>",
        "x" * 65 + "@example.com",
    ],
)
def test_invalid_addresses(addr: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_addresses(addr)
    assert repr(addr)[:20] in str(info.value)  # the error names the bad address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a@x.org", ["a@x.org"]),
        ("Ann <a@x.org>, b@y.org", ["a@x.org", "b@y.org"]),
        ('"Doe, John" <j@x.org>', ["j@x.org"]),
        ("=?utf-8?q?J=C3=B6rg?= <j@x.org>", ["j@x.org"]),
    ],
)
def test_parse_addresses(text: str, expected: list[str]) -> None:
    assert [a.addr for a in parse_addresses(text)] == expected


@pytest.mark.parametrize(
    "text", ["nobody", "a@x.org, oops", "a@x.org\r\nBcc: evil@x.org", "a@x\x00.org"]
)
def test_parse_addresses_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_addresses(text)


@given(st.text(max_size=30))
def test_parse_addresses_never_lets_line_breaks_or_brackets_through(text: str) -> None:
    try:
        found = parse_addresses(text)
    except UsageError:
        return
    for address in found:
        assert not any(c in address.addr for c in "\r\n\x00<>") and "@" in address.addr


# ----------------------------------------------------------------------------- accounts


@pytest.mark.parametrize(
    ("name", "from_addr", "expected"),
    [
        (None, None, "work"),
        ("home", None, "home"),
        (None, "me@home.example", "home"),
        (None, "Me <ME@HOME.example>", "home"),
        (None, "boss@work.example", "work"),
        (None, "stranger@else.example", "work"),
        ("home", "me@work.example", "home"),
    ],
)
def test_pick_account(name: str | None, from_addr: str | None, expected: str) -> None:
    assert pick_account(CONFIG, name, from_addr).name == expected


def test_pick_account_needs_an_outgoing_server() -> None:
    with pytest.raises(ConfigError, match="outgoing"):
        pick_account(CONFIG, "readonly", None)
    with pytest.raises(ConfigError, match="No account named"):
        pick_account(CONFIG, "nope", None)


# ----------------------------------------------------------------------------- sendmail mode

ACCOUNT: AccountConfig = CONFIG.account("home")
MESSAGE = (
    b"To: Ann <ann@x.org>, bob@y.org\n"
    b"Cc: carol@z.org\n"
    b"Bcc: dave@w.org,\n erin@v.org\n"
    b"Subject: patch\n"
    b"\n"
    b"diff --git a/x b/x\n.\n..\nBcc: not-a-header@x.org\n"
)


def test_whole_message_with_t() -> None:
    prepared = prepare_whole_message(
        MESSAGE,
        ACCOUNT,
        arg_recipients=["Ann@x.org", "extra@u.org"],
        read_headers=True,
        envelope_from=None,
        full_name=None,
    )
    assert prepared.recipients == (
        "Ann@x.org",
        "extra@u.org",
        "bob@y.org",
        "carol@z.org",
        "dave@w.org",
        "erin@v.org",
    )
    assert prepared.sender == "me@home.example"
    raw = prepared.raw
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout
    assert header_fields(raw, "bcc") == []
    assert b"dave@w.org" not in raw and b"erin@v.org" not in raw
    _, body = split_message(raw)
    assert body == b"diff --git a/x b/x\r\n.\r\n..\r\nBcc: not-a-header@x.org\r\n"  # untouched
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["From"] == "Me <me@home.example>"
    assert msg["Date"] and msg["Message-ID"] == prepared.message_id
    assert prepared.message_id.endswith("@home.example>")


def test_whole_message_without_t_uses_only_the_arguments() -> None:
    prepared = prepare_whole_message(
        MESSAGE,
        ACCOUNT,
        arg_recipients=["only@u.org"],
        read_headers=False,
        envelope_from=None,
        full_name=None,
    )
    assert prepared.recipients == ("only@u.org",)
    assert header_fields(prepared.raw, "bcc") == []


def test_whole_message_keeps_existing_headers_and_uses_f_and_F() -> None:
    raw = (
        b"From: Git <git@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <p@x>\r\n\r\nhi\r\n"
    )
    prepared = prepare_whole_message(
        raw,
        ACCOUNT,
        arg_recipients=["a@x.org"],
        read_headers=False,
        envelope_from="bounce@home.example",
        full_name="X",
    )
    assert prepared.raw == raw
    assert prepared.sender == "bounce@home.example"
    assert prepared.message_id == "<p@x>"

    added = prepare_whole_message(
        b"Subject: s\n\nhi\n",
        ACCOUNT,
        arg_recipients=["a@x.org"],
        read_headers=False,
        envelope_from="cron@home.example",
        full_name="Cron Dæmon",
    )
    msg = message_from_bytes(added.raw, policy=policy.default)
    assert msg["From"] == "Cron Dæmon <cron@home.example>"
    assert added.raw.isascii()  # the name is RFC 2047 encoded


def test_whole_message_full_name_cannot_inject_headers() -> None:
    prepared = prepare_whole_message(
        b"Subject: s\n\nhi\n",
        ACCOUNT,
        arg_recipients=["a@x.org"],
        read_headers=False,
        envelope_from=None,
        full_name="Eve\r\nBcc: victim@x.org",
    )
    assert header_fields(prepared.raw, "bcc") == []
    assert len(header_fields(prepared.raw, "from")) == 1


@pytest.mark.parametrize(
    ("raw", "args", "t", "match"),
    [
        (b"", ["a@x.org"], False, "empty"),
        (b"Subject: s\n\nhi\n", [], False, "No recipients"),
        (b"Subject: s\n\nhi\n", [], True, "no To, Cc or Bcc"),
        (b"To: nobody\n\nhi\n", [], True, "nobody"),
        (b"Subject: s\n\nhi\n", ["bad"], False, "'bad'"),
    ],
)
def test_whole_message_errors(raw: bytes, args: list[str], t: bool, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        prepare_whole_message(
            raw, ACCOUNT, arg_recipients=args, read_headers=t, envelope_from=None, full_name=None
        )


# ----------------------------------------------------------------------------- the command line


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser(only="send").parse_args(["send", *argv])


def test_sendmail_flags_parse_as_cron_git_and_mutt_pass_them() -> None:
    cron = _parse("-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t")
    assert cron.full_name == "CronDaemon" and cron.read_recipients and cron.ignore_dots
    assert cron.sendmail_options == ["di", "em", "i"]
    git = _parse("-i", "-f", "me@x.org", "--", "a@x.org", "b@y.org")
    assert git.envelope_from == "me@x.org" and git.recipients == ["a@x.org", "b@y.org"]
    mutt = _parse("-oi", "-B8BITMIME", "--", "-weird@x.org")
    assert mutt.recipients == ["-weird@x.org"] and mutt.body_type == "8BITMIME"
    mailx = _parse("-s", "Hi", "-c", "c@x.org", "-b", "b@x.org", "-a", "f.pdf", "--", "a@x.org")
    assert (mailx.subject, mailx.cc, mailx.bcc, mailx.attach) == (
        "Hi",
        ["c@x.org"],
        ["b@x.org"],
        ["f.pdf"],
    )


# ----------------------------------------------------------------------------- start-up


@pytest.mark.parametrize(
    ("argv", "collects"), [(["send", "-i", "--", "a@x.org"], False), (["outbox"], True)]
)
def test_only_send_runs_without_the_cycle_collector(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], collects: bool
) -> None:
    import gc

    from tuimail import cli
    from tuimail.cli import send_cmd

    seen: list[bool] = []

    def fake_run(args: argparse.Namespace) -> int:
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setattr(send_cmd, "run", fake_run)
    assert gc.isenabled()
    assert cli.main(argv) == 0
    assert seen == [collects]
    assert gc.isenabled()  # whatever ran in between, the caller gets the collector back
