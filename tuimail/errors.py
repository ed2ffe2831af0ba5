"""The error family. Every error a user can see carries a title and a message that says what to do.

Exit codes for the command line live here too, so every layer agrees on them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of the `tuimail` command (see README)."""

    OK = 0
    FAILURE = 1  # generic failure, message printed
    USAGE = 2  # bad command line or bad input (argparse uses 2 as well)
    CONFIG = 3  # config file missing or invalid
    AUTH = 4  # the server refused the credentials, or no credentials available
    TLS = 5  # TLS/STARTTLS could not be established or the certificate did not verify
    NETWORK = 6  # server unreachable, connection dropped, timeout
    PROTOCOL = 7  # the server answered something we cannot accept
    QUEUED = 75  # sendmail's EX_TEMPFAIL: message queued, will be retried
    NOT_FOUND = 8  # no such message / folder / account
    UNCERTAIN = 9  # an outbox item may or may not have been delivered


class TuimailError(Exception):
    """Base of all errors shown to the user: `message` says what happened and what to do."""

    exit_code: ExitCode = ExitCode.FAILURE
    default_title = "Error"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.title = title or self.default_title

    def __str__(self) -> str:
        return self.message


class ConfigError(TuimailError):
    exit_code = ExitCode.CONFIG
    default_title = "Configuration problem"


class UsageError(TuimailError):
    exit_code = ExitCode.USAGE
    default_title = "Bad input"


class SecretError(TuimailError):
    """No password could be obtained (keyring unusable, command failed)."""

    exit_code = ExitCode.AUTH
    default_title = "No password"


class AuthError(TuimailError):
    exit_code = ExitCode.AUTH
    default_title = "Login failed"


class TLSError(TuimailError):
    exit_code = ExitCode.TLS
    default_title = "Secure connection failed"


class NetworkError(TuimailError, ConnectionError):
    exit_code = ExitCode.NETWORK
    default_title = "Server unreachable"


class NetworkTimeout(NetworkError, TimeoutError):
    default_title = "Server timed out"


class ProtocolError(TuimailError):
    """The server said something a correct server would not: we stop rather than guess."""

    exit_code = ExitCode.PROTOCOL
    default_title = "Server error"


class NotFoundError(TuimailError):
    exit_code = ExitCode.NOT_FOUND
    default_title = "Not found"


class UnsupportedError(TuimailError):
    """The account's protocol cannot do this (e.g. moving to a server folder over POP3)."""

    exit_code = ExitCode.USAGE
    default_title = "Not supported"


class StoreError(TuimailError):
    default_title = "Local store problem"


class MessageTooLarge(ProtocolError):
    default_title = "Message too large"
