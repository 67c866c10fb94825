"""A real, throw-away Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager.

What runs is the real thing, built from the Go module proxy by ``scripts/k8s-tools.sh``:

* etcd on random loopback ports, ``--unsafe-no-fsync`` (data is thrown away anyway);
* kube-apiserver with TLS, RBAC, service-account token signing, and the admission plugins of
  a normal cluster except ``ServiceAccount`` (as controller-runtime's envtest does);
  the admin is a client certificate in group ``system:masters``; it audits list/watch
  requests for Jobs into ``logs/audit.jsonl`` (:meth:`ControlPlane.audit_events`), so tests
  can check what a client asked the API server for;
* kube-controller-manager with every default controller (Job, CronJob, garbage collector,
  namespace, service-account, ...), its own kubeconfig and the service-account signing key,
  ``--leader-elect=false``.

There is no kubelet and no scheduler: :mod:`tests.kube.node` stands in for both.

Use it as a context manager, through the pytest fixtures in :mod:`tests.kube.fixtures`, or by
hand::

    python -m tests.kube.controlplane up [--with-node] [--workdir DIR]

which prints ``export KUBECONFIG=...`` and runs until interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import yaml

from tests.kube.pki import FRONT_PROXY_CN, CertFiles, ClusterPKI, create_pki
from tests.kube.procs import spawn, stop_group, tail
from tests.kube.tools import find_bin_dir

log = logging.getLogger(__name__)

CONTEXT = "smepulse-test"
SERVICE_CIDR = "10.0.0.0/24"


class ControlPlaneError(RuntimeError):
    """The control plane did not come up; the message carries the components' log tails."""


class KubeCommandError(subprocess.CalledProcessError):
    """A ``kubectl``/``helm`` call failed; ``str()`` shows its stderr, unlike the parent."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held together while chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class _Component:
    """One control-plane process and its log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.proc = spawn(argv, log=self._log)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        stop_group(self.proc, grace)
        self._log.close()


_LIVE: weakref.WeakSet[ControlPlane] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for cp in list(_LIVE):
        cp.stop()


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager in ``workdir``.

    After :meth:`start`: ``server`` is the API URL, ``kubeconfig`` an admin kubeconfig
    (certificates embedded), ``bin_dir`` the tools' directory (also holds kubectl and helm),
    ``log_dir`` one ``<component>.log`` per process. :meth:`stop` is idempotent and also
    runs at interpreter exit; ``keep=True`` leaves ``workdir`` on disk for inspection.

    Call :meth:`start` from a thread that outlives the cluster (normally the main thread):
    the processes get SIGTERM when the thread that started them ends (see ``procs.spawn``).
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        workdir: Path | None = None,
        *,
        keep: bool = False,
        host: str = "127.0.0.1",
        service_cidr: str = SERVICE_CIDR,
        command_prefix: tuple[str, ...] = (),
        service_account_admission: bool = False,
        extra_apiserver_args: tuple[str, ...] = (),
        extra_controller_manager_args: tuple[str, ...] = (),
    ) -> None:
        """``host`` is the address every component listens on and is reached at;
        ``command_prefix`` goes before every command (e.g. ``nsenter --net=...  --`` to run
        the control plane inside a network namespace, as :mod:`tests.kube.realnode` does);
        ``service_account_admission`` turns the ``ServiceAccount`` admission plugin back on
        (Pods then get their token volume, which a real kubelet mounts)."""
        self.host = host
        self.service_cidr = service_cidr
        self.command_prefix = command_prefix
        self.service_account_admission = service_account_admission
        self.extra_apiserver_args = extra_apiserver_args
        self.extra_controller_manager_args = extra_controller_manager_args
        self.bin_dir = Path(bin_dir) if bin_dir else find_bin_dir()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="smepulse-kube-"))
        self.keep = keep
        self.log_dir = self.workdir / "logs"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.audit_log = self.log_dir / "audit.jsonl"
        self.server = ""
        self.pki: ClusterPKI | None = None
        self._components: list[_Component] = []
        self._cm_port = 0
        self._lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> ControlPlane:
        """Start all three components and wait until they serve; raise ControlPlaneError."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        first_service_ip = str(ipaddress.ip_network(self.service_cidr)[1])
        self.pki = create_pki(self.workdir / "pki", extra_ips=(self.host, first_service_ip))
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        # Ports are chosen free but may be taken before a component binds them: one retry.
        for attempt in (1, 2):
            try:
                self._start_once(deadline)
                return self
            except ControlPlaneError as exc:
                self._stop_components()
                if attempt == 2 or "address already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, deadline: float) -> None:
        assert self.pki is not None
        etcd_port, peer_port, api_port, cm_port = free_ports(4)
        host = self.host
        self.server = f"https://{host}:{api_port}"
        data_dir = self.workdir / "etcd"
        shutil.rmtree(data_dir, ignore_errors=True)
        etcd_url = f"http://{host}:{etcd_port}"
        peer_url = f"http://{host}:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=smepulse",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=smepulse={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", deadline, lambda: _http_ok(f"{etcd_url}/health", None))

        pki = self.pki
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.apiserver.cert}",
                f"--tls-private-key-file={pki.apiserver.key}",
                f"--secure-port={api_port}",
                f"--bind-address={host}",
                f"--service-cluster-ip-range={self.service_cidr}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                *(
                    []
                    if self.service_account_admission
                    else ["--disable-admission-plugins=ServiceAccount"]
                ),
                f"--service-account-issuer={self.server}/",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--client-ca-file={pki.ca.cert}",
                f"--requestheader-client-ca-file={pki.ca.cert}",
                f"--requestheader-allowed-names={FRONT_PROXY_CN}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki.front_proxy.cert}",
                f"--proxy-client-key-file={pki.front_proxy.key}",
                f"--audit-policy-file={self._write_audit_policy()}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=50",
                "--audit-log-maxbackup=1",
                *self.extra_apiserver_args,
            ],
        )
        admin_ctx = _client_context(pki.ca.cert, pki.admin)
        self._wait("kube-apiserver", deadline, lambda: _http_ok(f"{self.server}/readyz", admin_ctx))

        self._write_kubeconfig(self.kubeconfig, pki.admin, "smepulse-admin")
        cm_kubeconfig = self.workdir / "controller-manager.kubeconfig"
        self._write_kubeconfig(
            cm_kubeconfig, pki.controller_manager, "system:kube-controller-manager"
        )
        self._cm_port = cm_port
        self._start_controller_manager(cm_kubeconfig, deadline)

    def _start_controller_manager(self, cm_kubeconfig: Path, deadline: float) -> None:
        assert self.pki is not None
        pki = self.pki
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={cm_kubeconfig}",
                f"--authentication-kubeconfig={cm_kubeconfig}",
                f"--authorization-kubeconfig={cm_kubeconfig}",
                f"--bind-address={self.host}",
                f"--secure-port={self._cm_port}",
                f"--cert-dir={self.workdir / 'controller-manager-certs'}",
                "--leader-elect=false",
                "--controllers=*",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca.cert}",
                f"--cluster-signing-cert-file={pki.ca.cert}",
                f"--cluster-signing-key-file={pki.ca.key}",
                "--use-service-account-credentials=false",
                *self.extra_controller_manager_args,
            ],
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        self._wait(
            "kube-controller-manager",
            deadline,
            lambda: _http_ok(f"https://{self.host}:{self._cm_port}/healthz", insecure),
        )
        # The service-account controller creating "default" proves the controller loops run.
        admin_ctx = _client_context(pki.ca.cert, pki.admin)
        self._wait(
            "kube-controller-manager",
            deadline,
            lambda: _http_ok(
                f"{self.server}/api/v1/namespaces/default/serviceaccounts/default", admin_ctx
            ),
        )

    def _write_audit_policy(self) -> Path:
        """Audit only list/watch of Jobs (Metadata level: the request URI with its query,
        user, user agent), so a test can see how a client watches Jobs (which selector the
        API server was asked for) without auditing the whole cluster's traffic."""
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {
                    "level": "Metadata",
                    "verbs": ["list", "watch"],
                    "resources": [{"group": "batch", "resources": ["jobs"]}],
                },
                {"level": "None"},
            ],
        }
        path = self.workdir / "audit-policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        return path

    def audit_events(self) -> list[dict[str, Any]]:
        """The API server's audit events so far (list/watch of Jobs only, see
        :meth:`_write_audit_policy`); the log is written asynchronously, so poll."""
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def restart_controller_manager(self, timeout: float = 30.0) -> None:
        """Restart kube-controller-manager, e.g. right after installing CRDs.

        The garbage collector finds new resource types only on its discovery resync (every
        30 s, hard-coded), and until then it retries dependents of an unknown owner type with
        growing back-off: deleting a custom resource can take 30-60 s to cascade to its Jobs.
        A restarted controller-manager knows every installed CRD from its first second.
        """
        with self._lock:
            for c in [c for c in self._components if c.name == "kube-controller-manager"]:
                c.stop()
                self._components.remove(c)
            self._start_controller_manager(
                self.workdir / "controller-manager.kubeconfig", time.monotonic() + timeout
            )

    def _spawn(self, name: str, argv: list[str]) -> None:
        self._components.append(
            _Component(name, [*self.command_prefix, *argv], self.log_dir / f"{name}.log")
        )

    def _wait(self, name: str, deadline: float, ready: Any) -> None:
        component = next(c for c in reversed(self._components) if c.name == name)
        while True:
            if not component.alive():
                raise ControlPlaneError(
                    f"{name} exited with status {component.proc.returncode}\n{self.log_tails()}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{name} not ready in time\n{self.log_tails()}")
            time.sleep(0.2)

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every component's log, for failure messages."""
        parts = []
        for c in self._components:
            parts.append(f"--- {c.log_path} (last {lines} lines) ---\n{tail(c.log_path, lines)}")
        return "\n".join(parts)

    def _write_kubeconfig(self, path: Path, client: CertFiles, user: str) -> None:
        assert self.pki is not None

        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self.pki.ca.cert),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(client.cert),
                        "client-key-data": b64(client.key),
                    },
                }
            ],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
            "current-context": CONTEXT,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def healthy(self) -> bool:
        """Every component process is still running."""
        return bool(self._components) and all(c.alive() for c in self._components)

    def _stop_components(self) -> None:
        # Reverse order: controllers first, etcd last, so nothing logs a storm of errors.
        while self._components:
            self._components.pop().stop()

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove the workdir unless kept."""
        with self._lock:
            self._stop_components()
            _LIVE.discard(self)
            if self._own_workdir and not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start() if not self._components else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- command-line helpers --------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment for kubectl/helm: this cluster, caches inside the workdir."""
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "KUBECACHEDIR": str(self.workdir / "kubecache"),
                "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
                "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
                "HELM_DATA_HOME": str(self.workdir / "helm" / "data"),
            }
        )
        return env

    def _run(
        self,
        tool: str,
        args: tuple[str, ...],
        check: bool,
        input: str | None,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / tool), *args]
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise KubeCommandError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster (text mode; raises on failure if check)."""
        return self._run("kubectl", args, check, input, timeout)

    def helm(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built Helm v3 against this cluster (its caches live in the workdir)."""
        return self._run("helm", args, check, input, timeout)

    def kubectl_json(self, *args: str) -> Any:
        """``kubectl <args> -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def _client_context(ca: Path, client: CertFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def _http_ok(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


@contextlib.contextmanager
def running_control_plane(
    bin_dir: Path | None = None,
    workdir: Path | None = None,
    *,
    keep: bool = False,
    extra_controller_manager_args: tuple[str, ...] = (),
) -> Iterator[ControlPlane]:
    """Context manager: a started :class:`ControlPlane`, stopped on exit."""
    cp = ControlPlane(
        bin_dir, workdir, keep=keep, extra_controller_manager_args=extra_controller_manager_args
    )
    try:
        yield cp.start()
    finally:
        cp.stop()


# ---- python -m tests.kube.controlplane up -----------------------------------------------------


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.kube.controlplane",
        description="Run a throw-away Kubernetes control plane until interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start etcd, kube-apiserver, kube-controller-manager")
    up.add_argument("--workdir", type=Path, help="keep state, logs and kubeconfig here")
    up.add_argument("--bin-dir", type=Path, help="tools directory (default: scripts/k8s-tools.sh)")
    up.add_argument("--with-node", action="store_true", help="also run the node stand-in")
    up.add_argument("--max-pods", type=int, default=8, help="node stand-in concurrency")
    up.add_argument("--build", action="store_true", help="build the tools if they are missing")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    bin_dir = args.bin_dir or find_bin_dir(build=args.build)
    started = time.monotonic()
    cp = ControlPlane(bin_dir, args.workdir, keep=args.workdir is not None)
    node = None
    try:
        cp.start()
        if args.with_node:
            from tests.kube.node import NodeStandIn

            node = NodeStandIn(
                cp.kubeconfig, log_dir=cp.workdir / "pods", max_pods=args.max_pods
            ).start()
        _print_ready(cp, time.monotonic() - started, with_node=node is not None)
        while cp.healthy():
            time.sleep(1)
        print("a component exited:\n" + cp.log_tails(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        log.info("stopping")
        if node is not None:
            node.stop()
        cp.stop()
        log.info("stopped")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. ``kill``) takes the same clean path as Ctrl-C."""
    raise KeyboardInterrupt


def _print_ready(cp: ControlPlane, seconds: float, *, with_node: bool) -> None:
    lines: Mapping[str, str] = {
        "server": cp.server,
        "kubeconfig": str(cp.kubeconfig),
        "logs": str(cp.log_dir),
        "bin": str(cp.bin_dir),
        "node stand-in": "running (pod logs in " + str(cp.workdir / "pods") + ")"
        if with_node
        else "not running (use --with-node)",
    }
    print(f"control plane up in {seconds:.1f}s", file=sys.stderr)
    for key, value in lines.items():
        print(f"  {key:14} {value}", file=sys.stderr)
    print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
    print("Ctrl-C or SIGTERM stops it.", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(_main())
