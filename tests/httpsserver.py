"""The site over real HTTPS for tests: Django's WSGI handler behind TLS on a free loopback port, with a test CA."""

import datetime
import ipaddress
import ssl
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.handlers.wsgi import WSGIHandler


def _certificate(subject: str, key, issuer: x509.Name, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def certificates_make(folder: Path) -> dict[str, Path]:
    """A CA and a certificate it signs for localhost: ca.pem (to trust), site.pem and site.key (to serve)."""
    ca_key, site_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Digest test CA")])
    ca = _certificate("Digest test CA", ca_key, ca_name, ca_key, ca=True)
    site = _certificate("localhost", site_key, ca_name, ca_key, ca=False)
    paths = {"ca": folder / "ca.pem", "cert": folder / "site.pem", "key": folder / "site.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(site.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        site_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class HttpsSite:
    """Serve the Django site at https://localhost:port with the certificate of certificates_make()."""

    def __init__(self, certificates: dict[str, Path]):
        self.certificates = certificates

    def __enter__(self) -> "HttpsSite":
        self._server = make_server("127.0.0.1", 0, WSGIHandler(), WSGIServer, _QuietHandler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificates["cert"], self.certificates["key"])
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://localhost:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
