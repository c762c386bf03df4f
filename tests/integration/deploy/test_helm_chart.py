"""The Helm chart, checked offline with the real tools: the helm CLI (lint, template,
values.schema.json), kubernetes-validate --strict (built-in kinds), the
prometheus-operator CRD models (ServiceMonitor, PrometheusRule), promtool, and calmon's
own check-config on the rendered ConfigMap. There is no cluster here, so nothing is
applied; that is the one part not exercised."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as monitoring

from monitor.settings import Settings
from monitor.store.db import migrate
from tests.integration.deploy.chart import (
    CHART,
    FULL_VALUES,
    REPO,
    VALUE_SETS,
    by_kind,
    helm,
    one,
    render,
)

pytestmark = pytest.mark.integration
#: The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")
CRD_MODELS = {
    "ServiceMonitor": monitoring.ServiceMonitor,
    "PrometheusRule": monitoring.PrometheusRule,
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in VALUE_SETS.items()}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_chart_lints_strict(value_set: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in VALUE_SETS[value_set]:
        args += ["-f", str(path)]
    done = helm(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_manifest_is_valid_for_kubernetes(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    manifests = rendered[value_set]
    for manifest in manifests:
        kind = manifest["kind"]
        if kind in CRD_MODELS:
            # Round trip through the CRD's model: an unknown key is dropped, so it shows.
            model = CRD_MODELS[kind].model_validate(manifest)
            assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == manifest
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def test_full_values_render_every_optional_resource(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    kinds = sorted({m["kind"] for m in rendered["full"]})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    default_kinds = sorted({m["kind"] for m in rendered["default"]})
    assert default_kinds == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    assert by_kind(rendered["sqlite-persistent"], "PersistentVolumeClaim")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("replicaCount=0", "at '/replicaCount': minimum: got 0, want 1"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("secrets.databaseUrl.valu=x", "at '/secrets/databaseUrl': additional properties 'valu'"),
        ("config.kafak.group_id=x", "at '/config': additional properties 'kafak' not allowed"),
        ("service.port=http", "at '/service/port': got string, want integer"),
        ("serviceMonitor.interval=30", "at '/serviceMonitor/interval': got number, want string"),
        # Combinations the schema cannot express, refused by the templates.
        ("replicaCount=2", "SQLite (no secrets.databaseUrl) supports one replica only"),
        ("rules.shipped=true", "rules.shipped=true needs config.webhooks.recalibrate"),
    ],
)
def test_wrong_values_fail_with_a_message_naming_them(setting: str, message: str) -> None:
    done = helm("template", "t", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr


#: A secret given in a way it must not be: it may appear in no output at all.
LEAKED = "hunter2"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("config.kafka.group_idd=x", "at '/config/kafka': additional properties 'group_idd'"),
        ("config.evaluation.n_bins=7", "at '/config/evaluation/n_bins': value must be one of"),
        ("config.http.port=http", "at '/config/http/port': got string, want integer"),
        (
            "config.windows[0].name=1d,config.windows[0].length=24hh",
            "at '/config/windows/0/length': '24hh' does not match pattern",
        ),
        ("config.ingest.max_batch_age=soon", "at '/config/ingest/max_batch_age': 'soon' does not"),
        ("config.store.segment_keys=region", "at '/config/store/segment_keys': got string, want"),
        ("config.reference.psi_bins=1", "at '/config/reference/psi_bins': minimum: got 1, want 2"),
        ("config.webhooks.r.url=ftp://x", "at '/config/webhooks/r/url': 'ftp://x' does not match"),
        (
            f"config.store.url=postgresql://calmon:{LEAKED}@db/calmon",
            "at '/config/store/url': value must be '(a secret: set secrets.databaseUrl instead)'",
        ),
        (
            f"config.kafka.sasl_password={LEAKED}",
            "at '/config/kafka/sasl_password': value must be '(a secret: set "
            "secrets.kafkaSaslPassword instead)'",
        ),
        (
            f"config.alertmanager.urls[0]=http://admin:{LEAKED}@am:9093",
            "at '/config/alertmanager/urls/0': value must be '(a URL without a password",
        ),
    ],
)
def test_wrong_config_values_fail_helm_naming_the_path(setting: str, message: str) -> None:
    """values.schema.json's `config` is generated from calmon's settings model."""
    done = helm("template", "t", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert LEAKED not in done.stdout + done.stderr


def test_config_sections_allowed_by_the_schema_are_calmons() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["properties"]["config"]["properties"]) == set(Settings.model_fields)


def test_secrets_are_only_in_secrets(rendered: dict[str, list[dict[str, Any]]]) -> None:
    values = yaml.safe_load(FULL_VALUES.read_text())
    secret_values = [s["value"] for s in values["secrets"].values() if s.get("value")]
    assert len(secret_values) == 3
    for manifest in rendered["full"]:
        text = yaml.safe_dump(manifest)
        for value in secret_values:
            assert value not in text, f"{manifest['kind']} {manifest['metadata']['name']}"
    stored = {
        base64.b64decode(v).decode()
        for secret in by_kind(rendered["full"], "Secret")
        for v in secret["data"].values()
    }
    assert set(secret_values) <= stored
    container = one(rendered["full"], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["CALMON_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "ci-calmon",
        "key": "database-url",
    }
    assert env["CALMON_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kafka-credentials",
        "key": "password",
    }
    assert "valueFrom" in env["CALMON_WEBHOOK_SECRET"]
    assert env["CALMON_ALERTMANAGER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ci-calmon",
        "key": "alertmanager-password",
    }
    assert "CALMON_ALERTMANAGER_BEARER_TOKEN" not in env
    assert "CALMON_KAFKA_SSL_PASSWORD" not in env  # not configured: not referenced


def _write_config_dir(
    manifests: list[dict[str, Any]], directory: Path, name: str = "ci-calmon"
) -> Path:
    """The ConfigMap as the pod sees it, with /etc/calmon mapped to ``directory``."""
    data = one(manifests, "ConfigMap", name)["data"]
    (directory / "rules").mkdir()
    for key, text in data.items():
        target = directory / ("calmon.yaml" if key == "calmon.yaml" else f"rules/{key}")
        target.write_text(text.replace("/etc/calmon", str(directory)))
    return directory / "calmon.yaml"


@pytest.mark.parametrize("value_set", ["default", "full"])
def test_rendered_config_passes_calmon_check_config(
    rendered: dict[str, list[dict[str, Any]]], value_set: str, tmp_path: Path
) -> None:
    config = _write_config_dir(rendered[value_set], tmp_path)
    loaded = yaml.safe_load(config.read_text())
    if value_set == "full":
        assert loaded["rules"] == [
            f"{tmp_path}/rules/calmon-rules.yaml",
            f"{tmp_path}/rules/team-rules.yaml",
        ]
    env = {**os.environ, "CALMON_WEBHOOK_SECRET": "k", "CALMON_CONFIG": ""}
    if value_set == "full":  # its config.alertmanager.username needs the password
        env["CALMON_ALERTMANAGER_PASSWORD"] = "p"
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_config_volume_puts_rule_files_where_the_config_points(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    manifests = rendered["full"]
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "config")
    mounted = {
        f"{mount['mountPath']}/{item['path']}" for item in config_volume["configMap"]["items"]
    }
    config = yaml.safe_load(one(manifests, "ConfigMap", "ci-calmon")["data"]["calmon.yaml"])
    assert set(config["rules"]) | {"/etc/calmon/calmon.yaml"} == mounted
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["CALMON_CONFIG"] == "/etc/calmon/calmon.yaml"


def test_a_config_or_secret_change_rolls_the_pods() -> None:
    def annotations(*settings: str) -> dict[str, str]:
        deployment = one(render([FULL_VALUES], *settings), "Deployment")
        return dict(deployment["spec"]["template"]["metadata"]["annotations"])

    base = annotations()
    assert annotations() == base  # stable: an unchanged upgrade rolls nothing
    changed_config = annotations("config.evaluation.n_bins=20")
    assert changed_config["checksum/config"] != base["checksum/config"]
    assert changed_config["checksum/secret"] == base["checksum/secret"]
    changed_rule = annotations("rules.files.team-rules\\.yaml.rules[0].threshold=0.3")
    assert changed_rule["checksum/config"] != base["checksum/config"]
    changed_secret = annotations("secrets.webhookSigningKey.value=rotated")
    assert changed_secret["checksum/secret"] != base["checksum/secret"]
    assert base["example.com/team"] == "ml-platform"


def test_the_secret_checksum_is_salted_and_slow_not_a_plain_hash_of_the_secret() -> None:
    """Pods are readable by more people than Secrets; their checksum annotation must not
    let them test guesses of a weak secret at the speed of SHA-256."""
    weak = "secrets.webhookSigningKey.value=hunter2"

    def rendered(release: str, namespace: str) -> tuple[str, str]:
        args = ["template", release, str(CHART), "-n", namespace, "-f", str(FULL_VALUES)]
        secret = helm(*args, "--set", weak, "--show-only", "templates/secret.yaml").stdout
        deployment = one(render_args(*args, "--set", weak), "Deployment")
        annotation = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
        # What the template hashes: the Secret as `include` renders it (no Source header).
        return annotation, "\n" + secret.split("\n", 2)[2]

    annotation, secret_text = rendered("ci", "ml")
    plain = hashlib.sha256(secret_text.encode()).hexdigest()
    assert annotation != plain  # what the old template exported
    # The scheme, recomputed here from its definition: scrypt salted with the release.
    assert annotation == master_password(secret_text, user="ml/ci-calmon", site="checksum/secret")
    # The same secret in another release or namespace: another value, nothing to compare.
    assert rendered("ci", "ml-2")[0] != annotation
    assert rendered("other", "ml")[0] != annotation


def render_args(*args: str) -> list[dict[str, Any]]:
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def master_password(password: str, *, user: str, site: str, counter: int = 1) -> str:
    """Sprig's ``derivePassword counter "maximum" password user site`` (the Master Password
    algorithm): scrypt(password, seed + user; N=32768, r=8, p=2), HMAC-SHA256 of the site,
    mapped through the "maximum" templates."""
    seed = b"com.lyndir.masterpassword"
    user_b, site_b = user.encode(), site.encode()
    key = hashlib.scrypt(
        password.encode(),
        salt=seed + struct.pack(">I", len(user_b)) + user_b,
        n=32768,
        r=8,
        p=2,
        dklen=64,
        maxmem=128 * 1024 * 1024,
    )
    message = seed + struct.pack(">I", len(site_b)) + site_b + struct.pack(">I", counter)
    mac = hmac.new(key, message, hashlib.sha256).digest()
    templates = ["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"]
    characters = {
        "a": "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        "n": "0123456789",
        "o": "@&%?,=[]_:-+*$#!'^~;()/.",
        "x": "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
    template = templates[mac[0] % len(templates)]
    return "".join(characters[c][mac[i + 1] % len(characters[c])] for i, c in enumerate(template))


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pods_are_locked_down_and_probed(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    pods = [one(rendered[value_set], "Deployment")["spec"]["template"]["spec"]]
    pods += [job["spec"]["template"]["spec"] for job in by_kind(rendered[value_set], "Job")]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
    calmon = pods[0]["containers"][0]
    assert calmon["args"] == ["run"]
    assert calmon["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert calmon["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert calmon["resources"]["limits"]["memory"]
    port = calmon["ports"][0]
    assert port["name"] == "http"
    expected_port = 9090 if value_set == "full" else 8080  # config.http.port
    assert port["containerPort"] == expected_port


def test_migrations_run_as_a_hook_before_install_and_upgrade(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    manifests = rendered["full"]
    job = one(manifests, "Job")
    hook_secret = one(manifests, "Secret", "ci-calmon-migrate")
    job_annotations = job["metadata"]["annotations"]
    assert job_annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    # The Secret the Job reads is created first (lower weight): release resources do
    # not exist yet when pre-install hooks run.
    assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job_annotations["helm.sh/hook-weight"]
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    deployment = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert container["image"] == deployment["image"] == "ghcr.io/calmon/calmon:0.1.0-test"
    env = {e["name"]: e for e in container["env"]}
    assert env["CALMON_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == ("ci-calmon-migrate")
    assert env["CALMON_CONFIG"]["value"] == ""

    # An existing Secret: the Job reads it, and the hook copy does not hold the URL.
    existing = render(
        [FULL_VALUES], "secrets.databaseUrl.value=", "secrets.databaseUrl.existingSecret=db"
    )
    assert "database-url" not in one(existing, "Secret", "ci-calmon-migrate")["data"]
    env = {
        e["name"]: e
        for e in one(existing, "Job")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CALMON_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "db",
        "key": "database-url",
    }

    # SQLite: no Job; the pod migrates its own database first.
    sqlite = rendered["default"]
    assert not by_kind(sqlite, "Job")
    pod = one(sqlite, "Deployment")["spec"]["template"]["spec"]
    assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
    assert one(sqlite, "Deployment")["spec"]["strategy"]["type"] == "Recreate"


def test_the_migrate_hook_checks_the_rendered_config_first(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    manifests = rendered["full"]
    job = one(manifests, "Job")
    pod = job["spec"]["template"]["spec"]
    (check,) = pod["initContainers"]
    assert check["args"] == ["check-config"]
    assert check["image"] == pod["containers"][0]["image"]
    # The hook's own copy of the ConfigMap (the release's does not exist yet on install),
    # created before the Job, mounted where the pods mount theirs.
    hook_config = one(manifests, "ConfigMap", "ci-calmon-migrate")
    assert hook_config["data"] == one(manifests, "ConfigMap", "ci-calmon")["data"]
    assert int(hook_config["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    deployment = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pods_volume = next(v for v in deployment["volumes"] if v["name"] == "config")
    assert volume["configMap"]["name"] == "ci-calmon-migrate"
    assert volume["configMap"]["items"] == pods_volume["configMap"]["items"]
    mount = next(m for m in check["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] == "/etc/calmon"


def _play_check_config_hook(manifests: list[dict[str, Any]], directory: Path) -> str:
    """Run what the hook's check-config container runs: its env (secrets resolved from
    the rendered hook Secret; an existing Secret's from a stand-in) and its files."""
    pod = one(manifests, "Job")["spec"]["template"]["spec"]
    (check,) = pod["initContainers"]
    config = _write_config_dir(manifests, directory, "ci-calmon-migrate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALMON")}
    for entry in check["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"].replace("/etc/calmon", str(directory))
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        rendered = [s for s in by_kind(manifests, "Secret") if s["metadata"]["name"] == ref["name"]]
        value = base64.b64decode(rendered[0]["data"][ref["key"]]).decode() if rendered else "x"
        env[entry["name"]] = value
    assert env["CALMON_CONFIG"] == str(config)
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *check["args"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout if done.returncode else ""


def test_the_migrate_hook_fails_on_a_config_the_schema_cannot_judge(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    assert _play_check_config_hook(render([FULL_VALUES]), good) == ""
    bad = tmp_path / "bad"
    bad.mkdir()
    manifests = render(
        [FULL_VALUES],
        "config.reference.mode=fixed",
        "config.reference.start=yesterday",
        "rules.files.team-rules\\.yaml.rules[0].select.window=24hh",
    )
    problems = _play_check_config_hook(manifests, bad)
    assert "reference.start: Input should be a valid datetime" in problems, problems
    assert "rule ProbabilityDrift: select.window '24hh' matches no configured window" in problems


def test_migrate_with_an_empty_config_variable_needs_only_the_url(tmp_path: Path) -> None:
    """What the hook Job runs: CALMON_CONFIG="" and CALMON_STORE_URL, nothing mounted."""
    url = f"sqlite:///{tmp_path / 'calmon.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "migrate"],
        capture_output=True,
        text=True,
        env={**os.environ, "CALMON_CONFIG": "", "CALMON_STORE_URL": url},
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"store schema: empty -> {migrate.head_revision()}"


def test_prometheus_rule_carries_the_alerts_file_and_passes_promtool(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    for name in ("prometheus-rules.yaml", "calmon-rules.yaml"):
        assert (CHART / "files" / name).read_text() == (REPO / "alerts" / name).read_text(), (
            f"helm/calmon/files/{name} must be a copy of alerts/{name}"
        )
    rule = one(rendered["full"], "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((REPO / "alerts" / "prometheus-rules.yaml").read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    unwrapped = tmp_path / "rules.yaml"
    unwrapped.write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run(
        ["promtool", "check", "rules", str(unwrapped)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 11 rules found" in done.stdout


def test_dashboards_are_configmaps_for_the_grafana_sidecar(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    maps = [
        m
        for m in by_kind(rendered["full"], "ConfigMap")
        if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    files = sorted(p.name for p in (CHART / "dashboards").glob("*.json"))
    assert sorted(key for m in maps for key in m["data"]) == files
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "calmon"
        for name, text in config_map["data"].items():
            assert json.loads(text) == json.loads((CHART / "dashboards" / name).read_text())
    custom = render([FULL_VALUES], "dashboards.label=my_dashboards", "dashboards.labelValue=yes")
    labels = [m["metadata"]["labels"] for m in by_kind(custom, "ConfigMap")]
    assert sum(1 for label in labels if label.get("my_dashboards") == "yes") == len(files)


def _leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        # Free-form maps (config, rules.files, resources...) are documented as one value.
        if isinstance(value, dict) and value and key not in FREE_FORM:
            keys += _leaf_keys(value, f"{path}.")
        else:
            keys.append(path)
    return keys


FREE_FORM = {
    "config",
    "podSecurityContext",
    "securityContext",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
}


def test_chart_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [key for key in _leaf_keys(values) if f"`{key}`" not in readme]
    assert not missing, f"helm/calmon/README.md does not list: {missing}"
