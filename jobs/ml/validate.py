"""Stage ``validate-models``: promote a new model version to ``champion`` only when it earns it.

For each use case the candidate is the newest registered version. The rule (:func:`decide`):

1. it must beat the baseline on its own backtest — UC09: MASE below the weekly seasonal naive's;
   UC10: average precision above the robust z-score's on the planted labels;
2. and beat the current champion *on the same backtest*. The champion's figure is the one its
   spec (model kind, target, …) scores on the candidate's folds: taken from the candidate's run
   when the specs are equal, otherwise re-computed now. An exact tie means the same approach on
   the same folds; the candidate then wins only if it has seen more recent data.

UC10 without labels (a real customer's data) has no quality figure. Documented rule: the
candidate is promoted when there is no champion yet, or when the champion's alert rate on the
last window has drifted outside the target band (±25 % of the target rate) and the candidate's
is inside it; otherwise the champion stays ("no labels to show the new version is better").

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

from smepulse.jobs.errors import StageError
from smepulse.jobs.ml import registry
from smepulse.jobs.settings import Settings

log = logging.getLogger(__name__)
RATE_TOLERANCE = 0.25


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def _tie(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def decide(
    *,
    metric: str,
    candidate: float,
    baseline: float,
    champion: float | None,
    lower_is_better: bool,
    candidate_is_fresher: bool,
) -> Decision:
    """The promotion rule (pure). ``champion`` is None when there is no champion yet."""

    def better(a: float, b: float) -> bool:
        return (a < b if lower_is_better else a > b) and not _tie(a, b)

    if math.isnan(candidate):
        return Decision(False, f"candidate has no {metric} figure")
    if not better(candidate, baseline):
        return Decision(
            False, f"{metric} {candidate:.4f} does not beat the baseline's {baseline:.4f}"
        )
    if champion is None or math.isnan(champion):
        return Decision(
            True, f"first champion: {metric} {candidate:.4f} beats the baseline's {baseline:.4f}"
        )
    if better(candidate, champion):
        return Decision(
            True,
            f"{metric} {candidate:.4f} beats the champion's {champion:.4f} and the baseline's {baseline:.4f}",
        )
    if _tie(candidate, champion) and candidate_is_fresher:
        return Decision(
            True,
            f"ties the champion's {metric} {champion:.4f} on the same backtest and has newer data",
        )
    return Decision(False, f"{metric} {candidate:.4f} does not beat the champion's {champion:.4f}")


def decide_unlabelled(
    *, candidate_rate: float, champion_rate: float | None, target: float
) -> Decision:
    """UC10 without labels: the alert-rate rule of the module docstring (pure)."""
    low, high = target * (1 - RATE_TOLERANCE), target * (1 + RATE_TOLERANCE)
    band = f"{100 * low:.1f}–{100 * high:.1f} %"
    inside = low <= candidate_rate <= high
    if champion_rate is None:
        if inside:
            return Decision(
                True,
                f"first champion (no labels): alert rate {100 * candidate_rate:.1f} % within {band}",
            )
        return Decision(
            False, f"no labels and alert rate {100 * candidate_rate:.1f} % outside {band}"
        )
    if not low <= champion_rate <= high and inside:
        return Decision(
            True,
            f"no labels; champion's alert rate drifted to {100 * champion_rate:.1f} % (target {band}), "
            f"candidate's is {100 * candidate_rate:.1f} %",
        )
    return Decision(False, "no labels to show the new version is better; champion kept")


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


def _fresher(candidate: Any, champion: Any) -> bool:
    return bool(
        candidate.tags.get("data_end", "") > (champion.tags.get("data_end", "") if champion else "")
    )


def validate_uc09(settings: Settings, client: Any) -> Outcome | None:
    from smepulse.jobs.ml.backtest import backtest_cashflow
    from smepulse.jobs.ml.data import load_daily_cashflow
    from smepulse.jobs.ml.uc09_models import CashflowSpec

    name = registry.UC09_MODEL
    candidate, champion = _candidate_and_champion(client, name)
    if candidate is None:
        return None
    if champion is not None and champion.version == candidate.version:
        return Outcome(
            name,
            candidate.version,
            champion.version,
            champion.version,
            "unchanged",
            f"version {candidate.version} is already the champion",
            {},
        )
    metrics = registry.run_metrics(client, candidate.run_id)
    figures: dict[str, Any] = {
        "candidate_mase": metrics.get("mase", math.nan),
        "baseline_mase": metrics.get("baseline_mase", math.nan),
        "candidate_kind": candidate.tags.get("model_kind"),
    }
    champion_mase: float | None = None
    if champion is not None:
        if champion.tags.get("spec") == candidate.tags.get("spec"):
            champion_mase = figures["candidate_mase"]
        else:
            params = client.get_run(candidate.run_id).data.params
            spec = CashflowSpec(**json.loads(champion.tags["spec"]))
            daily = load_daily_cashflow(settings, dt.date.fromisoformat(candidate.logical_date))
            champion_mase = backtest_cashflow(
                daily, spec, int(params["horizon_days"]), int(params["backtest_folds"])
            ).mase
        figures.update(champion_mase=champion_mase, champion_kind=champion.tags.get("model_kind"))
    decision = decide(
        metric="MASE",
        candidate=figures["candidate_mase"],
        baseline=figures["baseline_mase"],
        champion=champion_mase,
        lower_is_better=True,
        candidate_is_fresher=_fresher(candidate, champion),
    )
    return _apply(client, name, candidate, champion, decision, figures)


def champion_figures_uc10(
    settings: Settings, candidate: Any, champion: Any, labelled: bool, candidate_ap: float
) -> dict[str, float]:
    """The UC10 champion's figure on the candidate's evaluation (see the module docstring)."""
    import mlflow.pyfunc

    from smepulse.jobs.ml.backtest import evaluate_detector
    from smepulse.jobs.ml.data import load_anomaly_labels, load_transactions
    from smepulse.jobs.ml.features import build_features, feature_matrix
    from smepulse.jobs.ml.uc10_models import AnomalySpec

    if labelled and champion.tags.get("spec") == candidate.tags.get("spec"):
        return {"average_precision": candidate_ap}
    end = dt.date.fromisoformat(candidate.logical_date)
    features = build_features(load_transactions(settings, end), settings.timezone, cutoff=end)
    if labelled:
        start, stop = (dt.date.fromisoformat(d) for d in candidate.tags["eval_window"].split(".."))
        spec = AnomalySpec(**json.loads(champion.tags["spec"]))
        score = evaluate_detector(
            features, load_anomaly_labels(settings) or set(), spec, start, stop
        )
        return {"average_precision": score.average_precision}
    # No labels: how many alerts the champion's own fitted model raises on the last window.
    model = (
        mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")
        .unwrap_python_model()
        .model
    )
    window_start = end - dt.timedelta(days=settings.ml_anomaly_window_days - 1)
    recent = features[features["local_at"].dt.date >= window_start]
    rate = (
        float(model.flag(model.score(feature_matrix(recent))).mean()) if len(recent) else math.nan
    )
    return {"recent_alert_rate": rate}


def validate_uc10(settings: Settings, client: Any) -> Outcome | None:
    name = registry.UC10_MODEL
    candidate, champion = _candidate_and_champion(client, name)
    if candidate is None:
        return None
    if champion is not None and champion.version == candidate.version:
        return Outcome(
            name,
            candidate.version,
            champion.version,
            champion.version,
            "unchanged",
            f"version {candidate.version} is already the champion",
            {},
        )
    metrics = registry.run_metrics(client, candidate.run_id)
    labelled = candidate.tags.get("has_labels") == "true" and "average_precision" in metrics
    figures: dict[str, Any] = {
        "labelled": labelled,
        "candidate_average_precision": metrics.get("average_precision", math.nan),
        "baseline_average_precision": metrics.get("baseline_average_precision", math.nan),
        "candidate_roc_auc": metrics.get("roc_auc", math.nan),
        "candidate_precision_at_k": metrics.get("precision_at_k", math.nan),
        "candidate_recent_alert_rate": metrics.get("recent_alert_rate", math.nan),
    }
    champ = (
        champion_figures_uc10(
            settings, candidate, champion, labelled, figures["candidate_average_precision"]
        )
        if champion is not None
        else None
    )
    if champ is not None:
        figures.update({f"champion_{k}": v for k, v in champ.items()})
    if labelled:
        decision = decide(
            metric="average precision",
            candidate=figures["candidate_average_precision"],
            baseline=figures["baseline_average_precision"],
            champion=None if champ is None else champ["average_precision"],
            lower_is_better=False,
            candidate_is_fresher=_fresher(candidate, champion),
        )
    else:
        decision = decide_unlabelled(
            candidate_rate=figures["candidate_recent_alert_rate"],
            champion_rate=None if champ is None else champ["recent_alert_rate"],
            target=settings.ml_anomaly_alert_rate,
        )
    return _apply(client, name, candidate, champion, decision, figures)


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
    path.write_text(json.dumps(document, indent=2, default=str))
    log.info("validation results written to %s", path)
    missing = [uc.upper() for uc, o in outcomes.items() if o is None]
    if missing:
        raise StageError(
            f"no registered model version for {' and '.join(missing)}: run the ml-training pipeline "
            f"(uc09-train, uc10-train) first; results so far in {path}"
        )
