"""A small typed wrapper over the ``kubernetes`` client: the operator's only API calls.

Objects go in and come out as plain dicts in the API's JSON shape (camelCase), the same shape
:mod:`smepulse_operator.render` builds. Errors are translated once, here:

* 404 on get/delete -> ``None``/no-op; 409 on create -> ``False`` ("already exists");
* 5xx, 429, timeouts, connection errors -> :class:`ApiUnavailable` (try again later);
* anything else (403 missing RBAC, 422 invalid object) -> :class:`ApiRejected`, whose message
  names the verb, resource and the API server's reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from smepulse.errors import ConfigError
from smepulse.settings import Settings
from smepulse_operator.model import GROUP, LABEL_RUN, LABEL_STAGE, MANAGER, PLURAL, VERSION

T = TypeVar("T")
_TIMEOUT = (5, 30)  # connect, read (seconds): a hung API server must not hang a reconcile


class ApiUnavailable(Exception):
    """A transient API failure: the caller retries later."""


class ApiRejected(Exception):
    """The API server refused a request for a reason retrying will not fix (RBAC, validation).

    ``status`` is the HTTP status (403, 422, ...), 0 when unknown.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def invalid(self) -> bool:
        """The object itself is invalid (400/422): no Role or retry will ever admit it."""
        return self.status in (400, 422)


def api_client(settings: Settings) -> client.ApiClient:
    """In-cluster credentials when running in a Pod, else a kubeconfig (settings.kubeconfig or
    the client's default); ConfigError with what to do when neither exists."""
    if settings.kubeconfig is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except ConfigException:
            pass
    try:
        path = str(settings.kubeconfig) if settings.kubeconfig else None
        return config.new_client_from_config(config_file=path)
    except (ConfigException, OSError) as exc:
        raise ConfigError(
            f"no Kubernetes credentials: not in a cluster and no usable kubeconfig ({exc}); "
            "set SMEPULSE_KUBECONFIG or KUBECONFIG"
        ) from None


def default_namespace(settings: Settings) -> str:
    """settings.kube_namespace, else the kubeconfig context's namespace, else ``default``."""
    if settings.kube_namespace:
        return settings.kube_namespace
    try:
        _, ctx = config.list_kube_config_contexts(
            config_file=str(settings.kubeconfig) if settings.kubeconfig else None
        )
        return str((ctx or {}).get("context", {}).get("namespace") or "default")
    except (ConfigException, OSError):
        return "default"


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiException as exc:
        if exc.status in (429, 500, 502, 503, 504) or exc.status == 0:
            raise ApiUnavailable(f"{what}: API server answered {exc.status} {exc.reason}") from exc
        raise ApiRejected(f"{what}: {exc.status} {_reason(exc)}", exc.status) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ApiUnavailable(f"{what}: {exc}") from exc


def _reason(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)


class Kube:
    """The calls the operator and ``smepulse submit`` make; nothing else touches the API."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)

    def _json(self, what: str, fn: Callable[[], Any]) -> Any:
        """Raw JSON (camelCase dicts), skipping the client's slow model deserialisation."""
        resp = _call(what, fn)
        return json.loads(resp.data)

    # -- PipelineRuns ---------------------------------------------------------------------
    def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = _call(
                f"get pipelinerun {namespace}/{name}",
                lambda: self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=_TIMEOUT
                ),
            )
            return doc
        except ApiRejected as exc:
            if isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 404:
                return None
            raise

    def list_runs(self, namespace: str) -> list[dict[str, Any]]:
        doc = _call(
            f"list pipelineruns in {namespace}",
            lambda: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _request_timeout=_TIMEOUT
            ),
        )
        return list(doc.get("items") or [])

    def create_run(self, body: Mapping[str, Any]) -> bool:
        """True if created, False if a run of that name already exists."""
        meta = body["metadata"]
        return self._create(
            f"create pipelinerun {meta['namespace']}/{meta['name']}",
            lambda: self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                dict(body),
                field_manager=MANAGER,
                _request_timeout=_TIMEOUT,
            ),
        )

    def patch_run(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        _call(
            f"patch pipelinerun {namespace}/{name}",
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                dict(patch),
                field_manager=MANAGER,
                _request_timeout=_TIMEOUT,
            ),
        )

    def patch_run_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge patch of the status subresource (lists are replaced, nulls remove fields)."""
        _call(
            f"patch pipelinerun {namespace}/{name} status",
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": dict(status)},
                field_manager=MANAGER,
                _request_timeout=_TIMEOUT,
            ),
        )

    def delete_run(self, namespace: str, name: str) -> None:
        self._delete(
            f"delete pipelinerun {namespace}/{name}",
            lambda: self.custom.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                propagation_policy="Background",
                _request_timeout=_TIMEOUT,
            ),
        )

    # -- Pods -----------------------------------------------------------------------------
    def list_pods(self, namespace: str, run: str, stage: str | None = None) -> list[dict[str, Any]]:
        """The stage Pods of run ``run`` (the Jobs' template carries the run label), of one
        ``stage`` when given."""
        selector = f"{LABEL_RUN}={run}" + (f",{LABEL_STAGE}={stage}" if stage else "")
        doc = self._json(
            f"list pods of {namespace}/{run}",
            lambda: client.CoreV1Api(self.api).list_namespaced_pod(
                namespace,
                label_selector=selector,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            ),
        )
        return list(doc.get("items") or [])

    # -- Jobs -----------------------------------------------------------------------------
    def list_jobs(self, namespace: str, run: str) -> list[dict[str, Any]]:
        """Every Job labelled with run ``run`` (a consistent read: no cache, no staleness)."""
        doc = self._json(
            f"list jobs of {namespace}/{run}",
            lambda: self.batch.list_namespaced_job(
                namespace,
                label_selector=f"{LABEL_RUN}={run}",
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            ),
        )
        return list(doc.get("items") or [])

    def create_job(self, body: Mapping[str, Any]) -> bool:
        """True if created, False if a Job of that name already exists."""
        meta = body["metadata"]
        return self._create(
            f"create job {meta['namespace']}/{meta['name']}",
            lambda: self.batch.create_namespaced_job(
                meta["namespace"],
                dict(body),
                field_manager=MANAGER,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            ),
        )

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and (in the background) its Pods; already gone is fine."""
        self._delete(
            f"delete job {namespace}/{name}",
            lambda: self.batch.delete_namespaced_job(
                name,
                namespace,
                propagation_policy="Background",
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            ),
        )

    def ping(self) -> None:
        """A cheap authenticated call (readiness)."""
        _call("get /version", lambda: client.VersionApi(self.api).get_code(_request_timeout=(2, 3)))

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _create(what: str, fn: Callable[[], Any]) -> bool:
        try:
            _call(what, fn)
            return True
        except ApiRejected as exc:
            if isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 409:
                return False
            raise

    @staticmethod
    def _delete(what: str, fn: Callable[[], Any]) -> None:
        try:
            _call(what, fn)
        except ApiRejected as exc:
            if isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 404:
                return
            raise
