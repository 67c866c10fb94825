"""A real one-node Kubernetes cluster in a network namespace of its own.

:class:`RealCluster` runs, on this machine and inside a network namespace the run creates:
etcd, kube-apiserver and kube-controller-manager (:class:`~tests.kube.controlplane.ControlPlane`
with ``host`` = the namespace's address), kube-scheduler, a private containerd (its own config,
root, state and socket; Debian's containerd 1.6 and runc), kubelet and kube-proxy (iptables
mode), and CoreDNS for Service names. Pods are real containers, with real Pod IPs on a CNI
bridge, ClusterIP Services and cluster DNS.
Binaries come from ``scripts/k8s-tools.sh`` and ``scripts/node-tools.sh``; images from the local
Docker engine (``scripts/docker-tools.sh``), copied in with ``docker save | ctr images import``.

The network (a hard rule, see ``../shared/RECIPES.md`` "A real node"): traffic goes only to
loopback and into the run's own namespace.

* ``ip netns add smepulse-node-<id>``; a veth pair, root side ``10.250.X.Y+2/30`` and node side
  ``10.250.X.Y+1/30`` (``addrgenmode none``, no default route anywhere); the /30 is the first
  one no other address on this machine uses;
* in the namespace an iptables rule drops every *new* outbound connection on the veth, so
  nothing in the node opens a connection out of it (replies to the root side still flow);
* every process starts with ``nsenter --net=/run/netns/<ns> --`` (not ``ip netns exec``,
  whose private mount namespace hides the cgroup hierarchy from kubelet and runc);
* the pod range 10.244.0.0/24 lives on ``cni0`` inside the namespace, and the service range
  10.96.0.0/16 is routed to ``cni0`` there (else node → ClusterIP fails with ENETUNREACH).

Cluster DNS (the choice made here, see :meth:`RealCluster._start_coredns`): CoreDNS runs as a
host process in the node's namespace, like kube-proxy, listening on the node address
``10.250.X.Y+1:53`` (UDP and TCP), which Pods reach through their route to the node. Service
``kube-system/kube-dns`` has the fixed ClusterIP ``10.96.0.10`` (kubelet's ``clusterDNS``;
``clusterDomain: cluster.local``), no selector, and one EndpointSlice of ours pointing at that
address, so kube-proxy sends Pods' lookups there. Its ``kubernetes`` plugin reads the API server
as ``system:coredns`` with a ClusterRole of its own (list/watch Services, EndpointSlices,
Namespaces). There is no ``forward`` plugin (not even linked in): ``cluster.local`` and the
reverse zones are answered from the API; every other name gets NXDOMAIN from a ``template``,
and nothing is ever sent upstream.

Teardown (:meth:`RealCluster.stop`, also at interpreter exit) removes everything the run made:
processes, pod sandboxes (``crictl rmp -af``, which also runs the CNI teardown), leftover
shims of this containerd, kube-proxy's rules (``kube-proxy --cleanup``), mounts under the
workdir, the kubelet's cgroups (``/sys/fs/cgroup/*/smepulse-node-<id>``), the veth, the
namespace and the ``/run/netns`` bind mount if ``ip netns add`` created it; it restores the
kernel sysctls kubelet changes. Every step runs even if an earlier one failed; the errors are
raised together at the end.

Run it by hand (as root)::

    python -m tests.kube.cluster up     # prints the kubeconfig path; Ctrl-C tears it down

Credentials are deliberately simple: kubelet, kube-scheduler and kube-proxy use client
certificates in ``system:masters`` (no node authorizer, no TLS bootstrap); kubelet accepts
client certificates of the cluster CA with ``AlwaysAllow`` (only reachable from the host).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.kube.controlplane import (
    ControlPlane,
    ControlPlaneError,
    _client_context,
    _Component,
    _http_ok,
    free_ports,
)
from tests.kube.pki import ClusterPKI, issue_client_cert
from tests.kube.procs import tail
from tests.kube.tools import REPO_ROOT, find_bin_dir

log = logging.getLogger(__name__)

NODE_TOOLS_SCRIPT = REPO_ROOT / "scripts" / "node-tools.sh"
DOCKER_TOOLS_SCRIPT = REPO_ROOT / "scripts" / "docker-tools.sh"
NODE_TOOLS = (
    "kubelet",
    "kube-scheduler",
    "kube-proxy",
    "crictl",
    "pause",
    "containerd",
    "ctr",
    "coredns",
)
NODE_NAME = "smepulse-node"
POD_CIDR = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DNS_IP = "10.96.0.10"  # kubelet's clusterDNS: the kube-dns Service's ClusterIP
CLUSTER_DOMAIN = "cluster.local"
VETH_POOL = ipaddress.IPv4Network("10.250.0.0/16")
DEFAULT_IMAGES = ("smepulse-local/debian:bookworm", "smepulse-local/python3:bookworm")
# Kernel (not per-namespace) sysctls kubelet sets when it starts (protectKernelDefaults off):
# saved before, restored after.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
_LOCK_FILE = Path("/run/lock/smepulse-realnode.lock")
# One JSON record per live node (what its teardown needs), so `python -m tests.kube.cluster
# clean` can finish the teardown of a run that was killed with SIGKILL.
RECORDS = Path("/run/smepulse-realnode")
# Host paths kubelet uses whatever its configuration says: the device plugin folder and the
# log symlinks. Teardown removes what the run created there (symlinks into its workdir,
# sockets, empty folders). containerd 1.6 also puts shim sockets in /run/containerd/s; that
# folder is shared with the Docker engine's containerd, so it is left alone (each shim
# removes its own socket when it exits; runc's state goes to the workdir).
HARD_CODED_PATHS = (Path("/var/lib/kubelet"), Path("/var/log/containers"))


class NodeError(RuntimeError):
    """The real node did not come up or did not tear down cleanly; the message says what."""


class NodeToolsUnavailable(RuntimeError):
    """The node binaries (scripts/node-tools.sh) or the Docker engine are not there."""


def find_node_bin_dir(*, build: bool | None = None) -> Path:
    """The directory ``scripts/node-tools.sh`` prints ($SMEPULSE_NODE_BIN_DIR wins)."""
    explicit = os.environ.get("SMEPULSE_NODE_BIN_DIR")
    if explicit:
        bin_dir = Path(explicit)
    else:
        if build is None:
            build = os.environ.get("SMEPULSE_KUBE_BUILD") == "1"
        args = ["bash", str(NODE_TOOLS_SCRIPT), "--print-bin-dir"] + ([] if build else ["--check"])
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail_ = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise NodeToolsUnavailable(
                f"node binaries not available ({tail_ or 'no output'}); "
                f"build them once with `bash scripts/node-tools.sh` (~4 min on 2 cores)"
            )
        bin_dir = Path(lines[-1])
    missing = [t for t in NODE_TOOLS if not os.access(bin_dir / t, os.X_OK)]
    if missing or not (bin_dir / "cni" / "bridge").exists():
        raise NodeToolsUnavailable(f"{bin_dir} lacks {', '.join(missing) or 'cni/bridge'}")
    return bin_dir


def docker_env() -> dict[str, str]:
    """``DOCKER_HOST`` and ``SMEPULSE_DOCKER_BIN`` of a running engine with the base images
    (from the environment, else from ``scripts/docker-tools.sh``, which starts one if needed:
    then both are exported for the rest of the process, and an engine this call started is
    stopped when the process exits)."""
    if os.environ.get("DOCKER_HOST") and os.environ.get("SMEPULSE_DOCKER_BIN"):
        return {k: os.environ[k] for k in ("DOCKER_HOST", "SMEPULSE_DOCKER_BIN")}
    proc = subprocess.run(
        ["bash", str(DOCKER_TOOLS_SCRIPT)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise NodeToolsUnavailable(
            f"scripts/docker-tools.sh failed ({proc.returncode}): {proc.stderr[-2000:]}"
        )
    env = {}
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r"export (\w+)=['\"]?(.*?)['\"]?", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    if "DOCKER_HOST" not in env or "SMEPULSE_DOCKER_BIN" not in env:
        raise NodeToolsUnavailable(f"scripts/docker-tools.sh printed no engine: {proc.stdout!r}")
    if env.get("SMEPULSE_DOCKERD_STARTED") == "1":
        # Started for this process: stop it when the process ends (its pid file only).
        atexit.register(
            subprocess.run,
            ["bash", str(DOCKER_TOOLS_SCRIPT), "--stop"],
            capture_output=True,
            check=False,
        )
    os.environ.update({k: env[k] for k in ("DOCKER_HOST", "SMEPULSE_DOCKER_BIN")})
    return env


def run(argv: list[str], *, input: bytes | None = None, check: bool = True) -> str:
    """Run a command; on failure raise :class:`NodeError` with its output."""
    proc = subprocess.run(argv, input=input, capture_output=True, check=False, timeout=300)
    if check and proc.returncode != 0:
        raise NodeError(
            f"{' '.join(argv)} failed ({proc.returncode}):\n"
            f"{proc.stdout.decode(errors='replace')[-2000:]}"
            f"{proc.stderr.decode(errors='replace')[-2000:]}"
        )
    return proc.stdout.decode(errors="replace")


def mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below ``prefix`` (from /proc/self/mountinfo), deepest first."""
    found = []
    root = str(prefix).rstrip("/")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def _is_mount_point(path: str) -> bool:
    return path in mounts_under(Path(path))


_LIVE: weakref.WeakSet[RealCluster] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for cluster in list(_LIVE):
        with contextlib.suppress(Exception):
            cluster.stop()


#: Free space a node run needs where its work folder is (containerd's images, volumes, logs).
MIN_FREE_BYTES = 12 * 2**30


class RealCluster:
    """Control plane + a real node (kubelet, containerd, kube-proxy) in its own netns.

    After :meth:`start`: ``kubeconfig``, ``server`` and ``kubectl()`` as on
    :class:`ControlPlane` (``control_plane``), ``node_name``, ``netns``, ``node_ip``,
    ``workdir``, ``log_dir`` (one log per process; CoreDNS logs every query to
    ``coredns.log``), ``ready_seconds`` (nothing → node Ready and cluster DNS serving),
    ``dns_seconds`` (the part of it spent only on CoreDNS: its manifest applied, and the wait
    for its ``/ready`` after kube-proxy's). ``dns=False`` leaves CoreDNS out: kubelet then has
    no ``clusterDNS`` and Pods reach Services by ClusterIP only.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        bin_dir: Path | None = None,
        node_bin_dir: Path | None = None,
        images: Iterable[str] = DEFAULT_IMAGES,
        docker: Mapping[str, str] | None = None,
        keep: bool = False,
        dns: bool = True,
    ) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir else find_bin_dir()
        self.node_bin_dir = Path(node_bin_dir) if node_bin_dir else find_node_bin_dir()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="smepulse-node-"))
        self.keep = keep
        self.dns = dns
        self.images = tuple(images)
        self._docker = dict(docker) if docker is not None else None
        self.run_id = uuid.uuid4().hex[:8]
        self.netns = f"smepulse-node-{self.run_id}"
        self.veth_host = f"spn{self.run_id}h"  # IFNAMSIZ: at most 15 characters
        self.veth_node = f"spn{self.run_id}n"
        self.cgroup_root = f"/smepulse-node-{self.run_id}"
        self.node_name = NODE_NAME
        self.node_ip = ""
        self.host_ip = ""
        self.log_dir = self.workdir / "logs"
        self.ready_seconds = 0.0
        self._coredns_ready = 0
        self.dns_seconds = 0.0
        self.control_plane: ControlPlane | None = None
        self._components: list[_Component] = []
        self._saved_sysctls: dict[str, str] = {}
        self._run_netns_was_mount = True
        self._existed = {p: p.exists() for p in HARD_CODED_PATHS}
        self._netns_made = False
        self._stopped = False
        self.containerd_sock = self.workdir / "containerd" / "containerd.sock"

    # ---- properties shared with ControlPlane -----------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        assert self.control_plane is not None, "RealCluster not started"
        return self.control_plane.kubeconfig

    @property
    def server(self) -> str:
        assert self.control_plane is not None, "RealCluster not started"
        return self.control_plane.server

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert self.control_plane is not None, "RealCluster not started"
        return self.control_plane.kubectl(*args, **kwargs)

    def kubectl_json(self, *args: str) -> Any:
        assert self.control_plane is not None, "RealCluster not started"
        return self.control_plane.kubectl_json(*args)

    @property
    def _pki(self) -> ClusterPKI:
        assert self.control_plane is not None and self.control_plane.pki is not None
        return self.control_plane.pki

    def nsenter(self) -> list[str]:
        """The prefix that runs a command in the node's network namespace."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--"]

    # ---- start -----------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> RealCluster:
        """Bring everything up and wait until the Node is Ready; on failure tear down and
        raise :class:`NodeError` with the components' log tails."""
        if os.geteuid() != 0:
            raise NodeToolsUnavailable("a real node needs root (network namespaces, cgroups)")
        started = time.monotonic()
        deadline = started + timeout
        self.log_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.workdir).free
        if free < MIN_FREE_BYTES:
            # Seen: 7 GiB free, the images imported, then every Pod Pending for Helm's whole
            # wait while kubelet reclaimed ephemeral storage. Say so before starting anything.
            raise NodeError(
                f"only {free / 2**30:.1f} GiB free on the file system of {self.workdir} (a node "
                f"run needs {MIN_FREE_BYTES / 2**30:.0f} GiB: imported images, volumes, logs); "
                "free space first, e.g. `docker image prune` on the test engine"
            )
        _LIVE.add(self)
        try:
            self._make_network()
            self._start_control_plane(deadline)
            dns_started = time.monotonic()
            coredns = self._start_coredns() if self.dns else None
            self.dns_seconds = time.monotonic() - dns_started
            self._start_scheduler(deadline)
            self._start_containerd(deadline)
            self._import_images()
            self._start_kubelet(deadline)
            self._start_kube_proxy(deadline)
            if coredns is not None:
                dns_started = time.monotonic()
                self._wait(
                    coredns,
                    deadline,
                    lambda: _http_ok(f"http://{self.node_ip}:{self._coredns_ready}/ready", None),
                    "CoreDNS /ready (its kubernetes plugin has synced with the API server)",
                )
                self.dns_seconds += time.monotonic() - dns_started
        except BaseException as exc:
            tails = self.log_tails()
            try:
                self.stop()
            except NodeError as stop_exc:
                tails += f"\n(teardown also failed: {stop_exc})"
            if isinstance(exc, NodeError | ControlPlaneError | TimeoutError):
                raise NodeError(f"real node did not start: {exc}\n{tails}") from exc
            raise
        self.ready_seconds = time.monotonic() - started
        dns = f" (CoreDNS: {self.dns_seconds:.1f} s of it)" if self.dns else " (no cluster DNS)"
        log.info("node Ready in %.1f s%s", self.ready_seconds, dns)
        print(f"node Ready in {self.ready_seconds:.1f} s{dns}", flush=True)
        return self

    def _make_network(self) -> None:
        self._run_netns_was_mount = _is_mount_point("/run/netns")
        _LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        with _LOCK_FILE.open("w") as lock:
            # Two runs must not pick the same /30 on the root side.
            fcntl.flock(lock, fcntl.LOCK_EX)
            subnet = self._free_subnet()
            hosts = list(subnet.hosts())
            self.node_ip, self.host_ip = str(hosts[0]), str(hosts[1])
            run(["ip", "netns", "add", self.netns])
            self._netns_made = True
            self._write_record()
            run(["ip", "link", "add", self.veth_host, "type", "veth", "peer", "name",
                 self.veth_node, "netns", self.netns])  # fmt: skip
            run(["ip", "link", "set", "dev", self.veth_host, "addrgenmode", "none"])
            run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.veth_host])
            run(["ip", "link", "set", "dev", self.veth_host, "up"])
        ns = ["ip", "-n", self.netns]
        run([*ns, "link", "set", "dev", self.veth_node, "addrgenmode", "none"])
        run([*ns, "addr", "add", f"{self.node_ip}/30", "dev", self.veth_node])
        run([*ns, "link", "set", "dev", self.veth_node, "up"])
        run([*ns, "link", "set", "dev", "lo", "up"])
        # The pod bridge exists before the first Pod, so the service route can point at it.
        gateway = ipaddress.ip_network(POD_CIDR)[1]
        run([*ns, "link", "add", "cni0", "type", "bridge"])
        run([*ns, "link", "set", "dev", "cni0", "addrgenmode", "none"])
        run([*ns, "addr", "add", f"{gateway}/{ipaddress.ip_network(POD_CIDR).prefixlen}",
             "dev", "cni0"])  # fmt: skip
        run([*ns, "link", "set", "dev", "cni0", "up"])
        run([*ns, "route", "replace", SERVICE_CIDR, "dev", "cni0"])
        for chain in ("OUTPUT", "FORWARD"):
            run([*self.nsenter(), "iptables", "-w", "-I", chain, "-o", self.veth_node, "-m",
                 "conntrack", "--ctstate", "NEW", "-j", "DROP"])  # fmt: skip
        run([*self.nsenter(), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        used = [
            ipaddress.ip_interface(m)
            for m in re.findall(r"inet (\S+)", run(["ip", "-4", "-o", "addr", "show"]))
        ]
        for subnet in VETH_POOL.subnets(new_prefix=30):
            if not any(iface.network.overlaps(subnet) for iface in used):
                return subnet
        raise NodeError(f"no free /30 left in {VETH_POOL} for the node's veth")

    def _start_control_plane(self, deadline: float) -> None:
        pki_dir = self.workdir / "controlplane" / "pki"
        self.control_plane = ControlPlane(
            self.bin_dir,
            self.workdir / "controlplane",
            keep=True,
            host=self.node_ip,
            service_cidr=SERVICE_CIDR,
            command_prefix=tuple(self.nsenter()),
            service_account_admission=True,
            extra_apiserver_args=(
                f"--kubelet-client-certificate={pki_dir / 'admin.crt'}",
                f"--kubelet-client-key={pki_dir / 'admin.key'}",
                "--kubelet-preferred-address-types=InternalIP",
            ),
        )
        self.control_plane.start(timeout=max(deadline - time.monotonic(), 10))
        issue_client_cert(
            self._pki.ca, pki_dir, "kubelet", f"system:node:{self.node_name}", "system:masters"
        )
        issue_client_cert(
            self._pki.ca, pki_dir, "kube-proxy", "system:kube-proxy", "system:masters"
        )
        issue_client_cert(
            self._pki.ca, pki_dir, "kube-scheduler", "system:kube-scheduler", "system:masters"
        )
        # Not in system:masters: CoreDNS gets only what its ClusterRole grants.
        issue_client_cert(self._pki.ca, pki_dir, "coredns", "system:coredns", None)

    def _kubeconfig_for(self, stem: str) -> Path:
        """A kubeconfig with the client certificate ``pki/<stem>.crt`` (paths, not data)."""
        pki_dir = self.workdir / "controlplane" / "pki"
        path = self.workdir / f"{stem}.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "node",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(pki_dir / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": stem,
                    "user": {
                        "client-certificate": str(pki_dir / f"{stem}.crt"),
                        "client-key": str(pki_dir / f"{stem}.key"),
                    },
                }
            ],
            "contexts": [{"name": "node", "context": {"cluster": "node", "user": stem}}],
            "current-context": "node",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _spawn(self, name: str, argv: list[str]) -> _Component:
        component = _Component(name, [*self.nsenter(), *argv], self.log_dir / f"{name}.log")
        self._components.append(component)
        return component

    def _wait(
        self, component: _Component, deadline: float, ready: Callable[[], object], what: str
    ) -> None:
        while True:
            if not component.alive():
                raise NodeError(
                    f"{component.name} exited with status {component.proc.returncode} "
                    f"while waiting for {what}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise NodeError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def _coredns_manifest(self) -> list[dict[str, Any]]:
        """RBAC for CoreDNS and the ``kube-dns`` Service: a fixed ClusterIP, no selector, and
        an EndpointSlice of ours (not the EndpointSlice controller's) at the node address."""
        labels = {"k8s-app": "kube-dns", "app.kubernetes.io/managed-by": "smepulse-realnode"}
        ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
        return [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "system:coredns", "labels": labels},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["services", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "system:coredns", "labels": labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:coredns",
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "User",
                        "name": "system:coredns",
                    }
                ],
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
                "spec": {
                    "clusterIP": CLUSTER_DNS_IP,
                    "ports": [
                        {"name": n, "protocol": proto, "port": 53, "targetPort": 53}
                        for n, proto in ports
                    ],
                },
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "kube-dns-node",
                    "namespace": "kube-system",
                    "labels": {
                        **labels,
                        "kubernetes.io/service-name": "kube-dns",
                        "endpointslice.kubernetes.io/managed-by": "smepulse-realnode",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [self.node_ip],
                        "conditions": {"ready": True},
                        "nodeName": self.node_name,
                    }
                ],
                "ports": [{"name": n, "protocol": proto, "port": 53} for n, proto in ports],
            },
        ]

    def _start_coredns(self) -> _Component:
        """Cluster DNS: CoreDNS as a host process in the node's namespace (like kube-proxy),
        bound to the node address, port 53; the caller waits for its ``/ready``.

        Why a host process and not a Pod: it needs no image of its own, serves before the
        first Pod starts, and its log (every query, with the asking Pod's address and the
        answer's rcode) sits beside the other components'. Why the node address and not the
        ClusterIP itself: a Service without endpoints makes kube-proxy reject its ClusterIP,
        so the Service gets an EndpointSlice at the node address, as a DNS Pod's would be."""
        (ready_port,) = free_ports(1)
        self._coredns_ready = ready_port
        kubeconfig = self._kubeconfig_for("coredns")
        # Two server blocks on the same socket: the cluster's zones from the API; every other
        # name NXDOMAIN (no forward plugin exists in this build, nothing leaves the node).
        corefile = f"""\
{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {self.node_ip}
    errors
    log
    ready {self.node_ip}:{ready_port}
    kubernetes {{
        kubeconfig {kubeconfig} node
        ttl 5
    }}
}}
.:53 {{
    bind {self.node_ip}
    errors
    log
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""
        path = self.workdir / "Corefile"
        path.write_text(corefile)
        manifest = "\n---\n".join(yaml.safe_dump(doc) for doc in self._coredns_manifest())
        self.kubectl("apply", "-f", "-", input=manifest)
        return self._spawn(
            "coredns", [str(self.node_bin_dir / "coredns"), "-conf", str(path), "-quiet"]
        )

    def _start_scheduler(self, deadline: float) -> None:
        kubeconfig = self._kubeconfig_for("kube-scheduler")
        (port,) = free_ports(1)
        sched = self._spawn(
            "kube-scheduler",
            [
                str(self.node_bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={self.node_ip}",
                f"--secure-port={port}",
                "--leader-elect=false",
            ],
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        self._wait(
            sched,
            deadline,
            lambda: _http_ok(f"https://{self.node_ip}:{port}/healthz", insecure),
            "kube-scheduler /healthz",
        )

    def _start_containerd(self, deadline: float) -> None:
        base = self.workdir / "containerd"
        cni_conf = self.workdir / "cni" / "net.d"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cni" / "ipam").mkdir(parents=True, exist_ok=True)
        cni = {
            "cniVersion": "1.0.0",
            "name": "smepulse",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                        "ranges": [[{"subnet": POD_CIDR}]],
                        # Pods reach the pod range, the service range and the node: no more.
                        "routes": [
                            {"dst": CLUSTER_CIDR},
                            {"dst": SERVICE_CIDR},
                            {"dst": f"{self.node_ip}/32"},
                        ],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (cni_conf / "10-smepulse.conflist").write_text(json.dumps(cni, indent=2))
        cri = '"io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
[grpc]
  address = "{self.containerd_sock}"
[ttrpc]
  address = "{self.containerd_sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{base / "opt"}"
  [plugins.{cri}]
    sandbox_image = "{self.pause_image}"
    # Root here lacks CAP_SYS_RESOURCE: a negative oom_score_adj fails every sandbox.
    restrict_oom_score_adj = true
    disable_apparmor = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins.{cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins.{cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.{cri}.containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{base / "runc"}"
    [plugins.{cri}.cni]
      bin_dir = "{self.node_bin_dir / "cni"}"
      conf_dir = "{cni_conf}"
      max_conf_num = 1
"""
        base.mkdir(parents=True, exist_ok=True)
        (base / "config.toml").write_text(config)
        containerd = self._spawn(
            "containerd",
            [str(self.node_bin_dir / "containerd"), "--config", str(base / "config.toml")],
        )
        self._wait(
            containerd,
            deadline,
            lambda: (
                self.containerd_sock.exists()
                and subprocess.run(
                    self._ctr("version"), capture_output=True, check=False
                ).returncode
                == 0
            ),
            "containerd's socket",
        )

    def _ctr(self, *args: str) -> list[str]:
        return [str(self.node_bin_dir / "ctr"), "-a", str(self.containerd_sock), "-n", "k8s.io",
                *args]  # fmt: skip

    @property
    def pause_image(self) -> str:
        digest = Path(os.path.realpath(self.node_bin_dir / "pause")).parent.parent.name
        return f"docker.io/smepulse-local/pause:{digest.removeprefix('pause-')}"

    def _import_images(self) -> None:
        """The pause image (built from the static pause binary) and ``images``."""
        engine = self._docker = self._docker or docker_env()
        docker = engine["SMEPULSE_DOCKER_BIN"]
        env = {**os.environ, "DOCKER_HOST": engine["DOCKER_HOST"]}
        pause = self.pause_image.removeprefix("docker.io/")
        have = subprocess.run(
            [docker, "image", "inspect", pause], env=env, capture_output=True, check=False
        )
        if have.returncode != 0:
            staging = self.workdir / "pause-image"
            staging.mkdir(exist_ok=True)
            shutil.copy(self.node_bin_dir / "pause", staging / "pause")
            tar = subprocess.run(
                ["tar", "-C", str(staging), "-c", "pause"], capture_output=True, check=True
            ).stdout
            subprocess.run(
                [docker, "import", "--change", 'ENTRYPOINT ["/pause"]', "-", pause],
                input=tar,
                env=env,
                capture_output=True,
                check=True,
            )
        self.import_images(pause, *self.images)

    def import_images(self, *images: str) -> None:
        """Copy local Docker images into the node's containerd (``k8s.io`` namespace), where
        Pods find them by the same name (``IfNotPresent``; nothing is ever pulled)."""
        started = time.monotonic()
        engine = self._docker = self._docker or docker_env()
        docker = engine["SMEPULSE_DOCKER_BIN"]
        env = {**os.environ, "DOCKER_HOST": engine["DOCKER_HOST"]}
        save = subprocess.Popen(
            [docker, "save", *images],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert save.stdout is not None
        imp = subprocess.run(
            self._ctr("images", "import", "-"), stdin=save.stdout, capture_output=True, check=False
        )
        save.stdout.close()
        save_err = save.stderr.read().decode(errors="replace") if save.stderr else ""
        if save.wait() != 0 or imp.returncode != 0:
            raise NodeError(
                f"importing {', '.join(images)} failed: docker save: "
                f"{save_err[-1000:]} ctr import: {imp.stderr.decode(errors='replace')[-1000:]}"
            )
        log.info("%s imported in %.1f s", ", ".join(images), time.monotonic() - started)

    def _start_kubelet(self, deadline: float) -> None:
        assert self.control_plane is not None
        kubelet_dir = self.workdir / "kubelet"
        kubelet_dir.mkdir(exist_ok=True)
        (self.workdir / "resolv.conf").write_text("")
        # kubelet wants its cgroup root to exist in every hierarchy.
        for hierarchy in self._cgroup_hierarchies():
            (hierarchy / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
        for key in KUBELET_SYSCTLS:
            path = Path("/proc/sys") / key
            if path.exists():
                self._saved_sysctls[key] = path.read_text().strip()
        self._write_record()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.node_ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self._pki.ca.cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_sock}",
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "podLogsDir": str(self.log_dir / "pods"),
            "resolvConf": str(self.workdir / "resolv.conf"),
            **(
                {"clusterDNS": [CLUSTER_DNS_IP], "clusterDomain": CLUSTER_DOMAIN}
                if self.dns
                else {}
            ),
            "podCIDR": POD_CIDR,
            "maxPods": 50,
            "serializeImagePulls": False,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "nodeStatusReportFrequency": "10s",
        }
        config_path = kubelet_dir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        kubelet = self._spawn(
            "kubelet",
            [
                str(self.node_bin_dir / "kubelet"),
                f"--config={config_path}",
                f"--kubeconfig={self._kubeconfig_for('kubelet')}",
                f"--root-dir={kubelet_dir / 'root'}",
                f"--cert-dir={kubelet_dir / 'pki'}",
                f"--hostname-override={self.node_name}",
                f"--node-ip={self.node_ip}",
            ],
        )
        ctx = _client_context(self._pki.ca.cert, self._pki.admin)
        self._wait(kubelet, deadline, lambda: self._node_ready(ctx), f"Node {self.node_name} Ready")

    def _node_ready(self, ctx: ssl.SSLContext) -> bool:
        node = _get_json(f"{self.server}/api/v1/nodes/{self.node_name}", ctx)
        conditions = (node or {}).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _kube_proxy_config(self) -> Path:
        (healthz, metrics) = free_ports(2)
        self._proxy_healthz = healthz
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self._kubeconfig_for("kube-proxy"))},
            "hostnameOverride": self.node_name,
            "bindAddress": self.node_ip,
            "mode": "iptables",
            "clusterCIDR": CLUSTER_CIDR,
            "healthzBindAddress": f"{self.node_ip}:{healthz}",
            "metricsBindAddress": f"127.0.0.1:{metrics}",
            # Never localhost: that would set route_localnet.
            "nodePortAddresses": [f"{self.node_ip}/32"],
            # All 0: kube-proxy then changes no conntrack sysctls.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
                "udpTimeout": "0s",
                "udpStreamTimeout": "0s",
            },
        }
        path = self.workdir / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _start_kube_proxy(self, deadline: float) -> None:
        proxy = self._spawn(
            "kube-proxy",
            [str(self.node_bin_dir / "kube-proxy"), f"--config={self._kube_proxy_config()}"],
        )
        self._wait(
            proxy,
            deadline,
            lambda: _http_ok(f"http://{self.node_ip}:{self._proxy_healthz}/healthz", None),
            "kube-proxy /healthz (first sync of the rules)",
        )

    # ---- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Tear everything down (idempotent). Every step runs; failures are raised together."""
        if self._stopped:
            return
        self._stopped = True
        _LIVE.discard(self)
        errors: list[str] = []

        def step(what: str, fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as exc:
                errors.append(f"{what}: {exc}")

        by_name = {c.name: c for c in self._components}
        for name in ("kube-proxy", "kubelet", "kube-scheduler", "coredns"):
            if name in by_name:
                step(f"stop {name}", by_name[name].stop)
        if "containerd" in by_name and by_name["containerd"].alive():
            step("remove pod sandboxes", self._remove_pods)
        if "containerd" in by_name:
            step("stop containerd", by_name["containerd"].stop)
        step("kill leftover shims", self._kill_shims)
        if self._netns_made and "kube-proxy" in by_name:
            step("kube-proxy --cleanup", self._kube_proxy_cleanup)
        if self.control_plane is not None:
            step("stop control plane", self.control_plane.stop)
        step("unmount", self._unmount)
        step("remove cgroups", self._remove_cgroups)
        step("restore sysctls", self._restore_sysctls)
        step("remove files in host paths", self._remove_host_files)
        if self._netns_made:
            step("remove network", self._remove_network)
        if not errors:
            (RECORDS / f"{self.run_id}.json").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                RECORDS.rmdir()  # only when no other node is running
        if not errors and self._own_workdir and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise NodeError("real node teardown incomplete:\n  " + "\n  ".join(errors))

    def _write_record(self) -> None:
        RECORDS.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": os.getpid(),
            "run_id": self.run_id,
            "workdir": str(self.workdir),
            "own_workdir": self._own_workdir and not self.keep,
            "bin_dir": str(self.bin_dir),
            "node_bin_dir": str(self.node_bin_dir),
            "sysctls": self._saved_sysctls,
            "existed": [str(p) for p, existed in self._existed.items() if existed],
            "run_netns_was_mount": self._run_netns_was_mount,
        }
        (RECORDS / f"{self.run_id}.json").write_text(json.dumps(record))

    @classmethod
    def clean_stale(cls) -> list[str]:
        """Finish the teardown of every node whose process is gone (killed with SIGKILL: its
        children died with it, but not its namespace, cgroups, mounts or shims); return their
        run ids. A node whose process still runs is left alone."""
        cleaned = []
        for path in sorted(RECORDS.glob("*.json")) if RECORDS.exists() else []:
            record = json.loads(path.read_text())
            if Path(f"/proc/{record['pid']}").exists():
                continue
            node = cls(
                Path(record["workdir"]),
                bin_dir=Path(record["bin_dir"]),
                node_bin_dir=Path(record["node_bin_dir"]),
            )
            node._own_workdir = bool(record["own_workdir"])
            node.run_id = record["run_id"]
            node.netns = f"smepulse-node-{node.run_id}"
            node.veth_host = f"spn{node.run_id}h"
            node.cgroup_root = f"/smepulse-node-{node.run_id}"
            node._saved_sysctls = record["sysctls"]
            node._existed = {p: str(p) in record["existed"] for p in HARD_CODED_PATHS}
            node._run_netns_was_mount = record["run_netns_was_mount"]
            node._netns_made = Path(f"/run/netns/{node.netns}").exists()
            node.stop()
            cleaned.append(node.run_id)
        return cleaned

    def _remove_pods(self) -> None:
        endpoint = f"unix://{self.containerd_sock}"
        run([*self.nsenter(), str(self.node_bin_dir / "crictl"), "--runtime-endpoint", endpoint,
             "--image-endpoint", endpoint, "--timeout", "60s", "rmp", "-a", "-f"])  # fmt: skip

    def _kill_shims(self) -> None:
        """containerd's shims run in their own process groups: find this containerd's by the
        socket in their command line and SIGKILL them by PID."""
        marker = str(self.containerd_sock).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and marker in cmdline.split(b"\0"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def _kube_proxy_cleanup(self) -> None:
        run([*self.nsenter(), str(self.node_bin_dir / "kube-proxy"), "--cleanup",
             f"--config={self.workdir / 'kube-proxy.yaml'}"], check=False)  # fmt: skip

    def _unmount(self) -> None:
        left = []
        for point in mounts_under(self.workdir):
            proc = subprocess.run(["umount", point], capture_output=True, check=False)
            if proc.returncode != 0:
                proc = subprocess.run(["umount", "-l", point], capture_output=True, check=False)
            if proc.returncode != 0:
                left.append(f"{point} ({proc.stderr.decode(errors='replace').strip()})")
        if left:
            raise NodeError("could not unmount " + ", ".join(left))

    @staticmethod
    def _cgroup_hierarchies() -> list[Path]:
        root = Path("/sys/fs/cgroup")
        if (root / "cgroup.controllers").exists():  # cgroup v2: one hierarchy
            return [root]
        return [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]

    def _remove_cgroups(self) -> None:
        left = []
        for hierarchy in self._cgroup_hierarchies():
            top = hierarchy / self.cgroup_root.lstrip("/")
            if not top.exists():
                continue
            dirs = sorted(
                (p for p in [top, *top.rglob("*")] if p.is_dir()),
                key=lambda p: -len(p.parts),
            )
            for d in dirs:
                for _ in range(50):
                    procs = (d / "cgroup.procs").read_text().split() if d.exists() else []
                    for pid in procs:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                    try:
                        d.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)
                else:
                    left.append(str(d))
        if left:
            raise NodeError("could not remove cgroups " + ", ".join(left))

    def _restore_sysctls(self) -> None:
        for key, value in self._saved_sysctls.items():
            path = Path("/proc/sys") / key
            if path.read_text().strip() != value:
                path.write_text(value)

    def _remove_host_files(self) -> None:
        left = []
        for top, existed in self._existed.items():
            if not top.exists():
                continue
            for path in sorted([top, *top.rglob("*")], key=lambda p: -len(p.parts)):
                if path.is_symlink():
                    if str(self.workdir) in os.readlink(path):
                        path.unlink()
                elif path.is_socket() and not existed:
                    path.unlink()
                elif path.is_dir() and not existed:
                    with contextlib.suppress(OSError):
                        path.rmdir()  # only if empty
            # Still there though created by this run: only fine if another node uses it now.
            if not existed and top.exists() and not any(top.rglob("*")):
                left.append(str(top))
        if left:
            raise NodeError("could not remove (did not exist before): " + ", ".join(left))

    def _remove_network(self) -> None:
        run(["ip", "link", "del", self.veth_host], check=False)
        run(["ip", "netns", "del", self.netns])
        run_netns = Path("/run/netns")
        if (
            not self._run_netns_was_mount
            and _is_mount_point(str(run_netns))
            and not any(run_netns.iterdir())
        ):
            run(["umount", str(run_netns)])
            with contextlib.suppress(OSError):
                run_netns.rmdir()

    def healthy(self) -> bool:
        """Every process of the control plane and the node is still running."""
        return (
            self.control_plane is not None
            and self.control_plane.healthy()
            and all(c.alive() for c in self._components)
        )

    # ---- logs ------------------------------------------------------------------------------

    def log_tails(self, lines: int = 25) -> str:
        parts = []
        if self.control_plane is not None:
            parts.append(self.control_plane.log_tails(lines))
        for c in self._components:
            parts.append(f"--- {c.log_path} (last {lines} lines) ---\n{tail(c.log_path, lines)}")
        return "\n".join(parts)

    def __enter__(self) -> RealCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _get_json(url: str, ctx: ssl.SSLContext) -> Any:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
        return None


# ---- the host's state, to prove a teardown complete ------------------------------------------

_COUNTERS = re.compile(r"\[\d+:\d+\]")


def host_snapshot(workdir: Path | None = None) -> dict[str, list[str]]:
    """What a real node could leak into the root namespace and the host: addresses, routes,
    links, iptables rules, network namespaces, mounts (under ``/run/netns`` and ``workdir``),
    ``smepulse-node-*`` cgroups, the sysctls kubelet changes and the hard-coded host paths."""

    def lines(argv: list[str]) -> list[str]:
        return sorted(line for line in run(argv).splitlines() if line.strip())

    cgroups = sorted(
        str(p)
        for hierarchy in RealCluster._cgroup_hierarchies()
        for p in hierarchy.glob("smepulse-node-*")
    )
    mount_roots = [Path("/run/netns"), *([workdir] if workdir else [])]
    return {
        "addresses": lines(["ip", "-o", "addr", "show"]),
        "routes": lines(["ip", "route", "show", "table", "all"]),
        "links": [re.sub(r"\s+", " ", x) for x in lines(["ip", "-o", "link", "show"])],
        "iptables": [
            _COUNTERS.sub("", x) for x in lines(["iptables-save"]) if not x.startswith("#")
        ],
        "netns": lines(["ip", "netns", "list"]),
        "mounts": sorted(m for root in mount_roots for m in mounts_under(root)),
        "cgroups": cgroups,
        "sysctls": [
            f"{k}={(Path('/proc/sys') / k).read_text().strip()}"
            for k in KUBELET_SYSCTLS
            if (Path("/proc/sys") / k).exists()
        ],
        # Folders and sockets, and the log symlinks into `workdir` (another node running at
        # the same time adds and removes its own symlinks).
        "host paths": sorted(
            str(p)
            for top in HARD_CODED_PATHS
            if top.exists()
            for p in [top, *top.rglob("*")]
            if not p.is_symlink() or (workdir and str(workdir) in os.readlink(p))
        ),
    }


def snapshot_diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> str:
    """'' if equal, else each changed part with its added (+) and removed (-) lines."""
    parts = []
    for key in before:
        added = sorted(set(after[key]) - set(before[key]))
        removed = sorted(set(before[key]) - set(after[key]))
        if added or removed:
            parts.append(
                f"{key}:\n"
                + "\n".join([*(f"  + {x}" for x in added), *(f"  - {x}" for x in removed)])
            )
    return "\n".join(parts)
