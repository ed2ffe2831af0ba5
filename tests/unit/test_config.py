"""Config: validation reports every problem at once with key path and hint."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tuimail import config
from tuimail.models import Protocol, TLSMode

GOOD = """
[accounts.work]
address = "me@example.com"
name = "Me Myself"
default = true

[accounts.work.incoming]
protocol = "imap"
host = "imap.example.com"
tls = "implicit"
username = "me@example.com"
password_command = "pass show mail/work"

[accounts.work.outgoing]
host = "smtp.example.com"
port = 587
tls = "starttls"

[accounts.home]
address = "me@example.net"

[accounts.home.incoming]
protocol = "pop3"
host = "pop.example.net"
tls = "starttls"

[ui]
theme = "mutt"
layout = "pager"
"""


def test_good_config_builds_typed_model() -> None:
    cfg, problems = config.parse(tomllib.loads(GOOD), "good.toml")
    assert problems == []
    work = cfg.accounts["work"]
    assert work.incoming is not None and work.outgoing is not None
    assert work.incoming.protocol is Protocol.IMAP
    assert work.incoming.port == 993  # default for imap + implicit
    assert work.outgoing.tls is TLSMode.STARTTLS and work.outgoing.port == 587
    assert work.outgoing.username == "me@example.com"  # defaults to the address
    home = cfg.accounts["home"]
    assert home.incoming is not None and home.incoming.port == 110
    assert cfg.account().name == "work"
    assert cfg.account("home").name == "home"
    assert cfg.ui.layout == "pager"


@pytest.mark.parametrize(
    ("toml", "key", "fragment"),
    [
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.incoming]\nhots="x"',
            "accounts.a.incoming.hots",
            "did you mean 'host'",
        ),
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.incoming]\nhost=5',
            "accounts.a.incoming.host",
            "must be a string",
        ),
        ('[accounts.a]\n[accounts.a.incoming]\nhost="x"', "accounts.a.address", "is required"),
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.incoming]\nhost="x"\ntls="maybe"',
            "accounts.a.incoming.tls",
            "must be one of",
        ),
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.incoming]\nhost="x"\ntls="none"',
            "accounts.a.incoming.tls",
            "in the clear",
        ),
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.outgoing]\nhost="smtp.x"\ntls="none"\n'
            "allow_plaintext=true",
            "accounts.a.outgoing.allow_plaintext",
            "loopback",
        ),
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.incoming]\nhost="x"\nport=70000',
            "accounts.a.incoming.port",
            "not a valid port",
        ),
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.incoming]\nhost="x"\nca_file="/nonexistent.pem"',
            "accounts.a.incoming.ca_file",
            "does not exist",
        ),
        ('[accounts.a]\naddress="a@b.c"\n', "accounts.a", "neither"),
        (
            '[accounts.a]\naddress="not-an-address"\n[accounts.a.incoming]\nhost="x"',
            "accounts.a.address",
            "not an email address",
        ),
        ('[acounts.a]\naddress="a@b.c"', "acounts", "unknown section"),
        ('[ui]\nmouse="no"', "ui.mouse", "true or false"),
        (
            '[accounts.a]\naddress="a@b.c"\ndefault=true\n[accounts.a.incoming]\nhost="x"\n'
            '[accounts.b]\naddress="b@b.c"\ndefault=true\n[accounts.b.incoming]\nhost="y"',
            "accounts",
            "several accounts",
        ),
        (
            '[accounts.a]\naddress="a@b.c"\n[accounts.a.incoming]\nprotocol="maildir"',
            "accounts.a.incoming.path",
            "is required",
        ),
    ],
)
def test_each_problem_names_key_and_explains(toml: str, key: str, fragment: str) -> None:
    _, problems = config.parse(tomllib.loads(toml), "c.toml")
    matching = [p for p in problems if p.key == key]
    assert matching, f"no problem for {key}: {problems}"
    assert fragment in matching[0].message + matching[0].hint
    assert all(p.file == "c.toml" for p in problems)


def test_all_problems_reported_at_once() -> None:
    toml = '[accounts.a]\nadress="x"\n[accounts.a.incoming]\nhost=1\ntls="none"\nbogus=2'
    _, problems = config.parse(tomllib.loads(toml), "c.toml")
    keys = {p.key for p in problems}
    assert {
        "accounts.a.adress",
        "accounts.a.address",
        "accounts.a.incoming.host",
        "accounts.a.incoming.tls",
        "accounts.a.incoming.bogus",
    } <= keys


def test_plaintext_allowed_on_loopback_only() -> None:
    toml = (
        '[accounts.a]\naddress="a@b.c"\n[accounts.a.outgoing]\nhost="127.0.0.1"\nport=2525\n'
        'tls="none"\nallow_plaintext=true'
    )
    cfg, problems = config.parse(tomllib.loads(toml))
    assert problems == []
    assert cfg.accounts["a"].outgoing is not None
    assert cfg.accounts["a"].outgoing.tls is TLSMode.NONE


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.8.9.1", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.evil.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert config.is_loopback(host) is loopback


def test_example_is_valid_and_documented() -> None:
    text = config.example()
    _, problems = config.parse(tomllib.loads(text))
    assert problems == []
    for f in config.INCOMING_FIELDS:
        assert f.key in text and f.doc in text


def test_load_missing_and_broken_files(tmp_path: Path) -> None:
    _, problems = config.load(tmp_path / "none.toml")
    assert problems and "config example" in problems[0].hint
    broken = tmp_path / "broken.toml"
    broken.write_text("[accounts\n")
    _, problems = config.load(broken)
    assert problems and "not valid TOML" in problems[0].message


def test_unknown_account_lists_known() -> None:
    cfg, _ = config.parse(tomllib.loads(GOOD))
    with pytest.raises(config.ConfigError, match="configured: work, home"):
        cfg.account("nope")
