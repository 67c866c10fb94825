"""A real Kubernetes control plane for the tests (no Docker, no kubelet on this machine).

* :mod:`tests.kube.tools` finds the binaries built by ``scripts/k8s-tools.sh``;
* :mod:`tests.kube.controlplane` runs etcd, kube-apiserver and kube-controller-manager;
* :mod:`tests.kube.node` stands in for kubelet and a container runtime;
* :mod:`tests.kube.fixtures` is the pytest plugin (``kube_cluster``, ``kube_api``,
  ``kube_node``, ``kube_namespace``).

See ``tests/kube/README.md``.
"""
