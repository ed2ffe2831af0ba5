"""One TLS policy for IMAP, POP3 and SMTP, and one translation of socket errors into
user-facing errors.

Policy: certificates are always verified against the system store plus the account's
`ca_file`; the host name is always checked; TLS 1.2 is the floor. There is no switch to turn
verification off.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from pathlib import Path

from tuimail.config import ServerConfig, is_loopback
from tuimail.errors import ConfigError, NetworkError, NetworkTimeout, TLSError, TuimailError
from tuimail.models import TLSMode


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system trust store plus `ca_file` when given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"Cannot load ca_file {ca_file}: {exc}. Give a PEM certificate file."
            ) from None
    return context


def context_for(server: ServerConfig) -> ssl.SSLContext | None:
    """The context to use for `server`, or None for an allowed plaintext loopback link."""
    if server.tls is TLSMode.NONE:
        check_plaintext_allowed(server)
        return None
    return client_context(server.ca_file)


def check_plaintext_allowed(server: ServerConfig) -> None:
    if not server.allow_plaintext or not is_loopback(server.host):
        raise ConfigError(
            f"Refusing to talk to {server.host} without TLS: that would send your password in "
            'the clear. Use tls = "implicit" or "starttls" (allow_plaintext only works for '
            "127.0.0.1/::1/localhost test servers).",
            "Plaintext refused",
        )


def set_nodelay(sock: socket.socket | None) -> None:
    """Disable Nagle: request/response protocols stall ~40 ms per turn without it."""
    if sock is None:
        return
    # Not a TCP socket (a unix socket in tests): nothing to tune.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def describe_error(exc: BaseException, host: str, port: int, what: str = "server") -> TuimailError:
    """Turn a low-level exception from connecting/talking into an error that says what to do."""
    where = f"{host}:{port}"
    if isinstance(exc, TuimailError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, "verify_message", None) or str(exc)
        return TLSError(
            f"The certificate of {where} could not be verified ({reason}). If this {what} uses "
            "a private CA, set ca_file to its certificate; otherwise someone may be "
            "intercepting the connection.",
            "Certificate not trusted",
        )
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        # The peer went away mid-handshake or mid-stream: a network fault, worth retrying.
        return NetworkError(f"The connection to {where} was lost. It will be retried.")
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or exc
        return TLSError(
            f"TLS with {where} failed ({reason}). Check that the port and the tls "
            'setting match ("implicit" is usually 993/995/465, "starttls" 143/110/587).'
        )
    if isinstance(exc, socket.timeout | TimeoutError):
        return NetworkTimeout(
            f"{where} did not answer in time. Check your connection and try again."
        )
    if isinstance(exc, socket.gaierror):
        return NetworkError(
            f"Cannot find the {what} {host!r}: {exc.strerror}. Check the host name."
        )
    if isinstance(exc, ConnectionRefusedError):
        return NetworkError(
            f"{where} refused the connection. Is the {what} running, and are host and port right?"
        )
    if isinstance(exc, ConnectionError | EOFError):
        return NetworkError(f"The connection to {where} was lost. It will be retried.")
    if isinstance(exc, OSError):
        return NetworkError(f"Cannot talk to {where}: {exc.strerror or exc}.")
    return NetworkError(f"Talking to {where} failed: {type(exc).__name__}.")
