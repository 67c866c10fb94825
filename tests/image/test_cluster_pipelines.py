"""Every pipeline on the chart's default data stack, in containers on the real node (issue 18).

``helm install`` with the default values (MinIO, PostgreSQL, Trino coordinator + worker,
MLflow server, Redis), the operator and stages images built from a clean clone of HEAD and the
data-stack test images, into a namespace that enforces the ``restricted`` Pod Security
Standard. One change to the defaults: Trino's CPU *requests* go from 500m to 250m each, because
this node has 2 CPUs and the training stages request 500m each beside the 1.4 CPUs the data
stack requests by default (the limits stay).

Bronze is loaded as a user loads it: ``smepulse generate-data`` on this machine into a folder,
uploaded as is to ``s3://smepulse/bronze`` through ``kubectl port-forward`` to MinIO. Then each
pipeline is started the way users start them:

- external-sync: ``kubectl create job --from=cronjob/smepulse-external-sync`` (the CronJob's
  Pod runs ``smepulse submit``; the World Bank API is replayed inside the node's network
  namespace, :mod:`tests.image.worldbank_replay`);
- daily-etl: ``smepulse submit daily-etl -d DAY``; it triggers ml-predict for the same day
  (UC09 forecast, UC10 anomalies, the report, the Redis cache invalidation);
- ml-training: ``kubectl create -f`` of examples/pipelinerun-ml-training.yaml with
  ``spec.logicalDate`` DAY added, as its comment says for data that ends before today.

Checks through the cluster: gold tables counted through Trino (port-forward), the champion
aliases read from the MLflow server, a second ml-predict in new Pods serving those champions
(their models read back from MinIO through the server), the report and the MLflow artefacts in
MinIO, and, the independent
expectation, the same bronze built on this machine by ``smepulse run external-sync`` and
``smepulse run daily-etl`` (the embedded default: DuckDB, MLflow on SQLite, no Kubernetes)
against the same replay: the same gold tables, the same row counts, and per column the same
checksum (tolerances in :func:`_column_digest`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import json
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import trino
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.image.conftest import REPO, BuiltImages
from tests.image.pipelines import (
    Runs,
    local_storage,
    port_forward,
    replay,
    smepulse,
    worldbank_env,
)
from tests.images.build import DataImage, chart_set_args
from tests.kube.realnode import RealCluster
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.image, pytest.mark.timeout(2700)]

RELEASE = "smepulse"
CRD = "pipelineruns.smepulse.io"
DAY = "2025-06-30"
CLASS = "smepulse-test-cluster"
SIZES = ("20Gi", "8Gi")  # the chart's default MinIO and PostgreSQL claims
#: Columns whose values differ between two correct runs by nature: when a row was written,
#: and ids of the MLflow run that made a prediction. Compared by count of non-null values only.
RUN_DEPENDENT = ("_at", "run_id", "generated", "computed", "loaded", "scored", "trained")


def _normal(value: Any) -> str:
    """One cell, canonical across DuckDB and Trino: numbers to 9 significant digits (DOUBLE
    sums may differ in the last bits between engines; DECIMAL and DOUBLE of the same value
    agree), dates and timestamps in ISO form without zone, NULL/NaN as one token."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "∅"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, decimal.Decimal)):
        number = float(value)
        return "0" if number == 0 else f"{number:.9g}"
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _column_digest(name: str, values: list[Any]) -> str:
    """SHA-256 of the column's sorted canonical values (order-free: no ORDER BY needed); a
    run-dependent column (``RUN_DEPENDENT``) only by how many values it has."""
    if any(part in name for part in RUN_DEPENDENT):
        return f"{sum(v is not None for v in values)} non-null"
    cells = sorted(_normal(v) for v in values)
    return hashlib.sha256("\x1f".join(cells).encode()).hexdigest()[:16]


def _digests(rows: list[tuple[Any, ...]], columns: list[str]) -> dict[str, str]:
    return {c: _column_digest(c, [r[i] for r in rows]) for i, c in enumerate(columns)}


def _local_gold(warehouse: Path) -> dict[str, tuple[int, dict[str, str]]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'gold'"
        ).fetchall()]  # fmt: skip
        out = {}
        for table in tables:
            cur = con.execute(f"select * from gold.{table}")
            rows = cur.fetchall()
            out[table] = (len(rows), _digests(rows, [d[0] for d in cur.description]))
        return out
    finally:
        con.close()


def _trino_gold(port: int) -> dict[str, tuple[int, dict[str, str]]]:
    con = trino.dbapi.connect(host="127.0.0.1", port=port, user="smepulse", catalog="lakehouse")
    try:
        cur = con.cursor()
        cur.execute("select table_name from information_schema.tables where table_schema = 'gold'")
        tables = [r[0] for r in cur.fetchall()]
        out = {}
        for table in tables:
            cur.execute(f"select * from gold.{table}")
            rows = [tuple(r) for r in cur.fetchall()]
            out[table] = (len(rows), _digests(rows, [d[0] for d in cur.description or []]))
        return out
    finally:
        con.close()


def _jobs(cluster: RealCluster, ns: str, run: str, stage: str = "") -> list[dict[str, Any]]:
    selector = f"smepulse.io/run={run}" + (f",smepulse.io/stage={stage}" if stage else "")
    items: list[dict[str, Any]] = cluster.kubectl_json("get", "jobs", "-n", ns, "-l", selector)[
        "items"
    ]
    return items


def _secret(cluster: RealCluster, ns: str, name: str, key: str) -> str:
    import base64

    doc = cluster.kubectl_json("get", "secret", "-n", ns, name)
    return base64.b64decode(doc["data"][key]).decode()


def _admin_s3(cluster: RealCluster, ns: str, port: int) -> Any:
    """MinIO's root user, as the cluster admin who loads bronze and looks at every prefix (each
    workload's own key sees only its prefixes)."""
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=_secret(cluster, ns, f"{RELEASE}-minio", "root-user"),
        aws_secret_access_key=_secret(cluster, ns, f"{RELEASE}-minio", "root-password"),
    )  # fmt: skip


def _upload(folder: Path, s3: Any, bucket: str, prefix: str) -> int:
    count = 0
    for path in sorted(folder.rglob("*.parquet")):
        s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
        count += 1
    return count


def _reference(home: Path, cwd: Path, env: dict[str, str], external_date: str) -> float:
    """The embedded default on this machine: external-sync (the CronJob's logical date), then
    daily-etl for DAY (which runs the triggered ml-predict too)."""
    t0 = time.monotonic()
    env = {"SMEPULSE_HOME": str(home), **env}
    smepulse("run", "external-sync", "--logical-date", external_date, env=env, cwd=cwd)
    smepulse("run", "daily-etl", "--logical-date", DAY, env=env, cwd=cwd)
    return time.monotonic() - t0


def test_every_pipeline_on_the_default_data_stack(
    images: BuiltImages,
    data_images: dict[str, DataImage],
    real_cluster: RealCluster,
    real_api: client.ApiClient,
    real_namespace: str,
    tmp_path: Path,
) -> None:
    ns, cluster = real_namespace, real_cluster
    assert cluster.control_plane is not None
    helm = cluster.control_plane.helm
    started = time.monotonic()
    cluster.import_images(*images.tags.values(), *(i.ref for i in data_images.values()))
    cluster.kubectl("delete", "crd", CRD, "--ignore-not-found", "--timeout=60s")
    client.CoreV1Api(real_api).patch_namespace(
        ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    seed = tmp_path / "seed"
    smepulse(
        "generate-data", "--end-date", DAY, "--scale", "0.05", "--years", "1",
        env={"SMEPULSE_HOME": str(seed)}, cwd=tmp_path,
    )  # fmt: skip
    storage = local_storage(cluster, tmp_path / "volumes", CLASS, SIZES)
    repository, tag = images.tags["operator"].rsplit(":", 1)
    runs = Runs(real_api, ns)
    installed = False
    seconds: dict[str, float] = {}
    status: dict[str, dict[str, Any]] = {}
    replay_log = tmp_path / "replay.log"
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": storage}))  # fmt: skip
        with replay(cluster, replay_log) as base_url:
            values = tmp_path / "values.yaml"  # JSON in --set-string would need escaping
            values.write_text(yaml.safe_dump({"config": {"env": worldbank_env(base_url)}}))
            install = helm(
                "install", RELEASE, str(images.chart), "-n", ns,
                "--set", f"image.operator.repository={repository}",
                "--set", f"image.stages.repository={images.tags['stages'].rsplit(':', 1)[0]}",
                "--set-string", f"image.tag={tag}", *chart_set_args(data_images),
                "--set", "trino.coordinator.resources.requests.cpu=250m",
                "--set", "trino.worker.resources.requests.cpu=250m",
                "-f", str(values), "--wait", "--timeout", "5m", check=False, timeout=420,
            )  # fmt: skip
            installed = True
            assert install.returncode == 0, (
                install.stderr + cluster.kubectl("get", "pods", "-n", ns, check=False).stdout
            )
            seconds["install"] = time.monotonic() - started

            # Bronze, as a user loads it: through a port-forward to MinIO.
            with port_forward(cluster, ns, f"svc/{RELEASE}-minio", 9000) as port:
                assert _upload(seed / "bronze", _admin_s3(cluster, ns, port), "smepulse",
                               "bronze") > 0  # fmt: skip

            def finish(name: str, what: str, timeout: float = 1200) -> None:
                t0 = time.monotonic()
                status[what] = runs.wait_terminal(name, timeout=timeout)
                seconds[what] = time.monotonic() - t0
                if status[what]["phase"] != "Succeeded":
                    logs = cluster.kubectl(
                        "logs", "-n", ns, "-l", f"smepulse.io/run={name}", "--tail=15",
                        "--prefix", check=False,
                    ).stdout  # fmt: skip
                    pytest.fail(f"{what} {name}: {json.dumps(status[what], indent=1)[-3000:]}\n"
                                f"{logs[-4000:]}")  # fmt: skip

            # external-sync from its CronJob, as an operator on call does.
            cluster.kubectl("create", "job", "--from=cronjob/smepulse-external-sync",
                            "external-sync-by-hand", "-n", ns)  # fmt: skip
            external = wait_for(
                lambda: next(iter(runs.custom.list_namespaced_custom_object(
                    "smepulse.io", "v1alpha1", ns, "pipelineruns",
                    label_selector="smepulse.io/pipeline=external-sync")["items"]), None),
                timeout=180, what="the PipelineRun of the CronJob's Pod",
            )  # fmt: skip
            external_name = external["metadata"]["name"]
            external_date = str(external["spec"]["logicalDate"])
            finish(external_name, "external-sync")

            # The reference on this machine, meanwhile, on a copy of the same bronze.
            reference = tmp_path / "reference"
            shutil.copytree(seed, reference)
            with ThreadPoolExecutor(1) as pool:
                local = pool.submit(
                    _reference, reference, tmp_path, worldbank_env(base_url), external_date
                )
                submit_env = {"SMEPULSE_KUBECONFIG": str(cluster.kubeconfig),
                              "SMEPULSE_LOG_FORMAT": "text"}  # fmt: skip
                smepulse("submit", "daily-etl", "-d", DAY, "-n", ns, env=submit_env, cwd=tmp_path)
                daily = f"daily-etl-{DAY.replace('-', '')}"
                # The operator's Pod is killed (no grace) the moment dbt-silver's Job appears;
                # its Deployment starts another, which resumes the run without a second Job.
                wait_for(lambda: _jobs(cluster, ns, daily, "dbt-silver"), timeout=300,
                         interval=0.2, what="dbt-silver's Job")  # fmt: skip
                cluster.kubectl("delete", "pod", "-n", ns, "-l",
                                "app.kubernetes.io/component=operator", "--grace-period=0",
                                "--force", "--wait=false")  # fmt: skip
                finish(daily, "daily-etl")
                per_stage = [j["metadata"]["labels"]["smepulse.io/stage"]
                             for j in _jobs(cluster, ns, daily)]  # fmt: skip
                assert sorted(per_stage) == sorted(set(per_stage)), f"a second Job: {per_stage}"
                assert all(st["attempts"] == 1 for st in status["daily-etl"]["stages"]
                           if st.get("attempts")), status["daily-etl"]["stages"]  # fmt: skip
                finish(f"ml-predict-{DAY.replace('-', '')}", "ml-predict")
                local_seconds = local.result()

            # The example as shipped, with the logical date the example's comment says to add
            # when the data ends before today.
            example = yaml.safe_load(
                (REPO / "examples" / "pipelinerun-ml-training.yaml").read_text()
            )
            example["spec"]["logicalDate"] = DAY
            training = (
                cluster.kubectl(
                    "create", "-n", ns, "-f", "-", "-o", "name", input=yaml.safe_dump(example)
                )
                .stdout.strip()
                .split("/")[-1]
            )
            finish(training, "ml-training", timeout=1800)

        # -- a dbt stage cancelled mid-build stops on SIGTERM; the gold it replaces stays ------
        rerun = f"daily-etl-{DAY.replace('-', '')}-cancelled"
        cluster.kubectl("create", "-n", ns, "-f", "-", input=yaml.safe_dump({
            "apiVersion": "smepulse.io/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": rerun},
            "spec": {"pipeline": "daily-etl", "logicalDate": DAY, "stages": ["dbt-gold-facts"]},
        }))  # fmt: skip

        def running() -> dict[str, Any] | None:
            for pod in cluster.kubectl_json("get", "pods", "-n", ns, "-l",
                                            f"smepulse.io/run={rerun}")["items"]:  # fmt: skip
                states = pod["status"].get("containerStatuses") or [{}]
                if "running" in states[0].get("state", {}):
                    return dict(pod)
            return None

        pod = wait_for(running, timeout=300, interval=0.5, what=f"{rerun}'s dbt Pod running")
        time.sleep(3)  # dbt is parsing or building by now
        grace = int(pod["spec"].get("terminationGracePeriodSeconds") or 30)
        cancelled = time.monotonic()
        runs.custom.patch_namespaced_custom_object(
            "smepulse.io", "v1alpha1", ns, "pipelineruns", rerun, {"spec": {"cancel": True}}
        )
        end = runs.wait_terminal(rerun, timeout=120)
        wait_for(lambda: not running(), timeout=grace, interval=0.5,
                 what=f"the dbt Pod gone within its {grace} s grace period")  # fmt: skip
        stopped_after = time.monotonic() - cancelled
        assert end["phase"] == "Cancelled", end
        assert stopped_after < grace, stopped_after

        # -- checks through the cluster -------------------------------------------------------
        with port_forward(cluster, ns, f"svc/{RELEASE}-trino", 8080) as port:
            got = _trino_gold(port)
        want = _local_gold(reference / "warehouse.duckdb")
        assert sorted(got) == sorted(want), (sorted(got), sorted(want))
        counts = {t: (got[t][0], want[t][0]) for t in want if got[t][0] != want[t][0]}
        assert not counts, f"row counts (cluster, embedded) differ: {counts}"
        differ = {
            f"{t}.{c}": (got[t][1].get(c), d)
            for t in want for c, d in want[t][1].items() if got[t][1].get(c) != d
        }  # fmt: skip
        assert not differ, f"column digests (cluster, embedded) differ: {differ}"
        for table in ("fct_ar_invoices", "kpi_daily_cash_flow", "ml_ar_priority_scores"):
            assert got[table][0] > 0, table
        assert got["ml_cashflow_forecast"][0] == 30
        assert got["fct_macro_indicators_yearly"][0] == 20  # the replay's observations

        with port_forward(cluster, ns, f"svc/{RELEASE}-mlflow", 5000) as port:
            from mlflow import MlflowClient

            registry = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
            champions = {
                name: registry.get_model_version_by_alias(name, "champion")
                for name in ("smepulse-uc09-cashflow", "smepulse-uc10-anomaly")
            }
        # A first training promotes each model that passes its gate (UC09: beats the seasonal-
        # naive baseline's MASE in the backtest; UC10 unlabelled: the held-out window rule),
        # both did on this data: the server answers the alias with the promotion's record.
        for name, version in champions.items():
            assert version.tags.get("validation", "").startswith("first champion"), (
                name, version.version, version.tags,
            )  # fmt: skip
            assert version.tags.get("logical_date") == DAY, version.tags

        # ml-predict again for DAY, in new Pods: it serves the champions now, their models
        # read back through the MLflow server from MinIO (not from a Pod that is gone).
        again = f"ml-predict-{DAY.replace('-', '')}-champion"
        cluster.kubectl("create", "-n", ns, "-f", "-", input=yaml.safe_dump({
            "apiVersion": "smepulse.io/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": again},
            "spec": {"pipeline": "ml-predict", "logicalDate": DAY},
        }))  # fmt: skip
        finish(again, "ml-predict with the champions")
        with port_forward(cluster, ns, f"svc/{RELEASE}-trino", 8080) as port:
            con = trino.dbapi.connect(host="127.0.0.1", port=port, user="smepulse",
                                      catalog="lakehouse")  # fmt: skip
            cur = con.cursor()
            cur.execute("select distinct model_name, model_version from gold.ml_cashflow_forecast")
            served = cur.fetchall()
            con.close()
        assert served == [
            ["smepulse-uc09-cashflow", champions["smepulse-uc09-cashflow"].version]
        ], served

        with port_forward(cluster, ns, f"svc/{RELEASE}-minio", 9000) as port:
            s3 = _admin_s3(cluster, ns, port)
            keys = {o["Key"] for o in s3.list_objects_v2(Bucket="smepulse", Prefix="reports/")
                    .get("Contents", [])}  # fmt: skip
            assert f"reports/ml-predict-{DAY}.html" in keys, keys
            report = s3.get_object(Bucket="smepulse", Key=f"reports/ml-predict-{DAY}.html")
            assert 'id="forecast"' in report["Body"].read().decode()
            artefacts = s3.list_objects_v2(Bucket="smepulse", Prefix="mlflow/").get("KeyCount", 0)
            assert artefacts > 0, "no MLflow artefact in MinIO"
    finally:
        if status:
            print("\n" + "\n".join(
                f"  {what}: {st.get('phase')} in {seconds.get(what, 0):.0f} s: " + ", ".join(
                    f"{s['name']} {s.get('phase')}" for s in st.get("stages", []))
                for what, st in status.items()
            ))  # fmt: skip
        with contextlib.suppress(ApiException, AssertionError):
            runs.delete_all()  # the operator removes its finalizers while it still runs
        if installed:
            helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "3m", check=False)
        cluster.kubectl("delete", "crd", CRD, "--ignore-not-found", "--timeout=60s", check=False)
        for kind in ("pod", "pvc", "job"):
            cluster.kubectl("delete", kind, "-n", ns, "--all", "--timeout=90s", check=False)
        for obj in storage:
            cluster.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"],
                            "--ignore-not-found", "--timeout=60s", check=False)  # fmt: skip
    print(
        f"\ncluster data stack: install {seconds['install']:.0f} s (images imported, bronze "
        f"generated), external-sync {seconds['external-sync']:.0f} s, daily-etl "
        f"{seconds['daily-etl']:.0f} s, ml-predict after it {seconds['ml-predict']:.0f} s, "
        f"ml-training {seconds['ml-training']:.0f} s; the embedded default on this machine "
        f"{local_seconds:.0f} s (alongside); {len(got)} gold tables equal; a dbt stage "
        f"cancelled mid-build gone in {stopped_after:.1f} s"
    )
