"""Secrets: keyring, password command, environment; never leaked in errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from tuimail import secrets
from tuimail.errors import SecretError


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_keyring_roundtrip_and_outgoing_fallback(memory_keyring: MemoryKeyring) -> None:
    secrets.set_password("work", "incoming", "s3cret")
    assert secrets.get_password("work", "incoming").value == "s3cret"
    # outgoing falls back to the incoming password until one is stored for it
    assert secrets.get_password("work", "outgoing").value == "s3cret"
    secrets.set_password("work", "outgoing", "other")
    assert secrets.get_password("work", "outgoing").value == "other"


def test_missing_password_says_what_to_run(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(SecretError, match="tuimail password set work"):
        secrets.get_password("work", "incoming")


def test_headless_error_names_config_key_and_env(
    no_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUIMAIL_PASSWORD_WORK", raising=False)
    with pytest.raises(SecretError) as info:
        secrets.get_password("work", "incoming")
    assert "password_command" in info.value.message
    assert "[accounts.work.incoming]" in info.value.message
    assert "TUIMAIL_PASSWORD_WORK" in info.value.message


def test_environment_variable(no_keyring: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUIMAIL_PASSWORD_MY_WORK", "from-env")
    assert secrets.get_password("my-work", "incoming").value == "from-env"
    assert secrets.get_password("my-work", "outgoing").value == "from-env"


def test_password_command_without_shell(tmp_path: Path) -> None:
    script = tmp_path / "pw.py"
    script.write_text("print('pw1')\nprint('ignored')\n")
    cmd = f"{sys.executable} {script}"
    assert secrets.command_argv(cmd) == [sys.executable, str(script)]
    assert secrets.get_password("w", "incoming", cmd).value == "pw1"


def test_password_command_with_shell_features() -> None:
    cmd = "echo 'abc def' | tr a-z A-Z"
    assert secrets.command_argv(cmd)[:2] == ["/bin/sh", "-c"]
    assert secrets.get_password("w", "incoming", cmd).value == "ABC DEF"


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ("/nonexistent/pass-tool show x", "command not found"),
        ("sh -c 'echo TOPSECRET; echo nope >&2; exit 3'", "exit status 3: nope"),
        ("true", "printed nothing"),
    ],
)
def test_password_command_failures_never_show_stdout(command: str, fragment: str) -> None:
    with pytest.raises(SecretError) as info:
        secrets.get_password("w", "incoming", command)
    assert fragment in info.value.message
    assert "TOPSECRET" not in info.value.message


def test_password_command_timeout() -> None:
    with pytest.raises(SecretError, match="did not finish"):
        secrets.run_secret_command("sleep 5", "pw", timeout=0.2)


def test_secret_never_shows_in_repr() -> None:
    s = secrets.Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s!r} {s}"
