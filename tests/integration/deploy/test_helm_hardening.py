"""The chart's optional HTTP hardening, rendered by the real helm CLI and validated against
the Kubernetes and prometheus-operator schemas: the NetworkPolicy (off by default), the
web config Secret mounted and named to calmon, probes and ServiceMonitor on HTTPS."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from cloudcoil.models.prometheus_operator import v1 as monitoring

from tests.integration.deploy.chart import CHART, by_kind, helm, one, render

pytestmark = pytest.mark.integration

HARDENED = (
    "networkPolicy.enabled=true",
    "networkPolicy.ingressFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
    "webConfig.existingSecret=calmon-web",
    "webConfig.tls=true",
    "serviceMonitor.enabled=true",
    "serviceMonitor.tlsConfig.serverName=calmon.ml.svc",
    "serviceMonitor.basicAuth.username.name=calmon-scrape",
    "serviceMonitor.basicAuth.username.key=username",
    "serviceMonitor.basicAuth.password.name=calmon-scrape",
    "serviceMonitor.basicAuth.password.key=password",
)


@pytest.fixture(scope="module")
def hardened() -> list[dict[str, Any]]:
    return render([], *HARDENED)


def test_no_network_policy_by_default() -> None:
    assert by_kind(render([]), "NetworkPolicy") == []


def test_the_network_policy_admits_only_the_http_port_from_the_given_peers(
    hardened: list[dict[str, Any]],
) -> None:
    policy = one(hardened, "NetworkPolicy")
    for version in ("1.25.0", "1.37.0"):
        kubernetes_validate.validate(policy, version, strict=True)
    deployment = one(hardened, "Deployment")
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == deployment["spec"]["selector"]["matchLabels"]
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {
            "ports": [{"port": "http", "protocol": "TCP"}],
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
        }
    ]
    # The port name resolves: the container declares it.
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [p["name"] for p in ports] == ["http"]
    # Without peers: the HTTP port from anywhere, nothing else.
    open_policy = one(render([], "networkPolicy.enabled=true"), "NetworkPolicy")
    assert open_policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_the_web_config_secret_is_mounted_and_named_probes_and_scrapes_use_https(
    hardened: list[dict[str, Any]],
) -> None:
    deployment = one(hardened, "Deployment")
    kubernetes_validate.validate(deployment, "1.37.0", strict=True)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CALMON__HTTP__WEB_CONFIG_FILE"] == "/etc/calmon/web/web.yml"
    assert {"name": "web-config", "mountPath": "/etc/calmon/web", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "web-config", "secret": {"secretName": "calmon-web"}} in pod["volumes"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", probe
    monitor = one(hardened, "ServiceMonitor")
    model = monitoring.ServiceMonitor.model_validate(monitor)
    assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == monitor
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"serverName": "calmon.ml.svc"}
    assert endpoint["basicAuth"]["password"] == {"name": "calmon-scrape", "key": "password"}
    # By default: plain HTTP probes, nothing mounted.
    plain = one(render([]), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "scheme" not in plain["readinessProbe"]["httpGet"]
    assert all(m["name"] != "web-config" for m in plain["volumeMounts"])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("networkPolicy.enable=true", "additional properties 'enable' not allowed"),
        ("webConfig.tls=yes", "at '/webConfig/tls': got string, want boolean"),
        ("networkPolicy.ingressFrom=x", "at '/networkPolicy/ingressFrom': got string, want array"),
    ],
)
def test_wrong_hardening_values_fail_naming_them(setting: str, message: str) -> None:
    done = helm("template", "ci", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
