"""The stage registry: ``smepulse stage <name>`` resolves a name here and runs it.

Each entry points at ``module:function``; the function takes the process's
:class:`~smepulse.settings.Settings` and returns nothing, raising
:class:`~smepulse.errors.StageError` for an expected failure (exit 1, one line) or
:class:`~smepulse.errors.StageSkipped` when there is nothing to do (exit 0). Modules are
imported lazily so that ``smepulse --help`` stays fast and a stage loads only what it uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from smepulse.settings import Settings

StageFn = Callable[[Settings], None]

REGISTRY: dict[str, str] = {
    # daily-etl
    "verify-infra": "smepulse.stages.verify:run",
    "validate-bronze": "smepulse.bronze.validate:run_stage",
    "dbt-silver": "smepulse.dbt_runner:stage_silver",
    "dbt-gold-dims": "smepulse.dbt_runner:stage_gold_dims",
    "dbt-gold-facts": "smepulse.dbt_runner:stage_gold_facts",
    "dbt-gold-links": "smepulse.dbt_runner:stage_gold_links",
    "dbt-gold-kpis": "smepulse.dbt_runner:stage_gold_kpis",
    "dbt-ml-scores": "smepulse.dbt_runner:stage_ml_scores",
    "report": "smepulse.stages.report:run",
    "notify": "smepulse.stages.notify:run",
    # ml-predict
    "uc09-forecast": "smepulse.ml.uc09_predict:run",
    "uc10-detect": "smepulse.ml.uc10_detect:run",
    "refresh-metabase": "smepulse.stages.metabase:run",
    "invalidate-cache": "smepulse.stages.cache:run",
    # ml-training
    "uc09-train": "smepulse.ml.uc09_train:run",
    "uc10-train": "smepulse.ml.uc10_train:run",
    "validate-models": "smepulse.ml.validate:run",
    # external-sync
    "ingest-worldbank": "smepulse.external.worldbank:run",
    "ingest-provinces": "smepulse.external.provinces:run",
    "dbt-external-silver": "smepulse.dbt_runner:stage_external_silver",
    "dbt-external-gold": "smepulse.dbt_runner:stage_external_gold",
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
