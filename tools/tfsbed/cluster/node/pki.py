"""Certificates for the real node, signed by the cluster CA that kwokctl created.

kubelet and kube-proxy authenticate with client certificates as a kubeadm node
does after its TLS bootstrap: ``system:node:<name>`` in ``system:nodes`` (the Node
authorizer's subject) and ``system:kube-proxy`` (bound to ``system:node-proxier``
by default). kubelet serves on the node address with a certificate for it, so the
apiserver and metrics-server can verify it against the same CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes


def subject_of(cert_pem: bytes) -> tuple[str, tuple[str, ...]]:
    """(CN, O...) of a PEM certificate: what the apiserver takes as user and groups."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return str(cn), orgs


def issue(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    common_name: str,
    organizations: tuple[str, ...] = (),
    *,
    client: bool = True,
    server_ips: tuple[str, ...] = (),
    server_names: tuple[str, ...] = (),
    now: datetime.datetime | None = None,
) -> Issued:
    """A fresh EC P-256 key and a certificate for it signed by the CA."""
    with warnings.catch_warnings():
        # kwokctl's CA has a negative serial number; cryptography warns but still loads it
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.datetime.now(datetime.timezone.utc)
    name = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    name.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = []
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if server_ips or server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
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
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    alt: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
    alt += [x509.DNSName(n) for n in server_names]
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    signer = ca_key
    cert = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    return Issued(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
