"""One TLS policy for IMAP, POP3 and SMTP, and one translation of socket errors into
user-facing errors.

Policy: certificates are always verified against the system store plus the account's
`ca_file`; the host name is always checked; TLS 1.2 is the floor. There is no switch to turn
verification off.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from pathlib import Path

from tuimail.config import ServerConfig, is_loopback
from tuimail.errors import ConfigError, NetworkError, NetworkTimeout, TLSError, TuimailError
from tuimail.models import TLSMode


def _hashed_ca_dir() -> str | None:
    """The system's hashed CA directory (`c_rehash` links), if it has one."""
    capath = ssl.get_default_verify_paths().capath
    if capath and os.path.isdir(capath):
        with contextlib.suppress(OSError), os.scandir(capath) as entries:
            if any(e.name.endswith(".0") for e in entries):
                return capath
    return None


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system trust store plus `ca_file` when given.

    The system store is read from its hashed directory where there is one: OpenSSL then
    loads only the issuer it needs, at verification time, instead of parsing the whole
    bundle (~150 certificates, tens of ms) on every connection of a one-shot `tuimail send`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    capath = _hashed_ca_dir()
    if capath is not None:
        context.load_verify_locations(capath=capath)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
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
