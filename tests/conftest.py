"""Shared test configuration: real-service fixtures (tests/services), the Kubernetes control
plane (tests/kube), and the check that fails a run on unlisted skips (tests/skipcheck.py)."""

pytest_plugins = ["tests.services.fixtures", "tests.kube.fixtures", "tests.skipcheck"]
