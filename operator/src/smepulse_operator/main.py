"""The operator process: every kopf setting in one startup handler, and ``run_operator``.

``smepulse operator`` calls :func:`run_operator`; tests run the same handlers in-process with
``kopf.testing.KopfRunner(["run", "--standalone", "-m", "smepulse_operator.handlers", ...])``,
where the settings are read from the environment by the startup handler instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import kopf

from smepulse.settings import Settings
from smepulse_operator.credentials import load_credentials
from smepulse_operator.model import FINALIZER, GROUP, LABEL_RUN
from smepulse_operator.runtime import Runtime

log = logging.getLogger(__name__)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """All kopf settings, and the typed settings + runtime built once into ``memo``."""
    from smepulse_operator.health import start_servers

    ours: Settings = memo.get("settings") or Settings.load()
    memo.settings = ours
    _quiet_kopf_logs(ours)
    settings.persistence.finalizer = FINALIZER
    # Annotations, not status: the structural schema would prune an undeclared status.kopf.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # A watch can go silent without a TCP error: the server ends it after server_timeout and
    # the client gives up a little later, so kopf re-lists and re-watches.
    settings.watching.server_timeout = int(ours.operator_watch_timeout_seconds)
    settings.watching.client_timeout = int(ours.operator_watch_timeout_seconds) + 30
    settings.watching.connect_timeout = 10
    # Server-side filtering: the Job watch (and its initial list) asks the API server only for
    # stage Jobs (?labelSelector=smepulse.io/run). The handler's own ``labels=`` filter is
    # applied by kopf on the client, after the API server has sent every Job in the watched
    # namespaces; this selector is what keeps the cluster's other Jobs off the wire.
    settings.watching.label_selectors["batch", "v1", "jobs"] = LABEL_RUN
    settings.networking.request_timeout = 60
    # Only the Events the operator posts on purpose (run/stage news), not every log line.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "smepulse-operator"
    # One replica (Deployment strategy Recreate); no peering objects, no cluster-wide scans.
    settings.peering.standalone = True
    settings.scanning.disabled = True
    settings.background.cancellation_polling = 1
    runtime = Runtime(ours)
    memo.runtime = runtime
    memo.servers = await start_servers(runtime)
    runtime.ready = True
    log.info(
        "operator ready: metrics on :%d, probes on :%d, resync every %.0fs",
        ours.operator_metrics_port,
        ours.operator_health_port,
        ours.operator_reconcile_interval_seconds,
    )


@kopf.on.login()
def login(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """The same credentials as the operator's own client (:mod:`~smepulse_operator.credentials`);
    kopf calls this again after a 401, which re-reads a rotated token."""
    ours: Settings = memo.get("settings") or Settings.load()
    creds = load_credentials(ours)
    if creds.delegate is not None:
        creds.token = creds.refresh_delegated()
    token = creds.bearer_token()
    return kopf.ConnectionInfo(
        server=creds.server,
        ca_path=creds.ca_file,
        insecure=creds.insecure,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=creds.cert_file,
        private_key_path=creds.key_file,
        default_namespace=creds.namespace,
        trust_env=settings.networking.trust_env,
    )


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    from smepulse_operator.health import stop_servers

    if "runtime" in memo:
        memo.runtime.ready = False
        await stop_servers(memo.get("servers") or [])
        memo.runtime.close()


class _DropKopfSettings(logging.Filter):
    """kopf attaches its whole OperatorSettings to object log records as ``extra``; the JSON
    formatter would print it on every line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("settings", None)
        return True


def _quiet_kopf_logs(settings: Settings) -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _DropKopfSettings) for f in handler.filters):
            handler.addFilter(_DropKopfSettings())
    if settings.log_level != "DEBUG":
        # "Handler 'job_event' succeeded." for every Job event is noise; failures still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def run_operator(
    settings: Settings, namespaces: Sequence[str] = (), standalone: bool = True
) -> None:
    """Run until SIGTERM/SIGINT. No namespaces = every namespace (needs a ClusterRole)."""
    import smepulse_operator.handlers  # noqa: F401  (registers the handlers)

    kopf.run(
        standalone=standalone,
        namespaces=list(namespaces),
        clusterwide=not namespaces,
        memo=kopf.Memo(settings=settings),
    )
