"""Which addresses a Pod can open a TCP connection to: the NetworkPolicy tests' probe.

:func:`reach_from_pod` starts one Pod (``restartPolicy: Never``, the ``restricted`` Pod
Security Standard's settings, so it runs in an enforcing namespace too) that tries each
``host:port`` once and prints what happened: ``open``, or the name of the error
(``TimeoutError`` when a NetworkPolicy drops the connection's first packet,
``ConnectionRefusedError`` when nothing listens). It returns that as a dict once the Pod has
finished, and deletes the Pod.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from tests.kube.wait import gone, wait_for

# Waits before the first attempt: the policy controller learns a new Pod's address from the API
# server (kube-network-policies without NRI), and a packet from an address it does not know yet
# matches no podSelector. A real client's start-up takes longer than this.
_PROBE = """
import json, socket, sys, time
time.sleep(float(sys.argv[1]))
seen = {}
for target in sys.argv[2:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=float(sys.argv[1]) + 3).close()
        seen[target] = "open"
    except OSError as exc:
        seen[target] = type(exc).__name__
print(json.dumps(seen))
"""


def reach_from_pod(
    api: client.ApiClient,
    namespace: str,
    name: str,
    image: str,
    targets: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    settle_seconds: float = 3.0,
    python: str = "python3",
) -> dict[str, str]:
    """``{target: "open" | error name}`` as seen from a new Pod ``name`` with ``labels``."""
    core = client.CoreV1Api(api)
    pod: dict[str, Any] = {
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "command": [python, "-c", _PROBE, str(settle_seconds), *targets],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                }
            ],
        },
    }
    core.create_namespaced_pod(namespace, pod)
    try:
        phase = wait_for(
            lambda: _finished(core, namespace, name),
            timeout=120 + len(targets) * (settle_seconds + 3),
            what=f"probe Pod {namespace}/{name} to finish",
            describe=lambda: str(core.read_namespaced_pod(name, namespace).status),
        )
        log = core.read_namespaced_pod_log(name, namespace)
        assert phase == "Succeeded", f"probe Pod {name} {phase}: {log}"
        seen: dict[str, str] = json.loads(log.strip().splitlines()[-1])
        return seen
    finally:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        wait_for(
            lambda: gone(lambda: core.read_namespaced_pod(name, namespace)),
            timeout=60,
            what=f"probe Pod {namespace}/{name} deleted",
        )


def _finished(core: client.CoreV1Api, namespace: str, name: str) -> str | None:
    phase = core.read_namespaced_pod(name, namespace).status.phase
    return str(phase) if phase in ("Succeeded", "Failed") else None
