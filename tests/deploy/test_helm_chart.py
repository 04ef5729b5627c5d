"""The Helm chart: lint-clean, and the manifests Helm renders say what operations relies on.

Helm itself runs (helm-sdkpy, in the Python 3.12 venv ``.venv-helm``) through
``helm_harness.py``: its Lint action, and its Install action against a minimal
fake Kubernetes API that records the objects Helm creates.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "segport"
HARNESS = Path(__file__).with_name("helm_harness.py")
HELM_PYTHON = Path(
    os.environ.get("SEGPORT_TEST_HELM_PYTHON", ROOT / ".venv-helm" / "bin" / "python")
)
CREATE_VENV = (
    "/root/.pyenv/versions/3.12.1/bin/python -m venv .venv-helm "
    "&& .venv-helm/bin/pip install helm-sdkpy"
)

# The least a production install must say.
REQUIRED = {
    "config": {
        "databaseUrl": "mongodb://segport:pw@mongo-0.mongo:27017/segport",
        "redisUrl": "redis://redis-master:6379/0",
    },
    "secrets": {
        "jwtSecret": "test-jwt-secret",
        "encryptionKey": "test-encryption-key",
        "constantContactClientSecret": "test-cc-secret",
    },
}


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def with_required(**override: Any) -> dict[str, Any]:
    return merged(REQUIRED, override)


CASES: dict[str, dict[str, Any]] = {
    "pristine": {"lint_values": None},
    "production": {
        "lint_values": merged(yaml.safe_load((CHART / "values.yaml").read_text()), REQUIRED),
        "values": REQUIRED,
    },
    "slow-jobs": {
        "values": with_required(
            config={"jobCompletionWaitSeconds": 300},
            worker={"autoscaling": {"enabled": True}},
        )
    },
    "existing-secret": {
        "values": merged(
            {"config": REQUIRED["config"]},
            {"secrets": {"create": False, "existingSecret": "segport-managed"}},
        )
    },
    "jwks-only": {
        "values": merged(
            {"config": REQUIRED["config"]},
            {
                "config": {"jwtJwksUrl": "https://idp.example.com/.well-known/jwks.json"},
                "secrets": {"encryptionKey": "k"},
            },
        )
    },
    "ingress": {
        "values": with_required(
            ingress={
                "enabled": True,
                "className": "nginx",
                "hosts": [
                    {"host": "segport.acme.test", "paths": [{"path": "/", "pathType": "Prefix"}]}
                ],
                "tls": [{"secretName": "segport-tls", "hosts": ["segport.acme.test"]}],
            },
            config={"extraEnv": {"SEGPORT_MAX_PAGE_SIZE": 250}},
        )
    },
    "no-database-url": {"values": {"config": {"redisUrl": "redis://r:6379/0"}}},
    "postgres-url": {"values": with_required(config={"databaseUrl": "postgres://db/segport"})},
    "no-secret-source": {"values": merged(REQUIRED, {"secrets": {"create": False}})},
}


HelmResults = dict[str, dict[str, Any]]
"""Each case's answer from the harness, by case name."""


@pytest.fixture(scope="module")
def helm() -> HelmResults:
    """Every case's lint report and rendered objects, from one run of the harness."""
    if not HELM_PYTHON.exists():
        pytest.fail(
            f"{HELM_PYTHON} is missing: the chart tests need Helm's library. "
            f"Create it from {ROOT} with:\n  {CREATE_VENV}",
            pytrace=False,
        )
    request = {
        "chart": str(CHART),
        "cases": [{"name": name, **case} for name, case in CASES.items()],
    }
    done = subprocess.run(
        [str(HELM_PYTHON), str(HARNESS)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {case["name"]: case for case in json.loads(done.stdout)["cases"]}


def objects(helm: HelmResults, case: str, kind: str) -> dict[str, dict[str, Any]]:
    result = helm[case]
    assert result["error"] is None, result["error"]
    return {o["metadata"]["name"]: o for o in result["objects"] if o["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    only: dict[str, Any]
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


HELM_WARNING = 2  # helm's support.WarningSev; 1 is INFO (e.g. "icon is recommended")


def test_chart_lints_without_errors_or_warnings_for_a_production_install(helm: HelmResults) -> None:
    result = helm["production"]
    assert result["lint"]["TotalChartsLinted"] == 1
    assert not result["lint"]["Errors"]
    serious = [m for m in result["lint"]["Messages"] if m["Severity"] >= HELM_WARNING]
    assert serious == []
    assert [line for line in result["lint_log"] if "WARN" in line or "ERROR" in line] == []


def test_chart_as_shipped_lints_clean_and_only_warns_about_the_values_an_install_must_give(
    helm: HelmResults,
) -> None:
    result = helm["pristine"]
    assert not result["lint"]["Errors"]
    assert [m for m in result["lint"]["Messages"] if m["Severity"] >= HELM_WARNING] == []
    warnings = [line for line in result["lint_log"] if "WARN" in line]
    assert warnings, "the shipped chart leaves databaseUrl empty, lint should say it is required"
    assert all("missing required values" in line for line in warnings), warnings
    assert any("config.databaseUrl" in line for line in warnings)
    assert any("config.redisUrl" in line for line in warnings)


def test_install_without_a_database_url_fails_naming_the_value(helm: HelmResults) -> None:
    assert "config.databaseUrl is required" in helm["no-database-url"]["error"]


def test_install_with_a_non_mongodb_database_url_is_refused_by_the_schema(
    helm: HelmResults,
) -> None:
    error = helm["postgres-url"]["error"]
    assert "/config/databaseUrl" in error
    assert "postgres://db/segport" in error


def test_install_with_neither_created_nor_existing_secret_is_refused_by_the_schema(
    helm: HelmResults,
) -> None:
    assert "existingSecret" in helm["no-secret-source"]["error"]


def test_api_deployment_serves_on_8000_with_health_and_readiness_probes(helm: HelmResults) -> None:
    api = objects(helm, "production", "Deployment")["production-segport-api"]
    c = container(api)
    assert c["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "replicas" not in api["spec"], "the HPA owns the replica count when autoscaling is on"


@pytest.mark.parametrize("component", ["api", "worker"])
def test_pods_run_non_root_read_only_without_privileges(helm: HelmResults, component: str) -> None:
    deployment = objects(helm, "production", "Deployment")[f"production-segport-{component}"]
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {v["name"]: v for v in pod["volumes"]}["tmp"]["emptyDir"]
    assert pod["automountServiceAccountToken"] is False


def test_worker_grace_period_is_the_job_completion_wait_plus_a_margin(helm: HelmResults) -> None:
    default = objects(helm, "production", "Deployment")["production-segport-worker"]
    slow = objects(helm, "slow-jobs", "Deployment")["slow-jobs-segport-worker"]
    margin = yaml.safe_load((CHART / "values.yaml").read_text())["worker"][
        "terminationGraceMarginSeconds"
    ]
    assert margin > 0
    assert default["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 25 + margin
    assert slow["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 300 + margin
    config = objects(helm, "slow-jobs", "ConfigMap")["slow-jobs-segport"]
    assert config["data"]["SEGPORT_JOB_COMPLETION_WAIT_SECONDS"] == "300"


def test_worker_runs_the_worker_command_and_exposes_its_metrics_port(helm: HelmResults) -> None:
    worker = objects(helm, "production", "Deployment")["production-segport-worker"]
    config = objects(helm, "production", "ConfigMap")["production-segport"]
    c = container(worker)
    assert c["args"] == ["worker"]
    port = int(config["data"]["SEGPORT_WORKER_METRICS_PORT"])
    assert c["ports"][0]["containerPort"] == port
    assert c["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_autoscalers_and_disruption_budgets_exist_for_what_is_enabled(helm: HelmResults) -> None:
    hpas = objects(helm, "production", "HorizontalPodAutoscaler")
    assert set(hpas) == {"production-segport-api"}, "worker autoscaling is off by default"
    api_hpa = hpas["production-segport-api"]
    assert api_hpa["apiVersion"] == "autoscaling/v2"
    assert api_hpa["spec"]["scaleTargetRef"]["name"] == "production-segport-api"
    assert set(objects(helm, "slow-jobs", "HorizontalPodAutoscaler")) == {
        "slow-jobs-segport-api",
        "slow-jobs-segport-worker",
    }
    pdbs = objects(helm, "production", "PodDisruptionBudget")
    assert set(pdbs) == {"production-segport-api", "production-segport-worker"}
    assert (
        pdbs["production-segport-worker"]["spec"]["selector"]["matchLabels"][
            "app.kubernetes.io/component"
        ]
        == "worker"
    )


def test_chart_makes_the_secret_only_when_asked_and_no_existing_secret_is_named(
    helm: HelmResults,
) -> None:
    made = objects(helm, "production", "Secret")
    assert set(made) == {"production-segport-connection", "production-segport-secrets"}
    assert made["production-segport-secrets"]["stringData"]["SEGPORT_ENCRYPTION_KEY"] == (
        "test-encryption-key"
    )
    existing = objects(helm, "existing-secret", "Secret")
    assert set(existing) == {"existing-secret-segport-connection"}
    api = objects(helm, "existing-secret", "Deployment")["existing-secret-segport-api"]
    refs = [e.get("secretRef", {}).get("name") for e in container(api)["envFrom"]]
    assert "segport-managed" in refs


def test_database_and_redis_urls_travel_in_a_secret_not_the_configmap(helm: HelmResults) -> None:
    connection = objects(helm, "production", "Secret")["production-segport-connection"]
    assert connection["stringData"] == {
        "SEGPORT_DATABASE_URL": REQUIRED["config"]["databaseUrl"],
        "SEGPORT_REDIS_URL": REQUIRED["config"]["redisUrl"],
    }
    config = objects(helm, "production", "ConfigMap")["production-segport"]
    rendered = json.dumps(config)
    assert "mongodb://" not in rendered
    assert "test-jwt-secret" not in rendered


def test_jwks_installs_need_no_jwt_secret(helm: HelmResults) -> None:
    secret = objects(helm, "jwks-only", "Secret")["jwks-only-segport-secrets"]
    assert "SEGPORT_JWT_SECRET" not in secret["stringData"]
    config = objects(helm, "jwks-only", "ConfigMap")["jwks-only-segport"]
    assert config["data"]["SEGPORT_JWT_JWKS_URL"] == "https://idp.example.com/.well-known/jwks.json"


def test_every_configmap_variable_is_a_setting_the_service_reads(helm: HelmResults) -> None:
    """A typo in a variable name would be silently ignored by pydantic-settings."""
    known = {f"SEGPORT_{name.upper()}" for name in Settings.model_fields}
    for case in ("production", "ingress", "jwks-only"):
        (config,) = objects(helm, case, "ConfigMap").values()
        unknown = {
            key
            for key in config["data"]
            if key not in known and not key.startswith("SEGPORT_CONSTANT_CONTACT_")
        }
        assert unknown == set(), case
    secrets = objects(helm, "production", "Secret")
    for secret in secrets.values():
        for key in secret["stringData"]:
            assert key in known or key.startswith("SEGPORT_CONSTANT_CONTACT_"), key


def test_ingress_routes_every_host_to_the_api_service_with_tls(helm: HelmResults) -> None:
    (ingress,) = objects(helm, "ingress", "Ingress").values()
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["segport.acme.test"], "secretName": "segport-tls"}]
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "ingress-segport", "port": {"number": 80}}
    assert objects(helm, "production", "Ingress") == {}
    config = objects(helm, "ingress", "ConfigMap")["ingress-segport"]
    assert config["data"]["SEGPORT_MAX_PAGE_SIZE"] == "250"


def test_notes_tell_the_oauth_redirect_uri_and_worker_grace(helm: HelmResults) -> None:
    notes = helm["production"]["notes"]
    assert "http://127.0.0.1:8000/oauth/callback" in notes
    assert "40s" in notes
