"""A private certificate authority for the test servers, and deliberately bad certificates.

The CA is made with trustme; leaf certificates are built here with `cryptography` so that the
one for 127.0.0.1 can carry `DNS:127.0.0.1` beside `IP:127.0.0.1` (trustme turns anything that
looks like an address into an IP name only, and some clients match the host string against DNS
names only).  Everything is written to files because Dovecot and `ssl` want paths.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# What a correct certificate for the loopback test servers names.
LOOPBACK_NAMES: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")

_PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CertFiles:
    """A server certificate (leaf first, then its chain) and its private key, as PEM files."""

    __test__ = False

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting this certificate (for fake servers)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _san_entries(names: tuple[str, ...], dns_for_ips: bool) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            entries.append(x509.DNSName(name))
            continue
        entries.append(x509.IPAddress(address))
        # Only IPv4 literals are valid-looking DNS names; "::1" is not a hostname at all.
        if dns_for_ips and address.version == 4:
            entries.append(x509.DNSName(name))
    return entries


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o644)  # Dovecot's master reads these as root; login processes never do.
    return path


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertAuthority:
    """A throwaway CA in `directory`, with a good server certificate for the loopback names.

    `ca_file` is what client code gets as its `ca_file`; `server` is what the real test
    servers present.  The other methods make certificates that a correct client must refuse.
    """

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="tuimail test CA")
        self.ca_file = _write_pem(directory / "ca.pem", self._ca.cert_pem.bytes())
        ca_key = serialization.load_pem_private_key(self._ca.private_key_pem.bytes(), None)
        assert isinstance(ca_key, _PrivateKey)
        self._ca_key = ca_key
        self._ca_cert = x509.load_pem_x509_certificate(self._ca.cert_pem.bytes())
        self.server = self.issue(*LOOPBACK_NAMES, stem="server")

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def issue(
        self,
        *names: str,
        stem: str,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        dns_for_ips: bool = True,
    ) -> CertFiles:
        """A certificate signed by this CA for `names`, written as `<stem>.pem`/`<stem>.key`."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _build_leaf(
            key,
            names,
            issuer=self._ca_cert.subject,
            signer=self._ca_key,
            not_before=not_before,
            not_after=not_after,
            dns_for_ips=dns_for_ips,
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self._ca.cert_pem.bytes()
        return CertFiles(
            cert_file=_write_pem(self.directory / f"{stem}.pem", chain),
            key_file=_write_pem(self.directory / f"{stem}.key", _key_pem(key)),
        )

    # Certificates a verifying client must reject.

    def self_signed(self, stem: str = "self-signed") -> CertFiles:
        """Right names, but signed by its own key: no chain to the test CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        cert = _build_leaf(key, LOOPBACK_NAMES, issuer=subject, signer=key, subject=subject)
        return CertFiles(
            cert_file=_write_pem(
                self.directory / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM)
            ),
            key_file=_write_pem(self.directory / f"{stem}.key", _key_pem(key)),
        )

    def other_ca(self, stem: str = "other-ca") -> CertFiles:
        """Right names, signed by a different (untrusted) CA that is sent along in the chain."""
        other = CertAuthority(self.directory / stem)
        return other.server

    def wrong_host(self, stem: str = "wrong-host") -> CertFiles:
        """Signed by the test CA, but for another host name only."""
        return self.issue("mail.example.com", stem=stem)

    def expired(self, stem: str = "expired") -> CertFiles:
        """Signed by the test CA for the right names, but expired a day ago."""
        now = dt.datetime.now(dt.UTC)
        return self.issue(
            *LOOPBACK_NAMES,
            stem=stem,
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        )

    def not_yet_valid(self, stem: str = "not-yet-valid") -> CertFiles:
        """Signed by the test CA for the right names, valid only from tomorrow."""
        now = dt.datetime.now(dt.UTC)
        return self.issue(
            *LOOPBACK_NAMES,
            stem=stem,
            not_before=now + dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=30),
        )


def _build_leaf(
    key: _PrivateKey,
    names: tuple[str, ...],
    *,
    issuer: x509.Name,
    signer: _PrivateKey,
    subject: x509.Name | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    dns_for_ips: bool = True,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    if subject is None:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tuimail tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "none"),
            ]
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer != subject:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_san_entries(names, dns_for_ips)), critical=False
        )
    return builder.sign(signer, hashes.SHA256())
