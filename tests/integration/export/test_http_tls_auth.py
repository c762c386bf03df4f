"""TLS and authentication of the HTTP server, from outside: a real `calmon run --no-ingest`
with a Prometheus-format web config (certificates made here with `cryptography`, bcrypt
hashes), reached by httpx, curl and a real Prometheus scraping it over TLS with basic auth."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitor.demo.broker import free_loopback_port
from monitor.store.db import migrate
from monitor.store.db.engine import make_engine
from tests.integration.ingest.helpers import wait_until

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
TOKEN = "a-bearer-token-for-tests"


def _cert(
    name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _write(
    directory: Path, name: str, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    cert, key = pair
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    ca = _cert("calmon test CA", None, server=False)
    _write(directory, "ca", ca)
    _write(directory, "server", _cert("calmon", ca, server=True))
    _write(directory, "client", _cert("prometheus", ca, server=False))
    _write(directory, "other-ca", _cert("someone else", None, server=False))
    return directory


Daemon = Callable[..., str]


@pytest.fixture
def daemon(sqlite_url: str, tmp_path: Path) -> Iterator[Daemon]:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    processes: list[subprocess.Popen[bytes]] = []

    def start(
        web_config: dict | None, *, env: dict[str, str] | None = None, expect_exit: bool = False
    ) -> str:  # type: ignore[type-arg]
        port = free_loopback_port()
        http: dict[str, object] = {"host": "127.0.0.1", "port": port}
        if web_config is not None:
            path = tmp_path / f"web-{port}.yml"
            path.write_text(yaml.safe_dump(web_config))
            http["web_config_file"] = str(path)
        if env and "CALMON_HTTP_TOKEN" in env:
            http["bearer_token_env"] = "CALMON_HTTP_TOKEN"
        config = tmp_path / f"calmon-{port}.yaml"
        config.write_text(yaml.safe_dump({"http": http}))
        log = tmp_path / f"calmon-{port}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--no-ingest", "--config", str(config)],
            env={**os.environ, "CALMON_STORE_URL": sqlite_url, **(env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        if expect_exit:
            process.wait(timeout=60)
            assert process.returncode != 0
            return log.read_text()
        processes.append(process)
        wait_until(
            lambda: process.poll() is not None or "calmon running" in log.read_text(),
            timeout_s=90,
            what="calmon run starts",
        )
        assert process.poll() is None, log.read_text()
        return f"127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        assert process.wait(timeout=30) == 0


def _web_config(pki: Path, **tls: str) -> dict:  # type: ignore[type-arg]
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    return {
        "tls_server_config": {
            "cert_file": str(pki / "server.crt"),
            "key_file": str(pki / "server.key"),
            **tls,
        },
        "basic_auth_users": {"prometheus": hashed},
    }


def test_tls_with_basic_and_bearer_auth_probes_answer_without(daemon: Daemon, pki: Path) -> None:
    address = daemon(_web_config(pki), env={"CALMON_HTTP_TOKEN": TOKEN})
    client = httpx.Client(
        base_url=f"https://{address}",
        verify=ssl.create_default_context(cafile=str(pki / "ca.crt")),
        timeout=10,
    )

    refused = client.get("/metrics")
    assert (refused.status_code, refused.json()) == (401, {"error": "authentication required"})
    assert refused.headers["www-authenticate"] == 'Basic realm="calmon", Bearer'
    assert client.get("/api/v1/series", auth=("prometheus", PASSWORD)).json() == []
    assert client.get("/metrics", auth=("prometheus", PASSWORD)).status_code == 200
    assert client.get("/metrics", auth=("prometheus", "wrong")).status_code == 401
    assert client.get("/metrics", auth=("nobody", PASSWORD)).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Basic !!!"}).status_code == 401
    # The probes: a kubelet sends no credentials (and does not verify the certificate).
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/readyz").status_code == 200

    # Plain HTTP to the TLS port gets no answer.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{address}/healthz", timeout=5)
    # A client that does not trust the CA refuses the server.
    untrusting = ssl.create_default_context(cafile=str(pki / "other-ca.crt"))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://{address}/healthz", verify=untrusting, timeout=5)

    # curl, as an operator would.
    curl = shutil.which("curl")
    assert curl is not None
    out = subprocess.run(
        [
            curl,
            "-sS",
            "--cacert",
            str(pki / "ca.crt"),
            "-u",
            f"prometheus:{PASSWORD}",
            f"https://localhost:{address.split(':')[1]}/api/v1/alerts",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout == "[]"


def test_mutual_tls_needs_a_client_certificate_from_the_ca(daemon: Daemon, pki: Path) -> None:
    address = daemon(
        _web_config(
            pki, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(pki / "ca.crt")
        )
    )
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"https://{address}/healthz", verify=context, timeout=5).raise_for_status()
    context.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    response = httpx.get(
        f"https://{address}/metrics", verify=context, auth=("prometheus", PASSWORD), timeout=10
    )
    assert response.status_code == 200


def test_prometheus_scrapes_over_tls_with_basic_auth(
    daemon: Daemon, pki: Path, tmp_path: Path
) -> None:
    address = daemon(_web_config(pki))
    port = free_loopback_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "calmon",
                        "scheme": "https",
                        "tls_config": {"ca_file": str(pki / "ca.crt")},
                        "basic_auth": {"username": "prometheus", "password": PASSWORD},
                        "static_configs": [{"targets": [address]}],
                    },
                    {
                        "job_name": "calmon-no-auth",
                        "scheme": "https",
                        "tls_config": {"ca_file": str(pki / "ca.crt")},
                        "static_configs": [{"targets": [address]}],
                    },
                ],
            }
        )
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> dict[str, str]:
            try:
                body = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up"}, timeout=5
                ).json()
            except (httpx.TransportError, ValueError):
                return {}
            return {r["metric"]["job"]: r["value"][1] for r in body["data"]["result"]}

        wait_until(lambda: len(up()) == 2, timeout_s=60, what="Prometheus scraped both jobs")
        assert up() == {"calmon": "1", "calmon-no-auth": "0"}
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


@pytest.mark.parametrize(
    ("web_config", "env", "says"),
    [
        (
            {"basic_auth_users": {"u": "plain-text"}},
            {},
            "basic_auth_users: Value error, user 'u': not a bcrypt hash",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "/nonexistent.crt",
                    "key_file": "/nonexistent.key",
                }
            },
            {},
            "tls_server_config: [Errno 2]",
        ),
        ({"tls_config": {}}, {}, "tls_config: Extra inputs are not permitted"),
        (None, {"CALMON_HTTP_TOKEN": " "}, "the environment variable CALMON_HTTP_TOKEN is not set"),
    ],
)
def test_a_bad_web_config_stops_the_daemon_naming_the_problem(  # type: ignore[no-untyped-def]
    daemon: Daemon, web_config, env, says: str
) -> None:
    output = daemon(web_config, env=env, expect_exit=True)
    assert says in output
    assert "Traceback" not in output
