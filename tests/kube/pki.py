"""Certificates and keys for a throw-away test control plane.

One CA signs everything: the API server's serving certificate, the admin client certificate
(group ``system:masters``) and the controller-manager's client certificate. A separate RSA
key pair signs service-account tokens. Keys are small and short-lived because they only
ever protect a loopback cluster that lives for one test session.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=7)
FRONT_PROXY_CN = "front-proxy-client"


@dataclass(frozen=True)
class CertFiles:
    """Paths of one PEM certificate and its PEM private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterPKI:
    """Every file the control plane needs, all inside one directory."""

    ca: CertFiles
    apiserver: CertFiles
    admin: CertFiles
    controller_manager: CertFiles
    front_proxy: CertFiles
    sa_key: Path
    sa_pub: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _sign(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    is_ca: bool = False,
    server: bool = False,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pair(
    directory: Path, stem: str, cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> CertFiles:
    files = CertFiles(directory / f"{stem}.crt", directory / f"{stem}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, files.key)
    return files


def create_pki(directory: Path, extra_ips: tuple[str, ...] = ()) -> ClusterPKI:
    """Create a CA, the serving/client certificates and the service-account key pair.

    The API server's certificate names loopback, ``10.0.0.1`` and ``extra_ips`` (e.g. the
    address of a real node's network namespace and its service range's first address).

    The admin certificate's subject is ``CN=smepulse-admin, O=system:masters`` (full
    cluster-admin under RBAC); the controller-manager is also in ``system:masters`` because it
    runs every controller loop with its own credential (no per-controller service accounts).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_name = _name("smepulse-test-ca")
    ca_cert = _sign(ca_name, ca_key.public_key(), ca_name, ca_key, is_ca=True)
    ca = _write_pair(directory, "ca", ca_cert, ca_key)

    server_key = _new_key()
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        *(
            x509.IPAddress(ipaddress.ip_address(ip))
            for ip in dict.fromkeys(extra_ips)
            if ip not in ("127.0.0.1", "10.0.0.1")
        ),
    ]
    server_cert = _sign(
        _name("kube-apiserver"), server_key.public_key(), ca_name, ca_key, server=True, sans=sans
    )
    apiserver = _write_pair(directory, "apiserver", server_cert, server_key)

    def client(stem: str, common_name: str) -> CertFiles:
        key = _new_key()
        cert = _sign(_name(common_name, "system:masters"), key.public_key(), ca_name, ca_key)
        return _write_pair(directory, stem, cert, key)

    admin = client("admin", "smepulse-admin")
    controller_manager = client("controller-manager", "system:kube-controller-manager")
    # The aggregation layer's proxy identity (--proxy-client-cert-file); also makes the
    # extension-apiserver-authentication ConfigMap complete, which controller-manager reads.
    proxy_key = _new_key()
    proxy_cert = _sign(_name(FRONT_PROXY_CN), proxy_key.public_key(), ca_name, ca_key)
    front_proxy = _write_pair(directory, "front-proxy-client", proxy_cert, proxy_key)

    sa = _new_key()
    sa_key = directory / "sa.key"
    sa_pub = directory / "sa.pub"
    _write_key(sa, sa_key)
    sa_pub.write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ClusterPKI(ca, apiserver, admin, controller_manager, front_proxy, sa_key, sa_pub)


def issue_client_cert(
    ca: CertFiles, directory: Path, stem: str, common_name: str, organization: str | None
) -> CertFiles:
    """A client certificate signed by the CA in ``ca`` (e.g. for a kubelet or kube-proxy)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey), f"{ca.key} is not an RSA key"
    key = _new_key()
    cert = _sign(_name(common_name, organization), key.public_key(), ca_cert.subject, ca_key)
    return _write_pair(directory, stem, cert, key)
