"""TLS and STARTTLS attacks, one table for IMAP, POP3 and SMTP.

A scripted fake server (tests/servers/fake.py) plays each attack against the real client
of the protocol: `ImapConnection`, `Pop3Client`, `SMTPClient` (connect, log in, and for
SMTP send a message). Every row is one protocol and one attack:

- STARTTLS missing from the capabilities, refused, answered with a continuation;
- a response injected before or after the STARTTLS answer, in the same packet or a later
  one (the injected line announces a capability `X-INJECTED`);
- PREAUTH on a STARTTLS account, referrals (IMAP);
- bad certificates (self-signed, wrong host, expired, not yet valid, another CA), with
  STARTTLS and with implicit TLS; a plaintext server on an implicit-TLS port.

Oracle: the password, every command but the few allowed before TLS (capabilities,
STARTTLS, quit) and the mail data are never sent in the clear; nothing injected before
the handshake is believed; where the client gives up, it raises `TLSError` with a
message that names the server and is safe to print.
"""

# ruff: noqa: E501  (one case per row)
from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pytest
from adversarial_support import ConnectionCounter, terminal_problems
from servers.certs import CertAuthority
from servers.fake import FakeServer, Step, close, expect, send, sleep, starttls

from tuimail.backends.imap import ImapConnection
from tuimail.backends.pop3 import Pop3Client
from tuimail.backends.smtp import SMTPClient
from tuimail.backends.tls import client_context
from tuimail.config import IncomingConfig, OutgoingConfig
from tuimail.errors import TLSError, TuimailError
from tuimail.models import Protocol, TLSMode
from tuimail.secrets import Secret

FakeFactory = Callable[..., FakeServer]
USER = "alice"
PASSWORD = "pw-Adversarial-4417"
MAIL_MARK = "MAILDATA-7c1e"
MESSAGE = (
    f"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: {MAIL_MARK}\r\n\r\n"
    f"body {MAIL_MARK}\r\n"
).encode()


@dataclass(frozen=True)
class Kit:
    """How one protocol says the things the attacks need."""

    name: str
    greeting: bytes
    caps_cmd: bytes
    caps_with_starttls: bytes
    caps_without_starttls: bytes
    starttls_cmd: bytes
    starttls_ok: bytes
    refusals: tuple[bytes, ...]
    continuation: bytes
    injected: bytes  # announces X-INJECTED
    after_tls: tuple[Step, ...]  # from the capability request over TLS to the goodbye
    allowed_in_clear: tuple[bytes, ...]  # commands a client may send before TLS


_PLAIN_B64 = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())

IMAP = Kit(
    name="imap",
    greeting=b"* OK fake IMAP ready\r\n",
    caps_cmd=b"CAPABILITY",
    caps_with_starttls=b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK done\r\n",
    caps_without_starttls=b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n",
    starttls_cmd=b"STARTTLS",
    starttls_ok=b"{tag} OK begin TLS\r\n",
    refusals=(b"{tag} NO not now\r\n", b"{tag} BAD what\r\n"),
    continuation=b"+ go ahead\r\n",
    injected=b"* CAPABILITY IMAP4rev1 X-INJECTED AUTH=PLAIN SASL-IR\r\n",
    # Over TLS the server offers no SASL-IR: a client that believed the injected capability
    # line would send the credentials on the AUTHENTICATE line, which this script refuses.
    after_tls=(
        expect(b"CAPABILITY"),
        send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n"),
        expect(re.compile(rb"^\S+ AUTHENTICATE PLAIN\r\n$")),
        send(b"+ \r\n"),
        expect(_PLAIN_B64, data=True),
        send(b"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n"),
        expect(b"LOGOUT"),
        send(b"* BYE bye\r\n{tag} OK done\r\n"),
        close(),
    ),
    allowed_in_clear=(b"CAPABILITY", b"STARTTLS", b"LOGOUT"),
)

POP3 = Kit(
    name="pop3",
    greeting=b"+OK fake POP3 ready\r\n",
    caps_cmd=b"CAPA",
    caps_with_starttls=b"+OK\r\nSTLS\r\nUSER\r\nUIDL\r\n.\r\n",
    caps_without_starttls=b"+OK\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n",
    starttls_cmd=b"STLS",
    starttls_ok=b"+OK begin TLS\r\n",
    refusals=(b"-ERR not now\r\n",),
    continuation=b"+ \r\n",
    injected=b"+OK\r\nX-INJECTED\r\nUSER\r\n.\r\n",
    after_tls=(
        expect(b"CAPA"),
        send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"),
        expect(b"USER alice"),
        send(b"+OK\r\n"),
        expect(b"PASS "),
        send(b"+OK logged in\r\n"),
        expect(b"QUIT"),
        send(b"+OK bye\r\n"),
        close(),
    ),
    allowed_in_clear=(b"CAPA", b"STLS", b"QUIT"),
)

SMTP = Kit(
    name="smtp",
    greeting=b"220 fake ESMTP\r\n",
    caps_cmd=b"EHLO",
    caps_with_starttls=b"250-fake\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
    caps_without_starttls=b"250-fake\r\n250 AUTH PLAIN\r\n",
    starttls_cmd=b"STARTTLS",
    starttls_ok=b"220 go ahead\r\n",
    refusals=(b"454 TLS not available\r\n", b"502 not implemented\r\n"),
    continuation=b"354 go ahead\r\n",
    injected=b"250-X-INJECTED\r\n250 AUTH PLAIN\r\n",
    after_tls=(
        expect(b"EHLO"),
        send(b"250-fake\r\n250 AUTH PLAIN\r\n"),
        expect(b"AUTH PLAIN"),
        send(b"235 ok\r\n"),
        expect(b"MAIL FROM"),
        send(b"250 ok\r\n"),
        expect(b"RCPT TO"),
        send(b"250 ok\r\n"),
        expect(b"DATA"),
        send(b"354 go\r\n"),
        *[expect(None, data=True) for _ in range(MESSAGE.count(b"\n") + 1)],  # lines and "."
        send(b"250 queued\r\n"),
        expect(b"QUIT"),
        send(b"221 bye\r\n"),
        close(),
    ),
    allowed_in_clear=(b"EHLO", b"HELO", b"STARTTLS", b"QUIT", b"RSET"),
)

KITS = {"imap": IMAP, "pop3": POP3, "smtp": SMTP}


# ----------------------------------------------------------------------------- drivers


def _incoming(
    server: FakeServer, ca: CertAuthority, tls: TLSMode, protocol: Protocol
) -> IncomingConfig:
    return IncomingConfig(
        host=server.host,
        port=server.port,
        tls=tls,
        username=USER,
        ca_file=ca.ca_file,
        protocol=protocol,
        timeout=2.0,
    )


def _run_imap(server: FakeServer, ca: CertAuthority, tls: TLSMode) -> frozenset[str]:
    conn = ImapConnection(_incoming(server, ca, tls, Protocol.IMAP))
    conn.connect()
    try:
        conn.login(USER, password=Secret(PASSWORD))
        return conn.caps
    finally:
        conn.logout()


def _run_pop3(server: FakeServer, ca: CertAuthority, tls: TLSMode) -> frozenset[str]:
    client = Pop3Client(
        server.host, server.port, tls=tls, context=client_context(ca.ca_file), timeout=2
    )
    client.connect()
    try:
        client.login(USER, Secret(PASSWORD))
        return frozenset(client.capabilities.names)
    finally:
        client.close()


def _run_smtp(server: FakeServer, ca: CertAuthority, tls: TLSMode) -> frozenset[str]:
    config = OutgoingConfig(
        host=server.host, port=server.port, tls=tls, username=USER, ca_file=ca.ca_file, timeout=2.0
    )

    async def go() -> frozenset[str]:
        client = SMTPClient(
            config, account="fake", secret=lambda: Secret(PASSWORD), secret_is_token=False
        )
        await client.connect()
        try:
            caps = frozenset(n for n in ("x-injected", "auth", "starttls") if client.supports(n))
            result = await client.send("alice@example.org", ["bob@example.org"], MESSAGE)
            assert result.delivered, result.describe()
            return frozenset(c.upper() for c in caps)
        finally:
            await client.close()

    return asyncio.run(go())


DRIVERS: dict[str, Callable[[FakeServer, CertAuthority, TLSMode], frozenset[str]]] = {
    "imap": _run_imap,
    "pop3": _run_pop3,
    "smtp": _run_smtp,
}


# ----------------------------------------------------------------------------- attacks

Outcome = Literal["tls-error", "safe"]  # "safe": may succeed, but only safely


@dataclass(frozen=True)
class Attack:
    name: str
    protocols: tuple[str, ...]
    outcome: Outcome
    script: Callable[[Kit, CertAuthority], list[Step]]
    implicit: Callable[[CertAuthority], object] | None = None  # server cert for implicit TLS


def _pre(kit: Kit, caps: bytes | None = None) -> list[Step]:
    return [
        send(kit.greeting),
        expect(kit.caps_cmd),
        send(caps or kit.caps_with_starttls),
        expect(kit.starttls_cmd),
    ]


def _good(ca: CertAuthority) -> object:
    return ca.server.server_context()


def _bad_cert(kind: str) -> Callable[[CertAuthority], object]:
    return lambda ca: getattr(ca, kind)().server_context()


def _starttls_with(kind: str) -> Callable[[Kit, CertAuthority], list[Step]]:
    return lambda kit, ca: [*_pre(kit), send(kit.starttls_ok), starttls(_bad_cert(kind)(ca))]  # type: ignore[arg-type]


def _implicit_script(kit: Kit, ca: CertAuthority) -> list[Step]:
    return [send(kit.greeting), *kit.after_tls]


BAD_CERTS = ("self_signed", "wrong_host", "expired", "not_yet_valid", "other_ca")
ALL = ("imap", "pop3", "smtp")

# fmt: off
ATTACKS: list[Attack] = [
    Attack("STARTTLS stripped from capabilities", ALL, "tls-error", lambda kit, ca: [send(kit.greeting), expect(kit.caps_cmd), send(kit.caps_without_starttls)]),
    *[Attack(f"STARTTLS refused {i}", ALL if i == 0 else ("imap", "smtp"), "tls-error", lambda kit, ca, i=i: [*_pre(kit), send(kit.refusals[i])]) for i in (0, 1)],  # type: ignore[misc]
    Attack("STARTTLS answered with a continuation", ALL, "tls-error", lambda kit, ca: [*_pre(kit), send(kit.continuation)]),
    Attack("injected before the answer, same packet", ALL, "safe", lambda kit, ca: [*_pre(kit), send(kit.injected + kit.starttls_ok), starttls(_good(ca)), *kit.after_tls]),  # type: ignore[arg-type]
    Attack("injected before the answer, earlier packet", ALL, "safe", lambda kit, ca: [*_pre(kit), send(kit.injected), sleep(0.1), send(kit.starttls_ok), starttls(_good(ca)), *kit.after_tls]),  # type: ignore[arg-type]
    Attack("injected after the answer, same packet", ALL, "safe", lambda kit, ca: [*_pre(kit), send(kit.starttls_ok + kit.injected), starttls(_good(ca)), *kit.after_tls]),  # type: ignore[arg-type]
    Attack("injected after the answer, later packet", ALL, "tls-error", lambda kit, ca: [*_pre(kit), send(kit.starttls_ok), sleep(0.1), send(kit.injected), starttls(_good(ca))]),  # type: ignore[arg-type]
    Attack("PREAUTH on a STARTTLS account", ("imap",), "tls-error", lambda kit, ca: [send(b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome\r\n"), expect(None), send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n{tag} OK done\r\n")]),
    *[Attack(f"STARTTLS then {kind.replace('_', ' ')} certificate", ALL, "tls-error", _starttls_with(kind)) for kind in BAD_CERTS],
    *[Attack(f"implicit TLS with {kind.replace('_', ' ')} certificate", ALL, "tls-error", _implicit_script, _bad_cert(kind)) for kind in BAD_CERTS],
    Attack("plaintext server on an implicit TLS port", ALL, "tls-error", lambda kit, ca: [send(kit.greeting), sleep(0.3)], lambda ca: None),
]
# fmt: on

# Rows that find a bug in another module: strict xfail until its owner fixes it.
BUGS: dict[tuple[str, str], str] = {}


def _params() -> list[object]:
    out = []
    for attack in ATTACKS:
        for protocol in attack.protocols:
            bug = BUGS.get((protocol, attack.name))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            out.append(pytest.param(protocol, attack, id=f"{protocol}: {attack.name}", marks=marks))
    return out


def _commands_in_clear(server: FakeServer) -> list[bytes]:
    """The command words the client sent before TLS (IMAP tags stripped)."""
    words = []
    for chunk in server.received:
        if chunk.tls:
            continue
        if chunk.data.startswith(b"\x16\x03"):
            break  # a TLS ClientHello to a server that does not speak TLS: encrypted from here
        parts = chunk.data.split()
        if server.protocol == "imap" and len(parts) > 1:
            parts = parts[1:]
        words.append(parts[0].upper() if parts else b"")
    return words


@pytest.mark.parametrize(("protocol", "attack"), _params())
def test_tls_attack(
    fake_server: FakeFactory, test_ca: CertAuthority, protocol: str, attack: Attack
) -> None:
    kit = KITS[protocol]
    script = attack.script(kit, test_ca)
    if attack.implicit is not None:
        context = attack.implicit(test_ca)
        server = fake_server(script, protocol=protocol, tls=context, strict=False)
        mode = TLSMode.IMPLICIT
    else:
        server = fake_server(script, protocol=protocol, strict=False)
        mode = TLSMode.STARTTLS

    error: TuimailError | None = None
    caps: frozenset[str] = frozenset()
    try:
        caps = DRIVERS[protocol](server, test_ca, mode)
    except TuimailError as exc:
        error = exc
    server.wait(closed=True, timeout=10)

    # Nothing secret, and no command but the harmless ones, ever crossed in the clear.
    server.assert_never_sent_in_clear(PASSWORD)
    server.assert_never_sent_in_clear(MAIL_MARK)
    in_clear = _commands_in_clear(server)
    assert set(in_clear) <= set(kit.allowed_in_clear), (
        f"sent in the clear: {in_clear}\n{server.transcript()}"
    )
    assert "X-INJECTED" not in caps, "a capability injected before TLS was believed"

    if attack.outcome == "tls-error":
        assert isinstance(error, TLSError), (
            f"expected TLSError, got {error!r}\n{server.transcript()}"
        )
    elif error is not None:
        assert isinstance(error, TLSError), f"expected success or TLSError, got {error!r}"
    if error is not None:
        message = str(error)
        assert f"{server.host}:{server.port}" in message or server.host in message, message
        assert not terminal_problems(message, single_line=False), message


# ----------------------------------------------------------------------------- referrals


def _tls_to_login(ca: CertAuthority) -> list[Step]:
    return [
        send(IMAP.greeting),
        expect(b"CAPABILITY"),
        send(IMAP.caps_with_starttls),
        expect(b"STARTTLS"),
        send(IMAP.starttls_ok),
        starttls(ca.server.server_context()),
        expect(b"CAPABILITY"),
        send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n{tag} OK done\r\n"),
    ]


BYE = [expect(b"LOGOUT"), send(b"* BYE bye\r\n{tag} OK done\r\n"), close()]

# (id, script for the referral URL)
# fmt: off
REFERRALS: list[tuple[str, Callable[[str, CertAuthority], list[Step]]]] = [
    ("greeting BYE with REFERRAL", lambda url, ca: [send(f"* BYE [REFERRAL {url}] moved\r\n".encode())]),
    ("login NO with REFERRAL", lambda url, ca: [*_tls_to_login(ca), expect(b"AUTHENTICATE"), send(f"{{tag}} NO [REFERRAL {url}] try there\r\n".encode()), *BYE]),
    ("SELECT NO with REFERRAL", lambda url, ca: [*_tls_to_login(ca), expect(b"AUTHENTICATE"), send(b"{tag} OK logged in\r\n"), expect(re.compile(rb"SELECT")), send(f"{{tag}} NO [REFERRAL {url}] elsewhere\r\n".encode()), *BYE]),
]
# fmt: on


@pytest.mark.parametrize(("name", "script"), REFERRALS, ids=[r[0] for r in REFERRALS])
def test_imap_referral_is_not_followed(
    fake_server: FakeFactory,
    test_ca: CertAuthority,
    name: str,
    script: Callable[[str, CertAuthority], list[Step]],
) -> None:
    target = ConnectionCounter()
    try:
        url = f"imap://{USER}@127.0.0.1:{target.port}/INBOX"
        server = fake_server(script(url, test_ca), protocol="imap", strict=False)
        conn = ImapConnection(_incoming(server, test_ca, TLSMode.STARTTLS, Protocol.IMAP))
        with pytest.raises(TuimailError) as caught:
            conn.connect()
            conn.login(USER, password=Secret(PASSWORD))
            conn.select("INBOX")
        if conn.connected:
            conn.logout()
        server.wait(closed=True, timeout=10)
        assert target.settle() == 0, "the client followed a referral"
        server.assert_never_sent_in_clear(PASSWORD)
        assert not terminal_problems(str(caught.value)), str(caught.value)
    finally:
        target.close()
