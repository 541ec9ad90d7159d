"""A throwaway CA for the lab: one CA, and one server certificate (and key) per lab BMC address.

Each BMC has its own certificate, as real ones do, so a pinned fingerprint fits one BMC only. The
CA's certificate is written where the operator (or a test) can give it to pvcctl as `--ca-bundle`;
the keys never leave the lab's state directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class LabPki:
    ca_path: Path
    leaves: dict[str, tuple[Path, Path]]  # host -> (certificate, key)

    @property
    def first_host(self) -> str:
        return next(iter(self.leaves))

    @property
    def cert_path(self) -> Path:
        return self.leaves[self.first_host][0]

    @property
    def key_path(self) -> Path:
        return self.leaves[self.first_host][1]

    def server_context(self, host: str | None = None) -> ssl.SSLContext:
        cert, key = self.leaves[host or self.first_host]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    def fingerprint(self, host: str | None = None) -> str:
        """SHA-256 of a host's certificate (DER), as `--fingerprint` takes it."""
        der = ssl.PEM_cert_to_DER_cert(self.leaves[host or self.first_host][0].read_text())
        return hashlib.sha256(der).hexdigest()


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_lab_pki(directory: Path, hosts: list[str]) -> LabPki:
    """Write ca.pem and, per host, bmc-<host>.pem and bmc-<host>-key.pem under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("pvcctl lab CA"))
        .issuer_name(_name("pvcctl lab CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    leaves: dict[str, tuple[Path, Path]] = {}
    for host in dict.fromkeys(hosts):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"pvcctl lab BMC {host}"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        safe = host.replace(":", "_")
        cert_path, key_path = directory / f"bmc-{safe}.pem", directory / f"bmc-{safe}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        leaves[host] = (cert_path, key_path)
    return LabPki(ca_path, leaves)
