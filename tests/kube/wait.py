"""Polling helpers for tests against the real API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy and return that.

    On timeout raise ``TimeoutError`` naming ``what`` and, if given, ``describe()`` (the state
    that was seen), so a failing test says what it waited for and what it got instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            seen = f"; last seen: {describe()}" if describe else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(interval)


def job_condition(api: client.ApiClient, namespace: str, name: str) -> str | None:
    """``"Complete"`` or ``"Failed"`` once the Job has that condition True, else None."""
    job: Any = client.BatchV1Api(api).read_namespaced_job(name, namespace)
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return str(cond.type)
    return None


def wait_for_job(api: client.ApiClient, namespace: str, name: str, timeout: float = 60.0) -> str:
    """Wait until the Job is Complete or Failed; return which."""
    batch = client.BatchV1Api(api)
    return wait_for(
        lambda: job_condition(api, namespace, name),
        timeout=timeout,
        what=f"Job {namespace}/{name} to finish",
        describe=lambda: str(batch.read_namespaced_job_status(name, namespace).status),
    )


def gone(read: Callable[[], object]) -> bool:
    """True once ``read()`` raises 404 Not Found."""
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False
