"""Passwords and tokens: the keyring, a password command, or the environment.

Secrets are returned to the caller and never logged, printed, or put in an exception
message. Errors say what to configure instead.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from typing import Literal

from tuimail.errors import SecretError
from tuimail.models import Frozen

Direction = Literal["incoming", "outgoing"]

KEYRING_SERVICE = "tuimail"
COMMAND_TIMEOUT = 30.0
# A value with any of these needs a shell (pipes, substitutions, globs, redirections...).
_SHELL_CHARS = re.compile(r"[|&;<>()$`*?\[\]{}~!#\n]")


class Secret(Frozen):
    """A secret that does not show itself in reprs, logs or tracebacks."""

    __slots__ = ("value",)
    value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "value", value)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


def keyring_username(account: str, direction: Direction) -> str:
    return f"{account}:{direction}"


def env_var(account: str, direction: Direction) -> str:
    """`TUIMAIL_PASSWORD_WORK` (incoming, also used for outgoing) or `..._WORK_OUTGOING`."""
    base = "TUIMAIL_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", account).upper()
    return base + ("_OUTGOING" if direction == "outgoing" else "")


def command_argv(command: str) -> list[str]:
    """argv for a user's configured command: split without a shell unless it needs one."""
    if _SHELL_CHARS.search(command):
        # The user's own config value, never mail data: a shell is acceptable here.
        return ["/bin/sh", "-c", command]
    try:
        return shlex.split(command)
    except ValueError:
        return ["/bin/sh", "-c", command]


def run_secret_command(command: str, what: str, timeout: float = COMMAND_TIMEOUT) -> Secret:
    """Run a password/token command; its first line of output is the secret."""
    argv = command_argv(command)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise SecretError(f"{what}: command not found: {argv[0]!r}.") from None
    except subprocess.TimeoutExpired:
        raise SecretError(f"{what}: the command did not finish within {timeout:.0f} s.") from None
    except OSError as exc:
        raise SecretError(f"{what}: cannot run the command: {exc.strerror}.") from None
    if done.returncode != 0:
        # stderr of a password manager does not carry the secret (stdout might): show stderr only.
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = f": {detail[0][:200]}" if detail else ""
        raise SecretError(f"{what}: the command failed with exit status {done.returncode}{reason}.")
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    if not lines or not lines[0]:
        raise SecretError(f"{what}: the command printed nothing.")
    return Secret(lines[0])


def _usable_keyring() -> object | None:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return None
    # The chainer holds no backends when nothing usable was found.
    backends = getattr(backend, "backends", None)
    if backends is not None and not backends:
        return None
    return backend


def _headless_hint(account: str, direction: Direction) -> str:
    section = f"[accounts.{account}.{direction}]"
    return (
        "No usable system keyring was found (a headless server has none). Either set "
        f'password_command = "pass show mail/{account}" (or any command printing the password) '
        f"in {section} of your config, or export {env_var(account, direction)} in the "
        "environment of tuimail."
    )


def get_password(account: str, direction: Direction, password_command: str = "") -> Secret:
    """The password for an account's incoming or outgoing server.

    Order: the configured password command, then the environment, then the keyring. The
    outgoing server falls back to the incoming password (most providers use one password).
    """
    what = f"password for account {account!r} ({direction})"
    if password_command:
        return run_secret_command(password_command, what)
    for direction_tried in _directions(direction):
        value = os.environ.get(env_var(account, direction_tried))
        if value:
            return Secret(value)
    backend = _usable_keyring()
    if backend is None:
        raise SecretError(_headless_hint(account, direction))
    import keyring
    import keyring.errors

    try:
        for direction_tried in _directions(direction):
            value = keyring.get_password(
                KEYRING_SERVICE, keyring_username(account, direction_tried)
            )
            if value:
                return Secret(value)
    except keyring.errors.KeyringError as exc:
        raise SecretError(
            f"The keyring failed: {type(exc).__name__}. " + _headless_hint(account, direction)
        ) from None
    raise SecretError(
        f"No {what} is stored. Run: tuimail password set {account}"
        + (" --outgoing" if direction == "outgoing" else "")
        + f", or set password_command in [accounts.{account}.{direction}]."
    )


def _directions(direction: Direction) -> tuple[Direction, ...]:
    return ("outgoing", "incoming") if direction == "outgoing" else ("incoming",)


def set_password(account: str, direction: Direction, password: str) -> None:
    if _usable_keyring() is None:
        raise SecretError(_headless_hint(account, direction))
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, keyring_username(account, direction), password)
    except keyring.errors.KeyringError as exc:
        raise SecretError(
            f"The keyring refused to store the password: {type(exc).__name__}."
        ) from None


def get_oauth2_token(account: str, command: str) -> Secret:
    return run_secret_command(command, f"OAuth2 token for account {account!r}")
