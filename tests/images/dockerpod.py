"""Run one container of a Pod the chart renders with ``docker run``, the way a kubelet would.

From the rendered Pod spec: ``command``/``args`` (``$(VAR)`` expanded from the env, as
Kubernetes does), the env (values, ``secretKeyRef`` into the rendered Secrets, ``fieldRef``
``metadata.name``), the user (``runAsUser``/``runAsGroup``, ``fsGroup`` as an extra group),
``readOnlyRootFilesystem`` (``--read-only``), ``capabilities.drop: [ALL]``,
``allowPrivilegeEscalation: false`` (``no-new-privileges``), the memory limit, and the volumes:
an ``emptyDir`` or a claim becomes a tmpfs owned by the Pod's user and ``fsGroup`` (mode 0777 and
executable, as an emptyDir is), a ``configMap`` a read-only bind mount of its rendered items.

The network is the host's (``--network host``): a test changes the listening address to
127.0.0.1 and the port to a free one through ``patch`` hooks, and probes on loopback only.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Manifest = dict[str, Any]

_QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "": 1}


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"([0-9.]+)([KMGT]i)?", quantity).groups()  # type: ignore[union-attr]
    return int(float(number) * _QUANTITY[unit or ""])


def find(manifests: Sequence[Manifest], kind: str, name: str) -> Manifest:
    hits = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    if len(hits) != 1:
        raise AssertionError(f"expected one {kind}/{name} in the rendered chart, got {len(hits)}")
    return hits[0]


def pod_spec(manifests: Sequence[Manifest], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = find(manifests, kind, name)["spec"]["template"]["spec"]
    return spec


@dataclass
class PodContainer:
    """One container of a rendered Pod, made ready to run; tests adjust it before ``start``."""

    manifests: Sequence[Manifest]
    pod: dict[str, Any]
    container: dict[str, Any]
    pod_name: str
    workdir: Path
    #: Extra arguments appended after the rendered ones (e.g. a loopback address).
    extra_args: list[str] = field(default_factory=list)
    #: Env overrides on top of the rendered env.
    extra_env: dict[str, str] = field(default_factory=dict)
    #: configMap file rewrites: (volume name, item path) -> function of the rendered text.
    file_patches: dict[tuple[str, str], Callable[[str], str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, manifests: Sequence[Manifest], kind: str, name: str, container: str, workdir: Path
    ) -> PodContainer:
        spec = pod_spec(manifests, kind, name)
        (found,) = [c for c in spec["containers"] if c["name"] == container]
        return cls(manifests, spec, found, f"{name}-0", workdir)

    def secret(self, name: str, key: str) -> str | None:
        hits = [
            m for m in self.manifests if m["kind"] == "Secret" and m["metadata"]["name"] == name
        ]
        if not hits or key not in hits[0].get("data", {}):
            return None
        return base64.b64decode(hits[0]["data"][key]).decode()

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.container.get("env", []):
            source = item.get("valueFrom")
            if source is None:
                out[item["name"]] = str(item.get("value", ""))
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                value = self.secret(ref["name"], ref["key"])
                if value is None and not ref.get("optional"):
                    raise AssertionError(
                        f"env {item['name']}: no Secret {ref['name']}/{ref['key']}"
                    )
                if value is not None:
                    out[item["name"]] = value
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
                out[item["name"]] = self.pod_name
            else:
                raise AssertionError(f"env {item['name']}: unsupported source {source}")
        return out | self.extra_env

    def _expand(self, words: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """Kubernetes' ``$(VAR)`` expansion in command and args (``$$`` escapes)."""

        def one(word: str) -> str:
            return re.sub(
                r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
                word,
            )

        return [one(w) for w in words]

    def _volume_args(self, user: int, group: int) -> list[str]:
        volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        args: list[str] = []
        for mount in self.container.get("volumeMounts", []):
            path, volume = mount["mountPath"], volumes.get(mount["name"])
            if volume is None or "emptyDir" in volume:
                # A claim (volumeClaimTemplates) or an emptyDir: an empty, writable folder.
                size = (volume or {}).get("emptyDir", {}).get("sizeLimit", "1Gi")
                args += [
                    "--tmpfs",
                    f"{path}:rw,exec,size={_bytes(size)},uid={user},gid={group},mode=0777",
                ]
            elif "configMap" in volume:
                cm = find(self.manifests, "ConfigMap", volume["configMap"]["name"])["data"]
                items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in cm]
                folder = self.workdir / f"cm-{mount['name']}-{uuid.uuid4().hex[:6]}"
                folder.mkdir(parents=True)
                folder.chmod(0o755)
                for item in items:
                    text = cm[item["key"]]
                    patch = self.file_patches.get((mount["name"], item["path"]))
                    target = folder / item["path"]
                    target.write_text(patch(text) if patch else text, encoding="utf-8")
                    target.chmod(0o644)
                # Mount points of nested mounts must exist in a read-only parent.
                for other in self.container.get("volumeMounts", []):
                    if other["mountPath"].startswith(path.rstrip("/") + "/"):
                        (folder / other["mountPath"][len(path) :].strip("/")).mkdir(
                            parents=True, exist_ok=True, mode=0o755
                        )
                args += ["-v", f"{folder}:{path}:ro"]
            else:
                raise AssertionError(f"volume {mount['name']}: unsupported type {volume}")
        return args

    def run_args(self, image: str, name: str) -> list[str]:
        """The ``docker run`` arguments (after ``run``)."""
        pod_sc = self.pod.get("securityContext", {})
        sc = self.container.get("securityContext", {})
        user, group = pod_sc["runAsUser"], pod_sc.get("runAsGroup", pod_sc["runAsUser"])
        fs_group = pod_sc.get("fsGroup", group)
        args = ["-d", "--name", name, "--network", "host", "--user", f"{user}:{group}"]
        args += ["--group-add", str(fs_group), "--hostname", self.pod_name]
        if sc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if "ALL" in sc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", "ALL"]
        limit = self.container.get("resources", {}).get("limits", {}).get("memory")
        if limit:
            args += ["--memory", str(_bytes(limit))]
        env = self.env()
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args += self._volume_args(user, fs_group)
        command = self._expand(self.container.get("command", []), env)
        rest = self._expand(self.container.get("args", []), env) + self.extra_args
        if command:
            args += ["--entrypoint", command[0], image, *command[1:], *rest]
        else:
            args += [image, *rest]
        return args


@dataclass
class Running:
    """A started container: its name, and the docker CLI to reach it."""

    docker: Callable[..., subprocess.CompletedProcess[str]]
    name: str

    def logs(self) -> str:
        out = self.docker("logs", "--tail", "60", self.name, check=False)
        return f"{out.stdout}{out.stderr}"[-4000:]

    def alive(self) -> bool:
        out = self.docker("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return out.stdout.strip() == "true"

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.docker("exec", self.name, *command, check=False)

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll ``check`` until true; the seconds it took. Fails early when the container exits."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.alive():
                raise AssertionError(f"{self.name} exited before {what}:\n{self.logs()}")
            with contextlib.suppress(OSError, ValueError):
                if check():
                    return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: no {what} within {timeout:.0f} s:\n{self.logs()}")


@contextlib.contextmanager
def started(
    docker: Callable[..., subprocess.CompletedProcess[str]], spec: PodContainer, image: str
) -> Iterator[Running]:
    """``docker run`` the container; removed (with its tmpfs volumes) at the end."""
    name = f"smepulse-test-{spec.container['name']}-{uuid.uuid4().hex[:8]}"
    docker("run", *spec.run_args(image, name))
    try:
        yield Running(docker, name)
    finally:
        docker("rm", "-f", name, check=False)


def probe(running: Running, container: dict[str, Any], kind: str, ports: Mapping[str, int]) -> bool:
    """One run of the container's ``<kind>Probe`` as rendered, on loopback; ``ports`` maps the
    container's port names to the ports the test gave the process."""
    spec = container[f"{kind}Probe"]
    if "httpGet" in spec:
        port = ports[spec["httpGet"]["port"]]
        url = f"http://127.0.0.1:{port}{spec['httpGet']['path']}"
        with urllib.request.urlopen(url, timeout=spec.get("timeoutSeconds", 1)) as r:
            status: int = r.status
            return 200 <= status < 400
    if "tcpSocket" in spec:
        port = ports[spec["tcpSocket"]["port"]]
        with socket.create_connection(("127.0.0.1", port), timeout=spec.get("timeoutSeconds", 1)):
            return True
    if "exec" in spec:
        return running.exec(*spec["exec"]["command"]).returncode == 0
    raise AssertionError(f"unsupported probe {spec}")


def urlopen_text(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        text: str = r.read().decode()
        return text
