"""SMTP submission with aiosmtplib: required STARTTLS (or implicit TLS), AUTH, and one
transaction per message with per-recipient results.

Policy:
- `tls = "starttls"` means STARTTLS is required (`start_tls=True`): a server that does not
  offer it, refuses it, or fails the handshake gets no AUTH and no MAIL FROM. `implicit`
  is TLS from the first byte (465). Plaintext only where `tls.context_for` allows it
  (loopback + allow_plaintext). Certificates are always verified (`tls.client_context`).
- All or nothing per message: a message goes to the DATA phase only when the server has
  accepted *every* RCPT. If any recipient is refused, the transaction is reset and the
  message is delivered to nobody; the result lists each address with the server's reply.
  So a message is either delivered to all of its recipients or to none, and retrying it can
  never deliver a second copy to those who already got one (Thunderbird and msmtp behave
  the same way).
- The caller's `before_data` hook runs just before the DATA command (the outbox records the
  attempt durably there). After the message body has been written, a lost connection or a
  missing final reply makes the outcome unknown: `DeliveryUncertain`, never a retry.
- The DATA payload is built here (`data_payload`): every line ending becomes CRLF and every
  line starting with "." is stuffed, whatever the input, so a body containing `\\n.\\n`
  (an SMTP smuggling attempt) cannot end the DATA early.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal, NamedTuple

import aiosmtplib

from tuimail import secrets
from tuimail.backends.tls import context_for, describe_error, set_nodelay
from tuimail.config import OutgoingConfig
from tuimail.errors import (
    AuthError,
    ExitCode,
    MessageTooLarge,
    NetworkError,
    NetworkTimeout,
    ProtocolError,
    TLSError,
    TuimailError,
)
from tuimail.models import TLSMode
from tuimail.secrets import Secret

__all__ = [
    "DeliveryUncertain",
    "MessageNotSendable",
    "RecipientStatus",
    "SMTPClient",
    "SendResult",
    "choose_mechanism",
    "data_payload",
    "envelope_address",
    "oauthbearer_initial",
    "secret_provider",
]

# What the client says in EHLO. Like msmtp: not the machine's name (that would leak into
# the Received header of every message) and no DNS lookup (socket.getfqdn can hang).
EHLO_NAME = "localhost"
# RFC 5321 4.5.3.2.6 suggests 10 minutes for the reply to the final "."; a shorter wait
# turns a slow server into an "uncertain" outcome, so this is longer than the command timeout.
MIN_DATA_TIMEOUT = 60.0

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
_QUOTED_LOCAL = re.compile(r'^"(?:[^"\\]|\\.)*"(?=@)')


# ----------------------------------------------------------------------------- pure parts


def data_payload(raw: bytes) -> bytes:
    """The bytes sent after DATA's 354: CRLF line endings, dot-stuffed, with the terminator.

    Every CR, LF and CRLF becomes CRLF first, so no lone `\\n.\\n` or `\\r.\\r` survives to
    be read as the end of data by a lenient server; then every line starting with "." gets
    a second dot (RFC 5321 4.5.2).
    """
    text = _LINE_ENDINGS.sub(b"\r\n", raw)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return _LEADING_DOT.sub(b"..", text) + b".\r\n"


def envelope_address(address: str, smtputf8: bool) -> str:
    """The address for MAIL FROM / RCPT TO.

    ASCII addresses pass unchanged. A non-ASCII domain with an ASCII local part is sent as
    IDNA (xn--...) when the server lacks SMTPUTF8; a non-ASCII local part needs SMTPUTF8.
    Raises ValueError for an address that cannot be sent.
    """
    unquoted = _QUOTED_LOCAL.sub("", address, count=1)
    if re.search(r"[\x00-\x1f\x7f]", address) or re.search(r"[\s<>]", unquoted):
        raise ValueError(f"{address!r} contains characters not allowed in an address")
    if address.isascii() or smtputf8:
        return address
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii():
        raise ValueError(
            f"{address!r} has a non-ASCII local part, which needs a server with SMTPUTF8"
        )
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        raise ValueError(f"{address!r}: the domain is not a valid internationalized name") from None


def _header_block(raw: bytes) -> bytes:
    end = raw.find(b"\n\n")
    crlf_end = raw.find(b"\r\n\r\n")
    ends = [e for e in (end, crlf_end) if e >= 0]
    return raw[: min(ends)] if ends else raw


def needs_smtputf8(sender: str, recipients: Sequence[str], raw: bytes) -> bool:
    """True when the envelope or the header block cannot be sent as ASCII.

    A non-ASCII domain alone does not count: it can go out as IDNA.
    """
    if not _header_block(raw).isascii():
        return True
    for address in (sender, *recipients):
        local = address.rpartition("@")[0]
        if not local.isascii():
            return True
    return False


def choose_mechanism(configured: str, offered: Sequence[str], have_token: bool) -> str:
    """The AUTH mechanism to use (lower case), or "" for none.

    `configured` is the account's `auth` setting; `offered` the server's AUTH list. With
    "auto", an OAuth2 token command picks XOAUTH2 or OAUTHBEARER, otherwise PLAIN then
    LOGIN. A server that offers no AUTH at all (a trusted relay) gets none; an explicit
    setting the server does not offer raises AuthError.
    """
    offered_set = {m.lower() for m in offered}
    if configured != "auto":
        if configured not in offered_set:
            listed = ", ".join(sorted(offered_set)).upper() or "none"
            raise AuthError(
                f"The server does not offer AUTH {configured.upper()} (it offers: {listed}). "
                'Set auth = "auto" or one of those.'
            )
        return configured
    if not offered_set:
        return ""
    preferences = ("xoauth2", "oauthbearer") if have_token else ("plain", "login", "cram-md5")
    for mechanism in preferences:
        if mechanism in offered_set:
            return mechanism
    listed = ", ".join(sorted(offered_set)).upper()
    kind = "an OAuth2 token" if have_token else "a password"
    raise AuthError(
        f"The server offers no way to log in with {kind} that tuimail knows (it offers: {listed})."
    )


def oauthbearer_initial(user: str, token: str, host: str, port: int) -> bytes:
    """The base64 initial response of AUTH OAUTHBEARER (RFC 7628)."""
    gs2 = f"n,a={user.replace('=', '=3D').replace(',', '=2C')},"
    text = f"{gs2}\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(text.encode("utf-8"))


# ----------------------------------------------------------------------------- results


# NamedTuples rather than dataclasses: this module is on the path of every `tuimail send`,
# and a dataclass costs ~0.5 ms to create at import.
class RecipientStatus(NamedTuple):
    address: str
    code: int
    message: str  # the server's text, unsanitized: sanitize before printing

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300


Stage = Literal["MAIL", "RCPT", "DATA", "done"]


class SendResult(NamedTuple):
    """The outcome of one message's transaction (a connection-level failure raises instead).

    `stage` is where it ended: "done" when the server accepted the data, else the command
    that was refused. `code`/`message` are the deciding reply.
    """

    stage: Stage
    code: int
    message: str
    recipients: tuple[RecipientStatus, ...] = ()

    @property
    def delivered(self) -> bool:
        return self.stage == "done" and 200 <= self.code < 300

    @property
    def rejected(self) -> tuple[RecipientStatus, ...]:
        return tuple(r for r in self.recipients if not r.accepted)

    @property
    def transient(self) -> bool:
        """True when every refusal was temporary (4xx): worth retrying unchanged."""
        if self.delivered:
            return False
        codes = [r.code for r in self.rejected] if self.stage == "RCPT" else [self.code]
        return bool(codes) and all(400 <= c < 500 for c in codes)

    def describe(self) -> str:
        """One line per problem, for the user (server text included: sanitize to print)."""
        if self.delivered:
            return f"accepted: {self.code} {self.message}".strip()
        if self.stage == "RCPT":
            lines = [f"{r.address}: {r.code} {_one_line(r.message)}" for r in self.rejected]
            head = "the server refused these recipients, so nobody was sent the message:"
            return "\n".join([head, *lines])
        reply = f"{self.code} {_one_line(self.message)}"
        return f"the server refused the message at {self.stage}: {reply}"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


class MessageNotSendable(ProtocolError):
    """This message cannot go to this server as it is (e.g. it needs SMTPUTF8)."""

    default_title = "Message not sendable"


class DeliveryUncertain(TuimailError):
    """The message was transmitted but the server's final reply never came."""

    exit_code = ExitCode.UNCERTAIN
    default_title = "Delivery uncertain"


# ----------------------------------------------------------------------------- credentials

SecretFn = Callable[[], Secret]


def secret_provider(account: str, server: OutgoingConfig) -> tuple[SecretFn, bool]:
    """(callable returning the password or token, is_token) for an account's SMTP server.

    The callable runs only when the server asks for AUTH, so an unreachable server never
    triggers a password prompt.
    """
    if server.oauth2_token_command:
        return (lambda: secrets.get_oauth2_token(account, server.oauth2_token_command)), True
    return (lambda: secrets.get_password(account, "outgoing", server.password_command)), False


# ----------------------------------------------------------------------------- the client


class SMTPClient:
    """One SMTP connection: `connect()`, then `send()` any number of messages, `close()`.

    Connection-level failures raise TuimailError subclasses (NetworkError, TLSError,
    AuthError, ProtocolError) and leave the client closed; a refused message returns a
    SendResult and the connection stays usable for the next one.
    """

    def __init__(
        self,
        server: OutgoingConfig,
        *,
        account: str = "",
        secret: SecretFn | None = None,
        secret_is_token: bool | None = None,
        secret_in_thread: bool = True,
    ) -> None:
        self.server = server
        self.account = account
        default_secret, default_is_token = secret_provider(account, server)
        self._secret = secret or default_secret
        self._is_token = default_is_token if secret_is_token is None else secret_is_token
        self._in_thread = secret_in_thread
        self._smtp: aiosmtplib.SMTP | None = None
        self.authenticated_with = ""  # the AUTH mechanism used, "" when none

    # -- connection

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    @property
    def encrypted(self) -> bool:
        if not self.connected or self._smtp is None:
            return False
        return self._smtp.get_transport_info("sslcontext") is not None

    def supports(self, extension: str) -> bool:
        return self._smtp is not None and self._smtp.supports_extension(extension)

    @property
    def max_size(self) -> int:
        """The server's SIZE limit in bytes, 0 when it gave none."""
        if self._smtp is None:
            return 0
        value = self._smtp.esmtp_extensions.get("size", "").strip()
        return int(value) if value.isdigit() else 0

    async def connect(self) -> None:
        server = self.server
        context = context_for(server)  # raises ConfigError for a refused plaintext link
        smtp = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            local_hostname=EHLO_NAME,
            timeout=server.timeout,
            use_tls=server.tls is TLSMode.IMPLICIT,
            # Required, never None (the library's opportunistic default, which a
            # man-in-the-middle defeats by deleting STARTTLS from the EHLO reply).
            start_tls=server.tls is TLSMode.STARTTLS,
            tls_context=context,
        )
        try:
            await smtp.connect()
            set_nodelay(smtp.get_transport_info("socket"))
            if context is not None and smtp.get_transport_info("sslcontext") is None:
                # Defence in depth: never reach AUTH/MAIL on a link that should be encrypted.
                raise TLSError(f"{self._where()} is not encrypted although TLS was required.")
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()  # after STARTTLS, forget the plaintext EHLO and ask again
            self._smtp = smtp
            await self._authenticate()
        except Exception as exc:
            smtp.close()
            self._smtp = None
            raise self._connect_error(exc) from None
        except BaseException:
            smtp.close()
            self._smtp = None
            raise

    def _where(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def _connect_error(self, exc: BaseException) -> TuimailError:
        where = self._where()
        if isinstance(exc, TuimailError):
            return exc
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            reply = f"{exc.code} {_one_line(exc.message)}"
            if self._is_token:
                hint = "Check that oauth2_token_command prints a fresh access token."
            else:
                hint = (
                    f"Check the username and password of account {self.account!r} "
                    f"(tuimail password set {self.account} --outgoing)."
                )
            return AuthError(f"{where} refused the login ({reply}). {hint}")
        if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
            return NetworkTimeout(f"{where} did not answer in time. The message stays queued.")
        if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
            reply = f"{exc.code} {_one_line(exc.message)}"
            return NetworkError(f"{where} is not accepting mail now ({reply}).")
        if isinstance(exc, aiosmtplib.SMTPConnectError):
            cause = exc.__cause__
            return self._connect_error(cause) if cause is not None else self._describe(exc)
        if isinstance(exc, aiosmtplib.SMTPHeloError):
            return ProtocolError(f"{where} refused EHLO ({exc.code} {_one_line(exc.message)}).")
        if (
            isinstance(exc, aiosmtplib.SMTPResponseException)
            and self._smtp is None
            and self.server.tls is TLSMode.STARTTLS
            and exc.code > 0  # aiosmtplib's own -1 ("response too long") is no server reply
        ):
            # After the greeting and EHLO, the only other command of the connect phase.
            return TLSError(
                f"{where} refused STARTTLS ({exc.code} {_one_line(exc.message)}). Nothing was "
                "sent; the message stays queued.",
                "STARTTLS refused",
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return ProtocolError(f"{where} answered {exc.code} {_one_line(exc.message)}.")
        if isinstance(exc, aiosmtplib.SMTPTimeoutError):
            return NetworkTimeout(f"{where} did not answer in time.")
        if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
            return NetworkError(f"{where} closed the connection. The message stays queued.")
        if isinstance(exc, aiosmtplib.SMTPException) and "starttls" in exc.message.lower():
            return TLSError(
                f"{where} does not offer STARTTLS, which this account requires (someone may "
                "be stripping it from the connection). Nothing was sent; the message stays "
                'queued. If the server uses TLS from the start, set tls = "implicit".',
                "STARTTLS not offered",
            )
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            # The peer hung up (a FIN without close_notify): a lost connection, to be
            # retried, not a TLS setting to fix.
            return NetworkError(f"The connection to {where} was lost. The message stays queued.")
        if isinstance(exc, ssl.SSLError | OSError):
            return self._describe(exc)
        if isinstance(exc, aiosmtplib.SMTPException):
            return ProtocolError(f"{where}: {_one_line(exc.message)}.")
        return self._describe(exc)

    def _describe(self, exc: BaseException) -> TuimailError:
        return describe_error(exc, self.server.host, self.server.port, "SMTP server")

    async def _authenticate(self) -> None:
        smtp = self._require()
        mechanism = choose_mechanism(self.server.auth, smtp.server_auth_methods, self._is_token)
        if not mechanism:
            return
        if self.server.tls is not TLSMode.NONE and smtp.get_transport_info("sslcontext") is None:
            raise TLSError(f"Refusing to log in to {self._where()} over an unencrypted link.")
        # A password command can take seconds (a pinentry prompt): off the event loop,
        # unless the caller owns the loop and does not mind (the command line).
        secret = await asyncio.to_thread(self._secret) if self._in_thread else self._secret()
        user = self.server.username
        if mechanism == "plain":
            await smtp.auth_plain(user, secret.value)
        elif mechanism == "login":
            await smtp.auth_login(user, secret.value)
        elif mechanism == "cram-md5":
            await smtp.auth_crammd5(user, secret.value)
        elif mechanism == "xoauth2":
            await smtp.auth_xoauth2(user, secret.value)
        elif mechanism == "oauthbearer":
            initial = oauthbearer_initial(user, secret.value, self.server.host, self.server.port)
            reply = await smtp.execute_command(b"AUTH", b"OAUTHBEARER", initial)
            if reply.code == 334:  # an error challenge: answer ^A to get the final status
                reply = await smtp.execute_command(b"AQ==")
            if reply.code != 235:
                raise aiosmtplib.SMTPAuthenticationError(reply.code, reply.message)
        else:
            raise AuthError(f"AUTH {mechanism.upper()} is not supported by tuimail.")
        self.authenticated_with = mechanism

    def _require(self) -> aiosmtplib.SMTP:
        if self._smtp is None or not self._smtp.is_connected:
            raise NetworkError(f"Not connected to {self._where()}.")
        return self._smtp

    async def close(self) -> None:
        """QUIT politely; never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await asyncio.wait_for(smtp.quit(), timeout=min(self.server.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            smtp.close()

    async def __aenter__(self) -> SMTPClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- one message

    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        before_data: Callable[[], object] | None = None,
    ) -> SendResult:
        """Send one message: MAIL, every RCPT, then DATA only if all were accepted.

        `before_data` runs (synchronously) right before the DATA command. Raises
        NetworkError and friends when the connection fails before the data was sent (the
        message was not delivered), DeliveryUncertain when it failed after, ValueError for
        an address that cannot be put on the wire, and ProtocolError for SMTPUTF8 needs the
        server cannot meet.
        """
        smtp = self._require()
        if not recipients:
            raise ValueError("a message needs at least one recipient")
        utf8 = needs_smtputf8(sender, recipients, raw)
        if utf8 and not smtp.supports_extension("smtputf8"):
            raise MessageNotSendable(
                f"{self._where()} does not support SMTPUTF8, which this message needs (an "
                "address with non-ASCII characters before the @). Use an ASCII address.",
                "SMTPUTF8 not supported",
            )
        envelope_from = envelope_address(sender, utf8) if sender else ""
        envelope_to = [envelope_address(r, utf8) for r in recipients]
        payload = data_payload(raw)
        limit = self.max_size
        if limit and len(payload) > limit:
            raise MessageTooLarge(
                f"The message is {len(payload):,} bytes; {self._where()} accepts at most {limit:,}."
            )
        options: list[str] = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(payload)}")
        if not raw.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if utf8:
            options.append("SMTPUTF8")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            try:
                await smtp.mail(envelope_from, options=options, encoding=encoding)
            except aiosmtplib.SMTPSenderRefused as exc:
                await self._reset()
                return SendResult("MAIL", exc.code, exc.message)
            statuses: list[RecipientStatus] = []
            for original, address in zip(recipients, envelope_to, strict=True):
                try:
                    reply = await smtp.rcpt(address, encoding=encoding)
                    statuses.append(RecipientStatus(original, reply.code, reply.message))
                except aiosmtplib.SMTPRecipientRefused as exc:
                    statuses.append(RecipientStatus(original, exc.code, exc.message))
            if not all(s.accepted for s in statuses):
                await self._reset()
                worst = max((s for s in statuses if not s.accepted), key=lambda s: s.code)
                return SendResult("RCPT", worst.code, worst.message, tuple(statuses))
            if before_data is not None:
                try:
                    before_data()
                except BaseException:
                    await self._reset()  # leave the connection clean for the next message
                    raise
            reply = await smtp.execute_command(b"DATA")
            if reply.code != 354:
                await self._reset()
                return SendResult("DATA", reply.code, reply.message, tuple(statuses))
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            self._drop()
            raise self._connect_error(exc) from None
        except aiosmtplib.SMTPResponseException as exc:
            self._drop()
            answer = f"{exc.code} {_one_line(exc.message)}"
            raise ProtocolError(f"{self._where()} answered {answer}.") from None
        return await self._transmit(payload, tuple(statuses))

    async def _transmit(self, payload: bytes, statuses: tuple[RecipientStatus, ...]) -> SendResult:
        """Write the message after 354 and read the final reply; from here on a failure
        means we do not know whether the server took the message."""
        smtp = self._require()
        protocol = smtp.protocol
        if protocol is None:
            raise NetworkError(f"Not connected to {self._where()}.")
        timeout = max(self.server.timeout, MIN_DATA_TIMEOUT)
        try:
            # read_response() right after write(), with no await between them: the reply
            # cannot arrive before the protocol is listening for it.
            protocol.write(payload)
            reply = await protocol.read_response(timeout=timeout)
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryUncertain(
                f"The connection to {self._where()} failed after the message was sent and "
                f"before the server confirmed it ({type(exc).__name__}). It may or may not "
                "have been delivered: check with a recipient before sending it again."
            ) from None
        if reply.code == 421:
            self._drop()
        stage: Stage = "done" if 200 <= reply.code < 300 else "DATA"
        return SendResult(stage, reply.code, reply.message, statuses)

    async def _reset(self) -> None:
        """RSET after a refused transaction; a failing RSET just drops the connection."""
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()
