"""Rendering the smepulse chart with the real Helm binary, for the chart tests.

Helm comes from the Kubernetes tool cache built by ``scripts/k8s-tools.sh`` (see
``tests/kube/tools.py``), else from ``PATH``. Rendering needs no cluster, so the tests that only
render are unit tests; the integration tests reuse the same helpers with the real API server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "smepulse"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSION = "1.34.0"

Manifest = dict[str, Any]


class HelmUnavailable(RuntimeError):
    """No Helm binary: neither in the tool cache nor on PATH."""


def find_helm() -> Path:
    """The Helm binary of the tool cache, else ``helm`` on PATH."""
    try:
        from tests.kube.tools import ToolsUnavailable, find_bin_dir

        try:
            return find_bin_dir() / "helm"
        except ToolsUnavailable:
            pass
    except ImportError:
        pass
    found = shutil.which("helm")
    if found:
        return Path(found)
    raise HelmUnavailable("helm not found: build it with `bash scripts/k8s-tools.sh`")


@dataclass(frozen=True)
class Helm:
    """A Helm binary with its caches in a private folder (never the user's ~/.config/helm)."""

    binary: Path
    home: Path

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HELM_CACHE_HOME": str(self.home / "cache"),
                "HELM_CONFIG_HOME": str(self.home / "config"),
                "HELM_DATA_HOME": str(self.home / "data"),
            }
        )
        env.update(extra or {})
        return env

    def run(
        self, *args: str, check: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=300,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
            )
        return proc

    def template_text(
        self,
        values: Sequence[Path] = (),
        sets: Mapping[str, str] | None = None,
        release: str = "smepulse",
        namespace: str = "smepulse",
        extra: Iterable[str] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", release, str(CHART), "--namespace", namespace]
        args += ["--kube-version", KUBE_VERSION]
        for path in values:
            args += ["-f", str(path)]
        for key, value in (sets or {}).items():
            args += ["--set", f"{key}={value}"]
        return self.run(*args, *extra, check=check)

    def template(
        self,
        values: Sequence[Path] = (),
        sets: Mapping[str, str] | None = None,
        release: str = "smepulse",
        namespace: str = "smepulse",
    ) -> list[Manifest]:
        """Render and parse; hooks and test Pods included (as ``helm template`` does)."""
        out = self.template_text(values, sets, release, namespace).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


def find(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one manifest of ``kind`` (and ``name``); AssertionError listing what exists."""
    hits = [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    if len(hits) != 1:
        names = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(hits)} in {names}")
    return hits[0]


def kinds(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def pod_specs(manifests: Sequence[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every Pod template the chart renders."""
    out: list[tuple[str, dict[str, Any]]] = []
    for m in manifests:
        spec = m.get("spec", {})
        ref = f"{m['kind']}/{m['metadata']['name']}"
        if m["kind"] == "Pod":
            out.append((ref, spec))
        elif m["kind"] in ("Deployment", "StatefulSet", "Job"):
            out.append((ref, spec["template"]["spec"]))
        elif m["kind"] == "CronJob":
            out.append((ref, spec["jobTemplate"]["spec"]["template"]["spec"]))
    return out
