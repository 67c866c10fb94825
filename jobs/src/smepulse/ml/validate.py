"""Stage ``validate-models``: promote a new model version to ``champion`` only when it earns it.

For each use case the candidate is the newest registered version. The rule (:func:`decide`):

1. it must beat the baseline on its own backtest — UC09: MASE below the weekly seasonal naive's;
   UC10: average precision above the robust z-score's on the planted labels;
2. and beat the current champion. UC09: the champion's figure is the nested-backtest MASE it
   logged when it was trained (not a re-run of its spec on the candidate's folds, which made
   the gate unable to reject); an exact tie wins only with more recent data. UC10: the
   champion's figure on the candidate's held-out window.

UC10's labels are the generator's planted anomalies and/or users' verdicts (``smepulse alerts
review``). Without any (a real customer's first weeks) there is no quality figure; the candidate
is then judged on the held-out window it did not train on (:func:`decide_unlabelled`): its
alert rate must stay stable week by week and its top alerts must overlap the baseline's. While
nothing is promoted, ``uc10-detect`` serves the registered robust-z baseline.

Every decision and its reason go to the version's ``validation`` tag, the log, and one JSON
document: ``<home>/ml/validation-<logical date>.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from smepulse.errors import StageError
from smepulse.ml import registry
from smepulse.ml.promotion import Decision, decide, decide_unlabelled
from smepulse.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What validate-models decided for one model (the JSON document's entry)."""

    model_name: str
    candidate_version: str | None
    champion_before: str | None
    champion_after: str | None
    decision: str
    reason: str
    figures: dict[str, Any]


def _candidate_and_champion(client: Any, name: str) -> tuple[Any, Any]:
    candidate = registry.latest(client, name)
    if candidate is None:
        return None, None
    return candidate, registry.champion(client, name)


def _apply(
    client: Any,
    name: str,
    candidate: Any,
    champion: Any,
    decision: Decision,
    figures: dict[str, Any],
) -> Outcome:
    if decision.promote:
        registry.promote(client, name, candidate.version, decision.reason)
    else:
        registry.reject(client, name, candidate.version, decision.reason)
    after = candidate.version if decision.promote else (champion.version if champion else None)
    log.info(
        "%s v%s: %s — %s",
        name,
        candidate.version,
        "promoted" if decision.promote else "kept champion",
        decision.reason,
    )
    return Outcome(
        name,
        candidate.version,
        champion.version if champion else None,
        after,
        "promoted" if decision.promote else "rejected",
        decision.reason,
        figures,
    )


def _already_champion(name: str, candidate: Any, champion: Any) -> Outcome | None:
    """The outcome when the newest version already holds the alias (nothing to decide)."""
    if champion is None or champion.version != candidate.version:
        return None
    return Outcome(
        name,
        candidate.version,
        champion.version,
        champion.version,
        "unchanged",
        f"version {candidate.version} is already the champion",
        {},
    )


def _fresher(candidate: Any, champion: Any) -> bool:
    return bool(
        candidate.tags.get("data_end", "") > (champion.tags.get("data_end", "") if champion else "")
    )


def validate_uc09(settings: Settings, client: Any) -> Outcome | None:
    """UC09: the candidate's logged figure is the nested backtest of its selection procedure
    (:mod:`smepulse.ml.uc09_nested`); the champion's is the one *it* logged when it was
    trained. The champion is not re-backtested on the candidate's folds: that re-ran the
    champion's spec on the folds the candidate was chosen on, so the gate could never reject.
    Comparing logged figures can (a worse new procedure is rejected)."""
    name = registry.UC09_MODEL
    candidate, champion = _candidate_and_champion(client, name)
    if candidate is None:
        return None
    if (unchanged := _already_champion(name, candidate, champion)) is not None:
        return unchanged
    metrics = registry.run_metrics(client, candidate.run_id)
    figures: dict[str, Any] = {
        "candidate_mase": metrics.get("mase", math.nan),
        "candidate_coverage": metrics.get("coverage", math.nan),
        "baseline_mase": metrics.get("baseline_mase", math.nan),
        "candidate_kind": candidate.tags.get("model_kind"),
    }
    champion_mase: float | None = None
    if champion is not None:
        logged = registry.run_metrics(client, champion.run_id)
        champion_mase = logged.get("mase", math.nan)
        figures.update(
            champion_mase=champion_mase,
            champion_coverage=logged.get("coverage", math.nan),
            champion_kind=champion.tags.get("model_kind"),
            champion_data_end=champion.tags.get("data_end"),
        )
    decision = decide(
        metric="MASE",
        candidate=figures["candidate_mase"],
        baseline=figures["baseline_mase"],
        champion=champion_mase,
        lower_is_better=True,
        candidate_is_fresher=_fresher(candidate, champion),
    )
    return _apply(client, name, candidate, champion, decision, figures)


def champion_ap_uc10(
    settings: Settings, candidate: Any, champion: Any, candidate_ap: float
) -> float:
    """The UC10 champion's average precision on the candidate's held-out window and labels."""
    from smepulse.ml.backtest import holdout, score_holdout
    from smepulse.ml.data import load_transactions
    from smepulse.ml.features import build_features
    from smepulse.ml.uc10_feedback import load_labels
    from smepulse.ml.uc10_models import AnomalySpec

    if champion.tags.get("spec") == candidate.tags.get("spec"):
        return candidate_ap
    end = dt.date.fromisoformat(candidate.logical_date)
    features = build_features(load_transactions(settings, end), settings.timezone, cutoff=end)
    start, stop = (dt.date.fromisoformat(d) for d in candidate.tags["eval_window"].split(".."))
    spec = AnomalySpec(**json.loads(champion.tags["spec"]))
    labels = load_labels(settings, end)
    fitted = holdout(features, spec, start, stop)
    return score_holdout(
        fitted, labels.positives, spec.kind, scope=labels.reviewed
    ).average_precision


def validate_uc10(settings: Settings, client: Any) -> Outcome | None:
    """UC10: with labels (planted and/or users' verdicts) the average-precision rule of
    :func:`decide`; without, :func:`decide_unlabelled` on the held-out window's figures that
    ``uc10-train`` logged (never on the candidate's own training data)."""
    name = registry.UC10_MODEL
    candidate, champion = _candidate_and_champion(client, name)
    if candidate is None:
        return None
    if (unchanged := _already_champion(name, candidate, champion)) is not None:
        return unchanged
    metrics = registry.run_metrics(client, candidate.run_id)
    labelled = candidate.tags.get("has_labels") == "true" and "average_precision" in metrics
    figures: dict[str, Any] = {
        "labelled": labelled,
        "label_source": candidate.tags.get("label_source"),
        "candidate_kind": candidate.tags.get("model_kind"),
        "candidate_average_precision": metrics.get("average_precision", math.nan),
        "baseline_average_precision": metrics.get("baseline_average_precision", math.nan),
        "candidate_roc_auc": metrics.get("roc_auc", math.nan),
        "candidate_precision_at_k": metrics.get("precision_at_k", math.nan),
        "candidate_holdout_alert_rate": metrics.get("alert_rate", math.nan),
        "candidate_max_weekly_alert_rate": metrics.get("max_weekly_alert_rate", math.nan),
        "top_agreement_with_baseline": metrics.get("top_agreement", math.nan),
    }
    if labelled:
        champ = (
            None
            if champion is None
            else champion_ap_uc10(
                settings, candidate, champion, figures["candidate_average_precision"]
            )
        )
        if champ is not None:
            figures["champion_average_precision"] = champ
        decision = decide(
            metric="average precision",
            candidate=figures["candidate_average_precision"],
            baseline=figures["baseline_average_precision"],
            champion=champ,
            lower_is_better=False,
            candidate_is_fresher=_fresher(candidate, champion),
        )
    else:
        decision = decide_unlabelled(
            max_weekly_rate=figures["candidate_max_weekly_alert_rate"],
            agreement=figures["top_agreement_with_baseline"],
            target=float(json.loads(candidate.tags["spec"])["alert_rate"]),
            has_champion=champion is not None,
            candidate_is_fresher=_fresher(candidate, champion),
        )
    return _apply(client, name, candidate, champion, decision, figures)


def _strict(value: Any) -> Any:
    """NaN (a figure that does not exist, e.g. ROC-AUC without labels) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def run(settings: Settings) -> None:
    """Stage entry point (see the module docstring)."""
    logical = settings.business_date
    with registry.tracking(settings) as client:
        outcomes = {
            "uc09": validate_uc09(settings, client),
            "uc10": validate_uc10(settings, client),
        }
    document = {
        "logical_date": logical.isoformat(),
        "validated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **{uc: asdict(o) if o else None for uc, o in outcomes.items()},
    }
    path = settings.home / "ml" / f"validation-{logical.isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_strict(document), indent=2, default=str, allow_nan=False))
    log.info("validation results written to %s", path)
    missing = [uc.upper() for uc, o in outcomes.items() if o is None]
    if missing:
        raise StageError(
            f"no registered model version for {' and '.join(missing)}: run the ml-training pipeline "
            f"(uc09-train, uc10-train) first; results so far in {path}"
        )
