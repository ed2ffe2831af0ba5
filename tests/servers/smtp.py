"""An aiosmtpd submission server for the tests, in its own thread with its own event loop.

By default it behaves like a strict submission server: STARTTLS is offered and required
before anything else (MAIL, AUTH), AUTH PLAIN/LOGIN checks a name -> password map, and
mail without AUTH is refused.  `implicit_tls=True` makes it a port-465 style server instead.

Every accepted message is recorded in `messages` (thread-safe).  With `lmtp_socket` set,
accepted mail for local users is also delivered into Dovecot over LMTP, so a test can send
with SMTP and read the message back over IMAP.  Recipients can be rejected one by one
(`reject_recipient`) and the reply to DATA can be replaced (`data_reply`).

asyncio sets TCP_NODELAY on its sockets, so the server itself never adds Nagle delays: a
stall seen by a client comes from the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .certs import CertAuthority
from .dovecot import DOMAIN
from .net import free_port


class _DropDeprecationNoise(logging.Filter):
    # aiosmtpd 1.4 warns about its own use of Session.login_data on every AUTH.
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropDeprecationNoise())


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None  # the AUTH identity, None if the client did not authenticate
    tls: bool


@dataclass
class _Rules:
    reject_rcpt: dict[str, str] = field(default_factory=dict)  # lowercased address -> reply
    data_reply: str | None = None


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_RCPT(
        self,
        smtp: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.server._rules.reject_rcpt.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        rules = self.server._rules
        if rules.data_reply is not None:
            return rules.data_reply
        content = envelope.original_content or b""
        if isinstance(content, str):  # only with decode_data=True, which we never set
            content = content.encode()
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=content,
            login=login.decode() if isinstance(login, bytes) else login,
            tls=session.ssl is not None or self.server.implicit_tls,
        )
        if self.server.lmtp_socket is not None:
            loop = asyncio.get_running_loop()
            error = await loop.run_in_executor(None, self.server._deliver_lmtp, received)
            if error:
                return f"451 4.3.0 local delivery failed: {error}"
        self.server._record(received)
        return "250 OK queued"


class _SMTP(SMTP):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if transport.get_extra_info("sslcontext") is not None:
            # aiosmtpd counts only STARTTLS as TLS (it checks `_tls_protocol`); on an
            # implicit-TLS port the connection is encrypted from the first byte, so AUTH may
            # be offered while `auth_require_tls` stays on.
            self._tls_protocol = True  # type: ignore[assignment]


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _SMTP(self.handler, **self.SMTP_kwargs)


class SMTPServer:
    """A test submission server on 127.0.0.1.

    `users` is a live name -> password map (e.g. `DovecotServer.passwords`); a client may
    log in as `name` or `name@tuimail.test`.  `port`, `host`, `ca_file` say where and whom
    to trust once started.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        certs: CertAuthority,
        *,
        users: Mapping[str, str],
        lmtp_socket: Path | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = True,
        auth_required: bool = True,
        max_size: int | None = 10 * 1024 * 1024,
        hostname: str = "smtp.tuimail.test",
    ) -> None:
        self.certs = certs
        self.ca_file = certs.ca_file
        self.users = users
        self.lmtp_socket = lmtp_socket
        self.implicit_tls = implicit_tls
        self.require_starttls = require_starttls and not implicit_tls
        self.auth_required = auth_required
        self.max_size = max_size
        self.hostname = hostname
        self.port = 0
        self.messages: list[Received] = []
        self.failed_logins: list[str] = []
        self.lmtp_errors: list[str] = []
        self._rules = _Rules()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SMTPServer:
        if self._controller is not None:
            return self
        tls = self.certs.server.server_context()
        server_kwargs: dict[str, Any] = {
            "authenticator": self._authenticate,
            "auth_required": self.auth_required,
            "auth_require_tls": True,
            "require_starttls": self.require_starttls,
            "data_size_limit": self.max_size,
            "ident": "tuimail test ESMTP",
        }
        if not self.implicit_tls:
            server_kwargs["tls_context"] = tls
        last: Exception | None = None
        for _attempt in range(3):
            port = free_port(self.host)
            controller = _Controller(
                _Handler(self),
                hostname=self.host,
                port=port,
                server_hostname=self.hostname,
                ssl_context=tls if self.implicit_tls else None,
                ready_timeout=10.0,
                **server_kwargs,
            )
            try:
                controller.start()
            except Exception as exc:  # port raced away: try another
                last = exc
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the test SMTP server: {last}")

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            with contextlib.suppress(Exception):
                controller.stop()

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded mail and every rule set by a previous test."""
        with self._lock:
            self.messages.clear()
            self.failed_logins.clear()
            self.lmtp_errors.clear()
            self._rules = _Rules()

    # ----------------------------------------------------------------- behaviour switches

    def reject_recipient(self, address: str, reply: str = "") -> None:
        """Refuse RCPT TO for `address` (default: a permanent 550)."""
        self._rules.reject_rcpt[address.lower()] = (
            reply or f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        )

    def set_data_reply(self, reply: str | None) -> None:
        """Answer every DATA with `reply` (e.g. "451 4.3.0 try later", "554 5.7.1 no")
        instead of accepting; None restores normal behaviour."""
        self._rules.data_reply = reply

    # ----------------------------------------------------------------- recorded mail

    def _record(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)

    def received(self) -> list[Received]:
        """A snapshot of the accepted messages, in order."""
        with self._lock:
            return list(self.messages)

    # ----------------------------------------------------------------- internals

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode(errors="replace")
        password = auth_data.password.decode(errors="replace")
        name = login.lower()
        if name.endswith("@" + DOMAIN):
            name = name[: -len(DOMAIN) - 1]
        expected = self.users.get(name)
        if expected is not None and expected == password:
            return AuthResult(success=True, auth_data=auth_data)
        with self._lock:
            self.failed_logins.append(login)
        return AuthResult(success=False, handled=False)

    def _deliver_lmtp(self, received: Received) -> str | None:
        """Deliver to each local recipient over LMTP; returns an error text or None.

        One transaction per recipient: LMTP answers DATA once per recipient and smtplib's
        LMTP class reads only one reply.  Recipients Dovecot does not know are skipped, as
        an MTA would relay them elsewhere.
        """
        assert self.lmtp_socket is not None
        try:
            with smtplib.LMTP(str(self.lmtp_socket), timeout=30) as lmtp:
                for rcpt in received.rcpt_tos:
                    try:
                        lmtp.sendmail(received.mail_from, [rcpt], received.data)
                    except smtplib.SMTPRecipientsRefused as exc:
                        code = next(iter(exc.recipients.values()))[0]
                        if code >= 500:
                            continue  # not a local user
                        raise
        except (OSError, smtplib.SMTPException) as exc:
            with self._lock:
                self.lmtp_errors.append(str(exc))
            return type(exc).__name__
        return None
