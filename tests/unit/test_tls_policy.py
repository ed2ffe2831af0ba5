"""The one TLS policy: verifying contexts, plaintext only to loopback, clear errors."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from tuimail.backends import tls
from tuimail.config import ServerConfig
from tuimail.errors import ConfigError, NetworkError, NetworkTimeout, TLSError
from tuimail.models import TLSMode


def server(**kw: object) -> ServerConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 993,
        "tls": TLSMode.IMPLICIT,
        "username": "u",
    }
    base.update(kw)
    return ServerConfig(**base)  # type: ignore[arg-type]


def test_contexts_always_verify() -> None:
    ctx = tls.context_for(server())
    assert ctx is not None
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_ca_file_is_loaded_and_a_bad_one_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="ca_file"):
        tls.client_context(bad)


@pytest.mark.parametrize(
    ("host", "allow", "ok"),
    [
        ("127.0.0.1", True, True),
        ("::1", True, True),
        ("localhost", True, True),
        ("127.0.0.1", False, False),
        ("mail.example.com", True, False),
    ],
)
def test_plaintext_only_to_loopback_when_allowed(host: str, allow: bool, ok: bool) -> None:
    cfg = server(host=host, tls=TLSMode.NONE, allow_plaintext=allow)
    if ok:
        assert tls.context_for(cfg) is None
    else:
        with pytest.raises(ConfigError, match="without TLS"):
            tls.context_for(cfg)


@pytest.mark.parametrize(
    ("exc", "kind", "fragment"),
    [
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            TLSError,
            "could not be verified",
        ),
        (ssl.SSLError(1, "wrong version number"), TLSError, "TLS with"),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), NetworkError, "was lost"),
        (ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"), NetworkError, "was lost"),
        (TimeoutError("timed out"), NetworkTimeout, "did not answer"),
        (socket.gaierror(-2, "Name or service not known"), NetworkError, "Cannot find"),
        (ConnectionRefusedError(111, "refused"), NetworkError, "refused the connection"),
        (ConnectionResetError(104, "reset"), NetworkError, "was lost"),
        (EOFError(), NetworkError, "was lost"),
    ],
)
def test_describe_error(exc: BaseException, kind: type, fragment: str) -> None:
    err = tls.describe_error(exc, "mail.example.com", 993)
    assert type(err) is kind
    assert fragment in err.message and "mail.example.com" in err.message


def test_system_store_from_a_hashed_directory_verifies_lazily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system CAs are read from their hashed directory at verification time: a server
    whose issuer is only in that directory verifies, and one from another CA does not."""
    import subprocess
    import threading

    import trustme

    system_ca, other_ca = trustme.CA(), trustme.CA()
    capath = tmp_path / "certs"
    capath.mkdir()
    system_ca.cert_pem.write_to_path(str(capath / "system-ca.pem"))
    subprocess.run(["openssl", "rehash", str(capath)], check=True, capture_output=True)
    paths = ssl.get_default_verify_paths()
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths._replace(capath=str(capath)))

    def handshake(ca: trustme.CA) -> None:
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("localhost").configure_cert(server_ctx)
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                tls.client_context().wrap_socket(raw, server_hostname="localhost"),
            ):
                pass
        finally:
            thread.join(5)
            listener.close()

    assert tls._hashed_ca_dir() == str(capath)
    handshake(system_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(other_ca)
