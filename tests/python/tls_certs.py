"""Certificates made inside the tests with `cryptography`: a CA, server certificates for
127.0.0.1, client certificates with a chosen subject, expired ones and ones from a CA the
broker does not trust. Written as PEM files: a keystore (PKCS#8 key then chain, as Sluice's
`ssl.keystore.location` takes it), a CA file, and a client key and certificate."""

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress

NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(**parts):
    oids = {"CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "O": NameOID.ORGANIZATION_NAME, "C": NameOID.COUNTRY_NAME}
    # Written most general first (C, O, OU, CN), as CAs issue them; RFC 2253 reverses it.
    order = ["C", "O", "OU", "CN"]
    return x509.Name([x509.NameAttribute(oids[k], parts[k]) for k in order if k in parts])


class Authority:
    """A CA that signs server and client certificates."""

    def __init__(self, name="Sluice Test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(CN=name, O="Sluice Tests")
        self.cert = (x509.CertificateBuilder()
                     .subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - datetime.timedelta(days=1))
                     .not_valid_after(NOW + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, subject, server=False, expired=False):
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = (NOW - datetime.timedelta(days=10), NOW - datetime.timedelta(days=1)) \
            if expired else (NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=30))
        builder = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(self.name)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        else:
            usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())

    def write_ca(self, path):
        Path(path).write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def write_keystore(path, key, cert, ca):
    """A PEM keystore: the unencrypted PKCS#8 key, then the chain (leaf, CA)."""
    Path(path).write_bytes(key_pem(key) + cert_pem(cert) + cert_pem(ca.cert))
    return str(path)


def write_client(directory, name, key, cert):
    """The client's key and certificate as two files; returns (cert path, key path)."""
    directory = Path(directory)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert_pem(cert))
    key_path.write_bytes(key_pem(key))
    return str(cert_path), str(key_path)


def subject(cn, ou=None, o="Example", c="US"):
    parts = {"CN": cn, "O": o, "C": c}
    if ou:
        parts["OU"] = ou
    return _name(**parts)
