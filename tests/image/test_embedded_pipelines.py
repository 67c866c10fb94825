"""The minimal scenario runs whole pipelines on the real node (issue 13 point 5).

``helm install`` of ``ci/embedded-values.yaml`` (no Trino, MinIO, PostgreSQL, MLflow or Redis;
``embeddedWarehouse`` on) with the operator and stages images built from a clean clone of HEAD,
into a namespace that *enforces* the ``restricted`` Pod Security Standard. Then, as users do,
``smepulse submit external-sync`` and ``smepulse submit daily-etl`` for one day; daily-etl
triggers ml-predict for the same day. Each stage is a Pod of the stages image whose only
shared state is the chart's warehouse claim (DuckDB, bronze, dbt's target folder and MLflow's
SQLite store under SMEPULSE_HOME on it). All three runs must succeed.

Storage: this node has no provisioner, so the test binds the claim to a ``local``
PersistentVolume of its own (a folder of its tmp dir, pinned to the node, by storage class
name; no StorageClass object, hence immediate binding and ``helm --wait`` is satisfied). The
bronze a user would load is put there beforehand: ``smepulse generate-data`` at small scale,
owned by the stages' uid.

The World Bank API is replayed by :mod:`tests.image.worldbank_replay`, a process in the node's
network namespace on the node address (traffic stays inside the run's namespaces); the chart's
``config.env`` points the stages at it, as a user would point them at a proxy.

Independent expectations: the same bronze, copied before the cluster touched it, built on this
machine by ``smepulse run external-sync`` and ``smepulse run daily-etl`` (which runs the
triggered ml-predict too; the embedded default: no Kubernetes) against the same replay must
give the same gold tables with the same row counts; ``fct_macro_indicators_yearly`` holds exactly the non-null observations of the
replayed fixture files, none from the bundled snapshot; ``dim_province`` the 34 provinces of
the 2025 map.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.image.conftest import BuiltImages
from tests.image.pipelines import Runs, replay, smepulse, worldbank_env
from tests.image.worldbank_replay import FIXTURES, INDICATORS, PAGES
from tests.kube.realnode import RealCluster

pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]

RELEASE = "smepulse"
CRD = "pipelineruns.smepulse.io"
DAY = "2025-06-30"
CLASS = "smepulse-test-embedded"  # storage class *name* only: binds the claim to our PV
STAGES_UID = 10001


def _reference(home: Path, cwd: Path, env: dict[str, str]) -> float:
    """``smepulse run`` external-sync then daily-etl (and its ml-predict) in ``home``; seconds."""
    t0 = time.monotonic()
    for pipeline in ("external-sync", "daily-etl"):
        smepulse(
            "run", pipeline, "--logical-date", DAY, env={"SMEPULSE_HOME": str(home), **env}, cwd=cwd
        )
    return time.monotonic() - t0


def _gold_counts(warehouse: Path) -> dict[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'gold' "
                "order by 1"
            ).fetchall()
        ]
        return {t: int(con.execute(f"select count(*) from gold.{t}").fetchone()[0]) for t in tables}  # type: ignore[index]
    finally:
        con.close()


def _fixture_observations() -> int:
    """Non-null observations in the replayed fixture files (what the API 'has')."""
    total = 0
    for name in PAGES.values():
        _meta, rows = json.loads((FIXTURES / name).read_text())
        total += sum(1 for row in rows if row["value"] is not None)
    return total


def _volume(cluster: RealCluster, path: Path, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": CLASS,
            "local": {"path": str(path)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In",
                 "values": [cluster.node_name]}]}]}},
        },
    }  # fmt: skip


def test_embedded_scenario_runs_external_sync_and_daily_etl(
    images: BuiltImages,
    real_cluster: RealCluster,
    real_api: client.ApiClient,
    real_namespace: str,
    tmp_path: Path,
) -> None:
    cluster, ns = real_cluster, real_namespace
    assert cluster.control_plane is not None
    helm = cluster.control_plane.helm
    started = time.monotonic()
    cluster.import_images(images.tags["operator"], images.tags["stages"])
    client.CoreV1Api(real_api).patch_namespace(
        ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )

    # Bronze as a user loads it, onto the volume, and a copy for the reference build.
    seed = tmp_path / "seed"
    smepulse(
        "generate-data", "--end-date", DAY, "--scale", "0.05", "--years", "1",
        env={"SMEPULSE_HOME": str(seed)}, cwd=tmp_path,
    )  # fmt: skip
    volume = tmp_path / "volume"
    shutil.copytree(seed, volume)
    for path in [volume, *volume.rglob("*")]:
        os.chown(path, STAGES_UID, STAGES_UID)
    pv_name = f"{CLASS}-{ns}"[:63]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_volume(cluster, volume, pv_name)))

    replay_log = tmp_path / "replay.log"
    runs = Runs(real_api, ns)
    installed = False
    reference = tmp_path / "reference"
    shutil.copytree(seed, reference)
    with replay(cluster, replay_log) as base_url, ThreadPoolExecutor(1) as pool:
        # The reference, built meanwhile: the same bronze by the local runner, same replay.
        local = pool.submit(_reference, reference, tmp_path, worldbank_env(base_url))
        try:
            repository, tag = images.tags["operator"].split(":")
            values = tmp_path / "values.yaml"
            values.write_text(
                yaml.safe_dump(
                    {
                        "image": {
                            "operator": {"repository": repository},
                            "stages": {"repository": images.tags["stages"].split(":")[0]},
                            "tag": tag,
                        },
                        "embeddedWarehouse": {
                            "persistence": {"storageClass": CLASS, "size": "1Gi"}
                        },
                        "config": {"env": worldbank_env(base_url)},
                    }
                )
            )
            install = helm(
                "install", RELEASE, str(images.chart), "-n", ns,
                "-f", str(images.chart / "ci" / "embedded-values.yaml"), "-f", str(values),
                "--wait", "--timeout", "5m", check=False, timeout=420,
            )  # fmt: skip
            installed = True
            pods = cluster.kubectl("get", "pods,pvc", "-n", ns, "-o", "wide", check=False).stdout
            assert install.returncode == 0, f"{install.stderr}\n{pods}"
            install_done = time.monotonic()

            submit_env = {
                "SMEPULSE_KUBECONFIG": str(cluster.kubeconfig),
                "SMEPULSE_LOG_FORMAT": "text",
            }
            seconds: dict[str, float] = {}
            status: dict[str, dict[str, Any]] = {}
            for pipeline in ("external-sync", "daily-etl"):
                t0 = time.monotonic()
                smepulse("submit", pipeline, "-d", DAY, "-n", ns, env=submit_env, cwd=tmp_path)
                name = f"{pipeline}-{DAY.replace('-', '')}"
                status[pipeline] = runs.wait_terminal(name, timeout=900)
                seconds[pipeline] = time.monotonic() - t0
                logs = cluster.kubectl(
                    "logs", "-n", ns, "-l", f"smepulse.io/run={name}", "--tail=20",
                    "--prefix", check=False,
                ).stdout  # fmt: skip
                assert status[pipeline]["phase"] == "Succeeded", (
                    json.dumps(status[pipeline], indent=1)[-4000:] + "\n" + logs[-4000:]
                )
            # daily-etl's trigger started ml-predict for the day (UC09 forecast, UC10
            # anomalies, report) on the same volume: it runs to the end too.
            t0 = time.monotonic()
            predict = f"ml-predict-{DAY.replace('-', '')}"
            status["ml-predict"] = runs.wait_terminal(predict, timeout=900)
            seconds["ml-predict"] = time.monotonic() - t0
            assert status["ml-predict"]["phase"] == "Succeeded", json.dumps(
                status["ml-predict"], indent=1
            )[-4000:]

            # Every stage ran as a Job of its own, with the claim mounted.
            jobs = (
                client.BatchV1Api(real_api)
                .list_namespaced_job(ns, label_selector="smepulse.io/pipeline")
                .items
            )
            claim = f"{RELEASE}-warehouse"
            for job in jobs:
                vols = job.spec.template.spec.volumes or []
                assert any(
                    v.persistent_volume_claim and v.persistent_volume_claim.claim_name == claim
                    for v in vols
                ), f"Job {job.metadata.name} does not mount {claim}"
            ran = {(s["name"], s["phase"]) for st in status.values() for s in st["stages"]}
            assert all(phase == "Succeeded" for _, phase in ran), ran
            assert len(jobs) >= len(ran)
        finally:
            with contextlib.suppress(ApiException, AssertionError):
                runs.delete_all()  # the operator removes its finalizers while it still runs
            if installed:
                helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "2m", check=False)
            cluster.kubectl("delete", "pvc", "--all", "-n", ns, "--wait=false", check=False)
            cluster.kubectl("delete", "crd", CRD, "--ignore-not-found", "--wait=true")
            cluster.kubectl("delete", "pv", pv_name, "--ignore-not-found", "--wait=false")
        cluster_seconds = time.monotonic() - install_done
        local_seconds = local.result()

    requests = replay_log.read_text().splitlines()
    for indicator in INDICATORS:
        assert any(f"/indicator/{indicator}" in r and r.startswith("200") for r in requests), (
            f"no request for {indicator} reached the replay: {requests}"
        )

    got = _gold_counts(volume / "warehouse.duckdb")
    want = _gold_counts(reference / "warehouse.duckdb")
    assert got == want, {t: (got.get(t), want.get(t)) for t in set(got) | set(want)}
    assert got["fct_macro_indicators_yearly"] == _fixture_observations() == 20
    assert got["dim_province"] == 34  # the 2025 map
    # Some gold tables are empty on one day of data (no anomaly alert, no forecast old enough
    # to score): the ones each pipeline must fill are not.
    for table in ("fct_ar_invoices", "kpi_daily_cash_flow", "ml_ar_priority_scores"):
        assert got[table] > 0, (table, got)
    assert got["ml_cashflow_forecast"] == 30  # UC09's horizon, ml_forecast_horizon_days
    con = duckdb.connect(str(volume / "warehouse.duckdb"), read_only=True)
    try:
        row = con.execute(
            "select count(*) filter (where is_snapshot) from gold.fct_macro_indicators_yearly"
        ).fetchone()
        assert row == (0,), "macro indicators came from the bundled snapshot, not the replay"
    finally:
        con.close()
    print(
        f"\nembedded scenario: install {install_done - started:.0f} s (images imported, bronze "
        f"generated), external-sync {seconds['external-sync']:.0f} s, daily-etl "
        f"{seconds['daily-etl']:.0f} s, ml-predict after it {seconds['ml-predict']:.0f} s on the node ({cluster_seconds:.0f} s with clean-up); "
        f"the same locally {local_seconds:.0f} s (alongside); {len(got)} gold tables match"
    )
