"""Shared test configuration: real-service fixtures (tests/services) and the Kubernetes
control plane (tests/kube)."""

pytest_plugins = ["tests.services.fixtures", "tests.kube.fixtures"]
