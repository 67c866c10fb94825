"""Shared test configuration: the Kubernetes control-plane fixtures come from tests/kube."""

import importlib.util

pytest_plugins = ["tests.kube.fixtures"] if importlib.util.find_spec("tests.kube.fixtures") else []
