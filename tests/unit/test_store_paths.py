"""Folder/account names -> directory names: safe, injective, never escaping."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.errors import StoreError
from tuimail.models import FolderInfo
from tuimail.store import NewMessage, Store
from tuimail.store.paths import MAX_BYTES, checked_path, dir_name

HOSTILE = [
    "..",
    ".",
    "../../etc/passwd",
    "..\\..\\windows",
    "/etc/passwd",
    "a/../../b",
    ".hidden",
    ".Sub.Folder",
    "",
    " ",
    "trailing.",
    "trailing ",
    "nul\x00byte",
    "line\nbreak",
    "esc\x1b[31mred",
    "bidi\u202eevil",
    "$(rm -rf ~)",
    "`reboot`",
    "a;b|c&d>e<f",
    "*?\"'",
    "~root",
    "-rf",
    "CON",
    "con.txt",
    "LPT1",
    "x" * 1000,
    "é" * 300,
    "%2F",
    "#hash",
    "cur",
    "tmp",
    # UIDL-like values
    "000012ab!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "../uidl/../../x",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_one_safe_component(name: str, tmp_path: Path) -> None:
    d = dir_name(name)
    assert d and d not in (".", "..")
    assert "/" not in d and "\\" not in d and "\0" not in d
    assert not d.startswith(".") and not d.endswith((".", " "))
    assert all(ord(c) >= 32 and c.isprintable() for c in d)
    assert not any(c in d for c in "$`;|&<>*?\"'\n")
    assert len(d.encode()) <= MAX_BYTES
    path = checked_path(tmp_path, "acct", d)
    path.mkdir(parents=True)
    assert path.resolve().parent == (tmp_path / "acct").resolve()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("INBOX", "INBOX"),
        ("Sent Items", "Sent Items"),
        ("Archive/2024", "Archive%2F2024"),
        ("..", "%2E%2E"),
        (".hidden", "%2Ehidden"),
        ("Entwürfe", "Entwürfe"),
        ("100%", "100%25"),
        ("CON", "%43ON"),
        ("", "%"),
    ],
)
def test_readable_for_common_names(name: str, expected: str) -> None:
    assert dir_name(name) == expected


def test_long_names_get_distinct_hash_suffixes() -> None:
    a, b = dir_name("x" * 500 + "a"), dir_name("x" * 500 + "b")
    assert a != b and "#" in a and len(a.encode()) <= MAX_BYTES


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_injective_and_safe(a: str, b: str) -> None:
    da, db = dir_name(a), dir_name(b)
    if a != b:
        assert da != db
    for d in (da, db):
        assert "/" not in d and "\0" not in d and d not in (".", "..")
        assert not d.startswith(".")
        assert len(d.encode("utf-8")) <= MAX_BYTES


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=200))
def test_never_escapes(name: str) -> None:
    root = Path("/srv/store/maildir")
    path = checked_path(root, dir_name("acct"), dir_name(name))
    assert path.parent == root / "acct"


@pytest.mark.parametrize("part", ["..", ".", "a/b", "", "x\0y", "..\\x"])
def test_checked_path_refuses_bad_components(part: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        checked_path(tmp_path, part)


def test_checked_path_refuses_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(StoreError):
        checked_path(root, "link", "..x")  # resolves outside root
    with pytest.raises(StoreError):
        checked_path(root, "link")


@pytest.mark.parametrize("name", HOSTILE)
def test_store_keeps_hostile_folders_inside(name: str, tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        folder = store.ensure_folder("../evil", FolderInfo(name))
        raw = b"Subject: hi\r\n\r\nbody\r\n"
        [mid] = store.add_messages(folder.id, [NewMessage(uid=1, raw=raw, complete=True)])
        assert store.raw(mid) == raw
        maildir_root = (tmp_path / "s" / "maildir").resolve()
        for path in (tmp_path / "s").rglob("*"):
            if path.is_file() and path.parent.name == "cur":
                assert path.resolve().is_relative_to(maildir_root)
        assert not (tmp_path / "evil").exists()


def test_account_names_with_controls_are_refused(tmp_path: Path) -> None:
    from tuimail.errors import UsageError

    with Store.open(tmp_path / "s") as store, pytest.raises(UsageError):
        store.ensure_folder("a\x00b", FolderInfo("INBOX"))
