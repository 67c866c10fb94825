"""A scripted stand-in for ``smepulse stage <name>``, for the operator's integration tests.

The node stand-in runs each Pod's command as a local process and resolves ``PATH`` from the
Pod's environment, so a test namespace whose ConfigMap puts a folder holding this script
(as ``smepulse``) first on ``PATH`` decides what every stage does, without the data stack:

* ``FAKE_FAIL``: comma-separated stages that exit 1;
* ``FAKE_SLEEP``: ``stage=seconds`` pairs (``*`` for every stage) to keep a Job running;
* per run, through ``spec.params``: ``fakeFail`` (a stage that exits 1) and ``fakeSleep``
  (seconds for every stage but ``notify``);
* ``FAKE_LOG``: a file that gets one JSON line per run (stage, run, outcome env of finally stages);
* per run, through ``spec.params``: ``fakeAttempts``, JSON ``{stage: ["ok:0.5", "fail:1", …]}``:
  what each attempt does and how long it takes (the scenario table's format); the attempt
  number is the count of this run's earlier calls of the stage in ``FAKE_LOG``.

Everything else is real: the operator, the API server, the Job controller, the Pods.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "stage":
        print(f"fake smepulse: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    stage = argv[2]
    sleeps = dict(p.split("=", 1) for p in os.environ.get("FAKE_SLEEP", "").split(",") if "=" in p)
    seconds = float(sleeps.get(stage, sleeps.get("*", "0")))
    params = json.loads(os.environ.get("SMEPULSE_PARAMS") or "{}")
    if "fakeSleep" in params and stage != "notify":
        seconds = float(params["fakeSleep"])
    failing = set(os.environ.get("FAKE_FAIL", "").split(",")) | {params.get("fakeFail")}
    log_path = os.environ.get("FAKE_LOG")
    if log_path:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(
                json.dumps(
                    {
                        "stage": stage,
                        "run": os.environ.get("SMEPULSE_RUN_ID"),
                        "date": os.environ.get("SMEPULSE_LOGICAL_DATE"),
                        "params": os.environ.get("SMEPULSE_PARAMS"),
                        "outcome": os.environ.get("SMEPULSE_RUN_OUTCOME"),
                        "failed_stage": os.environ.get("SMEPULSE_FAILED_STAGE"),
                    }
                )
                + "\n"
            )
    scripted = json.loads(params.get("fakeAttempts") or "{}").get(stage)
    if scripted is not None and log_path:
        attempt = _calls(log_path, stage, os.environ.get("SMEPULSE_RUN_ID"))
        verdict, _, secs = (
            scripted[attempt - 1] if attempt <= len(scripted) else "ok:0.5"
        ).partition(":")
        time.sleep(float(secs or 0.5))
        print(f"fake smepulse: stage {stage} attempt {attempt}: {verdict}")
        return 0 if verdict == "ok" else 1
    time.sleep(seconds)
    if stage in failing:
        print(f"fake smepulse: stage {stage} fails on purpose", file=sys.stderr)
        return 1
    print(f"fake smepulse: stage {stage} done")
    return 0


def _calls(log_path: str, stage: str, run: str | None) -> int:
    with open(log_path, encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh if line.strip()]
    return sum(1 for d in docs if d["stage"] == stage and d["run"] == run)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
