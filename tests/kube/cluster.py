"""Run a real one-node cluster (:mod:`tests.kube.realnode`) until interrupted, for people.

    sudo python -m tests.kube.cluster up [--workdir DIR] [--image IMG ...] [--build]

prints ``node Ready in X s`` and ``export KUBECONFIG=...``; Ctrl-C or SIGTERM tears the whole
node down (processes, sandboxes, iptables rules, mounts, cgroups, veth, namespace, sysctls).

    sudo python -m tests.kube.cluster clean

finishes the teardown of nodes whose Python process was killed with SIGKILL (their processes
died with it, but not their namespace, cgroups, mounts and shims).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from tests.kube.realnode import CLUSTER_DNS_IP, DEFAULT_IMAGES, RealCluster, find_node_bin_dir
from tests.kube.tools import find_bin_dir


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.kube.cluster",
        description="Run a control plane and one real node until interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster and print its kubeconfig")
    up.add_argument("--workdir", type=Path, help="keep state and logs here (kept afterwards)")
    up.add_argument(
        "--image",
        action="append",
        help=f"a local Docker image to import (repeatable; default: {', '.join(DEFAULT_IMAGES)})",
    )
    up.add_argument("--build", action="store_true", help="build missing tools (slow)")
    up.add_argument(
        "--no-dns", action="store_true", help="no CoreDNS: Pods reach Services by ClusterIP only"
    )
    sub.add_parser("clean", help="finish the teardown of nodes whose process was killed (SIGKILL)")
    args = parser.parse_args(argv)
    if args.command == "clean":
        cleaned = RealCluster.clean_stale()
        print(f"cleaned {len(cleaned)} node(s): {' '.join(cleaned) or '-'}")
        return 0

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    cluster = RealCluster(
        args.workdir,
        bin_dir=find_bin_dir(build=args.build),
        node_bin_dir=find_node_bin_dir(build=args.build),
        images=args.image or DEFAULT_IMAGES,
        keep=args.workdir is not None,
        dns=not args.no_dns,
    )
    try:
        cluster.start()
        print(f"  server     {cluster.server}", file=sys.stderr)
        print(f"  node       {cluster.node_name} ({cluster.node_ip}, netns {cluster.netns})",
              file=sys.stderr)  # fmt: skip
        if cluster.dns:
            print(f"  dns        {CLUSTER_DNS_IP} (kube-system/kube-dns) -> CoreDNS on "
                  f"{cluster.node_ip}:53, cluster.local only", file=sys.stderr)  # fmt: skip
        print(f"  logs       {cluster.log_dir}", file=sys.stderr)
        print(f"  kubectl    {cluster.bin_dir / 'kubectl'}", file=sys.stderr)
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        print("Ctrl-C or SIGTERM tears it down.", file=sys.stderr, flush=True)
        while cluster.healthy():
            time.sleep(1)
        print("a component exited:\n" + cluster.log_tails(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()
        print("torn down", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
