"""A real Kubernetes node (tests/kube/realnode.py): Pods run as containers from the locally built
images, reach each other through a ClusterIP Service and by its DNS names (CoreDNS, nothing
resolved outside the cluster), and the node's teardown leaves the host as it found it.

Needs root, ``scripts/node-tools.sh``, ``scripts/k8s-tools.sh`` and the Docker engine with the
base images (``scripts/docker-tools.sh``).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import sys
from typing import Any

import pytest
from kubernetes import client

from tests.kube.realnode import (
    CLUSTER_DNS_IP,
    POD_CIDR,
    RealCluster,
    host_snapshot,
    run,
    snapshot_diff,
)
from tests.kube.wait import wait_for, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DEBIAN = "smepulse-local/debian:bookworm"
PYTHON = "smepulse-local/python3:bookworm"


def _pod(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "containers": [{"name": name, "image": image, "command": command}],
            **spec,
        },
    }


def _phase(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    phase = core.read_namespaced_pod(name, ns).status.phase
    return str(phase) if phase in ("Succeeded", "Failed") else None


def test_job_runs_in_a_container_and_kubectl_logs_reads_it(
    real_cluster: RealCluster, real_api: client.ApiClient, real_namespace: str
) -> None:
    ns = real_namespace
    job = {
        "metadata": {"name": "hello"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": _pod(
                    "hello",
                    DEBIAN,
                    # The container's hostname is its Pod's name: proof it ran in the Pod's sandbox.
                    ["sh", "-c", "echo hello; cat /proc/sys/kernel/hostname"],
                )["spec"]
            },
        },
    }
    client.BatchV1Api(real_api).create_namespaced_job(ns, job)
    assert wait_for_job(real_api, ns, "hello", timeout=120) == "Complete"

    pods = client.CoreV1Api(real_api).list_namespaced_pod(ns, label_selector="job-name=hello")
    (pod,) = pods.items
    assert pod.status.phase == "Succeeded"
    assert pod.spec.node_name == real_cluster.node_name
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(POD_CIDR)
    logs = real_cluster.kubectl("logs", "-n", ns, "job/hello").stdout
    assert logs.splitlines() == ["hello", pod.metadata.name]


def _serve_pong(real_cluster: RealCluster, core: client.CoreV1Api, ns: str) -> tuple[str, str]:
    """Pod ``server`` (HTTP, ``/ping`` answers ``pong``) behind Service ``server`` (port 80);
    returns the Service's ClusterIP and the Pod's IP once the Service has a ready endpoint."""
    server = _pod(
        "server",
        PYTHON,
        [
            "sh",
            "-c",
            "mkdir -p /tmp/www && echo pong > /tmp/www/ping && "
            "exec python3 -m http.server 8080 --directory /tmp/www",
        ],
    )
    server["spec"]["containers"][0]["readinessProbe"] = {
        "tcpSocket": {"port": 8080},
        "periodSeconds": 1,
    }
    core.create_namespaced_pod(ns, server)
    service = core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "server"},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    cluster_ip = service.spec.cluster_ip
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.96.0.0/16")

    def ready_endpoint() -> list[str]:
        # kubectl, not the Python client: its EndpointSlice model rejects `endpoints: null`.
        slices = real_cluster.kubectl_json(
            "get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=server"
        )
        return [
            addr
            for s in slices["items"]
            for e in s.get("endpoints") or []
            if e["conditions"].get("ready")
            for addr in e["addresses"]
        ]

    (server_ip,) = wait_for(ready_endpoint, timeout=120, what="a ready endpoint of Service server")

    def proxied() -> bool:
        # kube-proxy programs the endpoint a moment after the EndpointSlice says ready; until
        # then the ClusterIP answers "no route to host" (its reject rule for a Service without
        # endpoints). A CI run hit that window once.
        nat = run([*real_cluster.nsenter(), "iptables-save", "-t", "nat"])
        return f"--to-destination {server_ip}:8080" in nat

    wait_for(proxied, timeout=60, what=f"kube-proxy's DNAT rule to {server_ip}:8080")
    return str(cluster_ip), str(server_ip)


def test_pod_reaches_another_pods_service_by_cluster_ip(
    real_cluster: RealCluster, real_api: client.ApiClient, real_namespace: str
) -> None:
    ns = real_namespace
    core = client.CoreV1Api(real_api)
    cluster_ip, server_ip = _serve_pong(real_cluster, core, ns)
    fetch = (
        "import urllib.request; "
        f"print(urllib.request.urlopen('http://{cluster_ip}/ping', timeout=10).read().decode())"
    )
    core.create_namespaced_pod(ns, _pod("client", PYTHON, ["python3", "-c", fetch]))
    phase = wait_for(
        lambda: _phase(core, ns, "client"),
        timeout=120,
        what="Pod client to finish",
        describe=lambda: str(core.read_namespaced_pod("client", ns).status),
    )
    logs = core.read_namespaced_pod_log("client", ns)
    assert phase == "Succeeded", logs
    assert logs.strip() == "pong"
    client_ip = core.read_namespaced_pod("client", ns).status.pod_ip
    assert client_ip != server_ip  # two Pods, two addresses: the request crossed the bridge


# Runs in the client Pod: its resolv.conf, then each name's address and what /ping answers
# through it; for a name outside the cluster, the resolver's error.
_LOOKUPS = """
import json, socket, sys, urllib.request
out = {"resolv.conf": open("/etc/resolv.conf").read().split("\\n")}
for name in sys.argv[1:-1]:
    ip = socket.gethostbyname(name)
    body = urllib.request.urlopen(f"http://{name}/ping", timeout=10).read().decode().strip()
    out[name] = [ip, body]
try:
    out[sys.argv[-1]] = socket.getaddrinfo(sys.argv[-1], 80)[0][4][0]
except socket.gaierror as exc:
    out[sys.argv[-1]] = [exc.errno, exc.strerror]
print(json.dumps(out))
"""


def _drop_counters(real_cluster: RealCluster) -> list[str]:
    """Packet counters of the node's rules that drop new connections out of its veth."""
    rules = run([*real_cluster.nsenter(), "iptables-save", "-c", "-t", "filter"]).splitlines()
    return [r for r in rules if f"-o {real_cluster.veth_node} " in r and "-j DROP" in r]


def test_pod_resolves_service_names_and_nothing_outside_the_cluster(
    real_cluster: RealCluster, real_api: client.ApiClient, real_namespace: str
) -> None:
    """Through kubelet's resolv.conf and CoreDNS: ``server``, ``server.<ns>`` and
    ``server.<ns>.svc.cluster.local`` are the Service's ClusterIP, and HTTP by each name
    reaches the Pod behind it; ``example.com`` does not resolve (NXDOMAIN from CoreDNS,
    which has no upstream) and no packet tries to leave the node."""
    ns = real_namespace
    core = client.CoreV1Api(real_api)
    cluster_ip, _ = _serve_pong(real_cluster, core, ns)
    names = ["server", f"server.{ns}", f"server.{ns}.svc.cluster.local"]
    outside = "example.com"
    drops_before = _drop_counters(real_cluster)
    assert len(drops_before) == 2, drops_before  # OUTPUT and FORWARD
    core.create_namespaced_pod(
        ns, _pod("lookup", PYTHON, ["python3", "-c", _LOOKUPS, *names, outside])
    )
    phase = wait_for(lambda: _phase(core, ns, "lookup"), timeout=120, what="Pod lookup to finish")
    # kubectl, not the Python client: that one turns a log that is JSON into a Python repr.
    logs = real_cluster.kubectl("logs", "-n", ns, "lookup").stdout
    assert phase == "Succeeded", logs
    out = json.loads(logs)
    # What kubelet writes for dnsPolicy ClusterFirst with clusterDNS/clusterDomain.
    assert [line for line in out["resolv.conf"] if line] == [
        f"search {ns}.svc.cluster.local svc.cluster.local cluster.local",
        f"nameserver {CLUSTER_DNS_IP}",
        "options ndots:5",
    ]
    for name in names:
        assert out[name] == [cluster_ip, "pong"], name
    assert out[outside] == [socket.EAI_NONAME, "Name or service not known"]

    # CoreDNS itself answered the outside name to this Pod, NXDOMAIN (its log has one line per
    # query: [INFO] <client>:<port> - <id> "A IN example.com. udp ..." NXDOMAIN ...).
    lookup_ip = core.read_namespaced_pod("lookup", ns).status.pod_ip
    asked = [
        line
        for line in (real_cluster.log_dir / "coredns.log").read_text().splitlines()
        if re.match(rf"\[INFO\] {re.escape(lookup_ip)}:\d+ .*\"A IN {outside}\. ", line)
    ]
    assert asked and all(" NXDOMAIN " in line for line in asked), asked
    assert _drop_counters(real_cluster) == drops_before


def test_pod_under_enforced_restricted_standard_runs_locked_down(
    real_cluster: RealCluster, real_api: client.ApiClient, real_namespace: str
) -> None:
    """Under an enforced ``restricted`` Pod Security Standard the runtime really applies what
    the Pod asks for: its uid, no capabilities, no new privileges, the runtime's default
    seccomp filter and a read-only root filesystem (the stand-in ignores all of these)."""
    ns = real_namespace
    core = client.CoreV1Api(real_api)
    core.patch_namespace(
        ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    script = (
        "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
        "touch /probe 2>/dev/null || echo read-only root"
    )
    pod = _pod("locked", DEBIAN, ["sh", "-c", script])
    pod["spec"]["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod["spec"]["containers"][0]["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    core.create_namespaced_pod(ns, pod)
    phase = wait_for(lambda: _phase(core, ns, "locked"), timeout=120, what="Pod locked to finish")
    logs = core.read_namespaced_pod_log("locked", ns)
    assert phase == "Succeeded", logs
    assert logs.split("\n")[:5] == [
        "10001",
        "CapEff:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",  # 2 = filter mode
        "read-only root",
    ], logs
    # The same Pod as root is refused at admission.
    del pod["spec"]["securityContext"]["runAsUser"]
    pod["metadata"]["name"] = "as-root"
    pod["spec"]["securityContext"]["runAsNonRoot"] = False
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod(ns, pod)
    assert refused.value.status == 403 and "restricted" in str(refused.value.body)


def test_node_cannot_open_a_connection_out_of_its_namespace(real_cluster: RealCluster) -> None:
    """The hard network rule: the veth's root side listens, the node's namespace has a route
    to it, yet a new connection from the namespace is dropped (while the root side still
    reaches the API server inside, as every other test shows)."""
    with socket.socket() as listener:
        listener.bind((real_cluster.host_ip, 0))
        listener.listen()
        port = listener.getsockname()[1]
        connect = f"import socket; socket.create_connection(({real_cluster.host_ip!r}, {port}), 3)"
        probe = subprocess.run(
            [*real_cluster.nsenter(), sys.executable, "-c", connect],
            capture_output=True,
            text=True,
            check=False,
        )
    assert probe.returncode != 0
    assert "timed out" in probe.stderr, probe.stderr


def test_teardown_leaves_the_host_as_before(
    real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A second node of its own (beside the session's), one Pod run on it, then stopped: the
    root namespace's addresses, routes, links, iptables rules, network namespaces, mounts,
    cgroups, kubelet's sysctls and host paths are exactly as before."""
    workdir = tmp_path_factory.mktemp("realnode-teardown")
    before = host_snapshot(workdir)
    node = RealCluster(
        workdir,
        bin_dir=real_cluster.bin_dir,
        node_bin_dir=real_cluster.node_bin_dir,
        images=(DEBIAN,),
    )
    try:
        node.start()
        during = host_snapshot(workdir)
        # The snapshot sees the node: its veth address, netns and cgroups appear.
        assert any(node.host_ip in a for a in during["addresses"]), during["addresses"]
        assert node.netns in " ".join(during["netns"])
        node.kubectl(
            "run", "once", f"--image={DEBIAN}", "--restart=Never", "--", "sh", "-c", "echo ok"
        )
        node.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/once", "--timeout=120s"
        )
        assert node.kubectl("logs", "once").stdout == "ok\n"
    finally:
        node.stop()
    assert snapshot_diff(before, host_snapshot(workdir)) == ""
