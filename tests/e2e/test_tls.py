"""TLS on the gRPC port, and mutual TLS for service-to-service calls, with generated certificates."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import licenses_pb2_grpc
from tests.server_process import running_server
from tests.support import Account

_KEY = ec.SECP256R1()


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


def _issue(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(_KEY)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _pem(pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Pem:
    cert, key = pair
    return Pem(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@dataclass(frozen=True)
class Pki:
    ca: Pem
    server: Pem
    client: Pem
    stranger: Pem  # a client certificate from a CA the server does not trust
    files: dict[str, str]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = _issue("test CA", None, ca=True)
    other_ca = _issue("other CA", None, ca=True)
    pki = Pki(_pem(ca), _pem(_issue("licensing", ca)), _pem(_issue("billing", ca)), _pem(_issue("intruder", other_ca)), {})
    folder: Path = tmp_path_factory.mktemp("pki")
    for name, data in {"ca.pem": pki.ca.cert, "server.pem": pki.server.cert, "server.key": pki.server.key}.items():
        (folder / name).write_bytes(data)
        pki.files[name] = str(folder / name)
    return pki


def _env(pki: Pki, database_url: str, *, mutual: bool) -> dict[str, str]:
    env = {"DATABASE_URL": database_url, "GRPC_WORKERS": "1", "RELAY_ENABLED": "false",
           "GRPC_TLS_CERT": pki.files["server.pem"], "GRPC_TLS_KEY": pki.files["server.key"]}
    if mutual:
        env["GRPC_TLS_CLIENT_CA"] = pki.files["ca.pem"]
    return env


@pytest.fixture(scope="module")
def tls_server(pki: Pki, database_url: str) -> Iterator[str]:
    with running_server(_env(pki, database_url, mutual=False), grpc.ssl_channel_credentials(pki.ca.cert)) as address:
        yield address


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, database_url: str) -> Iterator[str]:
    credentials = grpc.ssl_channel_credentials(pki.ca.cert, pki.client.key, pki.client.cert)
    with running_server(_env(pki, database_url, mutual=True), credentials) as address:
        yield address


def _list(address: str, credentials: grpc.ChannelCredentials | None, account: Account) -> pb.ListLicensesResponse:
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    with channel:
        stub = licenses_pb2_grpc.LicenseServiceStub(channel)
        return stub.ListLicenses(pb.ListLicensesRequest(app_id=account.app_id), metadata=account.auth, timeout=5)


def test_tls_server_answers_a_client_that_trusts_its_ca(tls_server: str, pki: Pki, account: Account) -> None:
    assert _list(tls_server, grpc.ssl_channel_credentials(pki.ca.cert), account).cursor == ""


def test_tls_server_refuses_plaintext(tls_server: str, account: Account) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _list(tls_server, None, account)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_mutual_tls_answers_a_client_with_a_certificate_of_its_ca(mtls_server: str, pki: Pki, account: Account) -> None:
    credentials = grpc.ssl_channel_credentials(pki.ca.cert, pki.client.key, pki.client.cert)
    assert _list(mtls_server, credentials, account).cursor == ""


@pytest.mark.parametrize("who", ["no certificate", "certificate of another CA"])
def test_mutual_tls_refuses_other_clients(mtls_server: str, pki: Pki, account: Account, who: str) -> None:
    if who == "no certificate":
        credentials = grpc.ssl_channel_credentials(pki.ca.cert)
    else:
        credentials = grpc.ssl_channel_credentials(pki.ca.cert, pki.stranger.key, pki.stranger.cert)
    with pytest.raises(grpc.RpcError) as refused:
        _list(mtls_server, credentials, account)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_health_works_over_tls(tls_server: str, pki: Pki) -> None:
    with grpc.secure_channel(tls_server, grpc.ssl_channel_credentials(pki.ca.cert)) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
