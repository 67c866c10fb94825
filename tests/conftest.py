"""Shared test configuration: the Kubernetes control-plane fixtures come from tests/kube."""

pytest_plugins = ["tests.kube.fixtures"]
