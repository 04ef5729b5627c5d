"""Lint and render the Helm chart with Helm's own library (helm-sdkpy), for the deploy tests.

Runs under the Python 3.12 venv ``.venv-helm`` (helm-sdkpy needs 3.12+), not under
the test venv, so it imports nothing from the project. Reads a JSON request on
stdin and writes a JSON answer on stdout:

request  {"chart": PATH, "cases": [{"name": STR, "values": {...}, "lint_values": {...} | null}]}
         "values": install with these values (omit: do not install);
         "lint_values": lint a copy of the chart holding these full values
         (null: lint the chart as it is; omit: do not lint)
answer   {"cases": [{"name", "lint": {...}, "lint_log": [STR], "objects": [{...}],
                     "notes": STR, "error": STR | null}]}

helm-sdkpy offers no ``helm template``; its Install action is real Helm
(schema validation, rendering, ordering), so each case is installed against a
minimal in-process Kubernetes API that answers discovery and records every
object Helm creates. Those recorded objects are the rendered manifests.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import helm_sdkpy

# The API groups and resources the chart uses; Helm's REST mapper needs them in discovery.
RESOURCES: dict[str, list[tuple[str, str]]] = {
    "v1": [
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("services", "Service"),
        ("serviceaccounts", "ServiceAccount"),
        ("namespaces", "Namespace"),
    ],
    "apps/v1": [("deployments", "Deployment")],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler")],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
    "networking.k8s.io/v1": [("ingresses", "Ingress")],
}


def _resource_list(group_version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": plural != "namespaces",
                "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for plural, kind in RESOURCES[group_version]
        ],
    }


class FakeKubernetes:
    """Just enough of the Kubernetes API for ``helm install --wait=false`` to succeed."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlparse(self.path).path
                if self.command == "GET":
                    answer = owner.discovery(path)
                    if answer is not None:
                        self._send(200, answer)
                        return
                if self.command in ("POST", "PUT") and body:
                    if not body.startswith(b"{"):
                        # Helm's release record, sent as protobuf: acknowledge it.
                        self._send(
                            201 if self.command == "POST" else 200,
                            {
                                "kind": "Secret",
                                "apiVersion": "v1",
                                "metadata": {"name": "helm-release", "uid": "release"},
                            },
                        )
                        return
                    obj = json.loads(body)
                    owner.created.append(obj)
                    obj.setdefault("metadata", {})["uid"] = f"uid-{len(owner.created)}"
                    self._send(201 if self.command == "POST" else 200, obj)
                    return
                self._send(
                    404,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                    },
                )

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return {"major": "1", "minor": "30", "gitVersion": "v1.30.0", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = []
            for gv in RESOURCES:
                if "/" in gv:
                    group, version = gv.split("/")
                    ref = {"groupVersion": gv, "version": version}
                    groups.append({"name": group, "versions": [ref], "preferredVersion": ref})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if path == "/api/v1":
            return _resource_list("v1")
        if path.startswith("/apis/") and path.removeprefix("/apis/") in RESOURCES:
            return _resource_list(path.removeprefix("/apis/"))
        if path.endswith("/secrets"):
            # Helm's release storage asks whether the release name is taken: it is not.
            return {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": []}
        return None

    def kubeconfig(self) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f'clusters: [{{name: fake, cluster: {{server: "{self.url}"}}}}]\n'
            "users: [{name: fake, user: {token: fake}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: segport}}]\n"
            "current-context: fake\n"
        )

    def close(self) -> None:
        self._server.shutdown()


@contextlib.contextmanager
def captured_stderr_fd() -> Any:
    """Helm's Go code logs lint warnings straight to fd 2; collect them."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        lines: list[str] = []
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(io.TextIOWrapper(sink, encoding="utf-8").read().splitlines())


async def lint(chart: str, values: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Helm's lint report and the warnings it logged, for ``values`` (None: the chart's own)."""
    lint_dir = None
    lint_chart = chart
    if values is not None:
        # Helm's Lint action reads only the chart's values.yaml: lint a copy that holds
        # the case's values (JSON is YAML).
        lint_dir = tempfile.mkdtemp()
        lint_chart = shutil.copytree(chart, os.path.join(lint_dir, os.path.basename(chart)))
        with open(os.path.join(lint_chart, "values.yaml"), "w") as fh:
            json.dump(values, fh)
    try:
        config = helm_sdkpy.Configuration(namespace="segport")
        with captured_stderr_fd() as log:
            report = await helm_sdkpy.Lint(config).run(lint_chart)
        return report, log
    finally:
        if lint_dir:
            shutil.rmtree(lint_dir)


async def install(chart: str, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The objects Helm creates for ``values``, its NOTES, or the error it stops with."""
    kube = FakeKubernetes()
    try:
        config = helm_sdkpy.Configuration(namespace="segport", kubeconfig=kube.kubeconfig())
        release = await helm_sdkpy.Install(config).run(
            name, chart, values=values, wait=False, timeout=30
        )
        notes = (release.get("info") or {}).get("notes", "")
        return {"objects": kube.created, "notes": notes, "error": None}
    except helm_sdkpy.HelmError as exc:
        return {"objects": [], "notes": "", "error": str(exc)}
    finally:
        kube.close()


async def run_case(chart: str, case: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"name": case["name"], "error": None, "objects": [], "notes": ""}
    if "lint_values" in case:
        result["lint"], result["lint_log"] = await lint(chart, case["lint_values"])
    if case.get("values") is not None:
        result.update(await install(chart, case["name"], case["values"]))
    return result


async def main() -> None:
    request = json.load(sys.stdin)
    answers = [await run_case(request["chart"], case) for case in request["cases"]]
    json.dump({"cases": answers}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
