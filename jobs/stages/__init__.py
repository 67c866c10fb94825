"""The stage registry: ``smepulse stage <name>`` resolves a name here and runs it.

Each entry points at ``module:function``; the function takes the process's
:class:`~smepulse.jobs.settings.Settings` and returns nothing, raising
:class:`~smepulse.jobs.errors.StageError` for an expected failure (exit 1, one line) or
:class:`~smepulse.jobs.errors.StageSkipped` when there is nothing to do (exit 0). Modules are
imported lazily so that ``smepulse --help`` stays fast and a stage loads only what it uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from smepulse.jobs.settings import Settings

StageFn = Callable[[Settings], None]

REGISTRY: dict[str, str] = {
    # daily-etl
    "verify-infra": "smepulse.jobs.stages.verify:run",
    "validate-bronze": "smepulse.jobs.bronze.validate:run_stage",
    "dbt-silver": "smepulse.jobs.dbt_runner:stage_silver",
    "dbt-gold-dims": "smepulse.jobs.dbt_runner:stage_gold_dims",
    "dbt-gold-facts": "smepulse.jobs.dbt_runner:stage_gold_facts",
    "dbt-gold-links": "smepulse.jobs.dbt_runner:stage_gold_links",
    "dbt-gold-kpis": "smepulse.jobs.dbt_runner:stage_gold_kpis",
    "dbt-ml-scores": "smepulse.jobs.dbt_runner:stage_ml_scores",
    "report": "smepulse.jobs.stages.report:run",
    "notify": "smepulse.jobs.stages.notify:run",
    # ml-predict
    "uc09-forecast": "smepulse.jobs.ml.uc09_predict:run",
    "uc10-detect": "smepulse.jobs.ml.uc10_detect:run",
    "refresh-metabase": "smepulse.jobs.stages.metabase:run",
    "invalidate-cache": "smepulse.jobs.stages.cache:run",
    # ml-training
    "uc09-train": "smepulse.jobs.ml.uc09_train:run",
    "uc10-train": "smepulse.jobs.ml.uc10_train:run",
    "validate-models": "smepulse.jobs.ml.validate:run",
    # external-sync
    "ingest-worldbank": "smepulse.jobs.external.worldbank:run",
    "ingest-provinces": "smepulse.jobs.external.provinces:run",
    "dbt-external-silver": "smepulse.jobs.dbt_runner:stage_external_silver",
    "dbt-external-gold": "smepulse.jobs.dbt_runner:stage_external_gold",
}


def resolve(name: str) -> StageFn:
    """The function behind stage ``name``; KeyError with the known names otherwise."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown stage {name!r}; known stages: {', '.join(sorted(REGISTRY))}"
        ) from None
    module_name, _, attr = target.partition(":")
    fn: StageFn = getattr(importlib.import_module(module_name), attr)
    return fn
