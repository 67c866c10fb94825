"""Which part of the dbt project each ``dbt-*`` stage builds (pure data, no dbt import).

Daily-etl builds one tag per stage, in order; a test runs in the stage that builds the last of
its parents. External-sync's models (tag ``external``) are selected by folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    """What one stage builds: dbt ``--select`` / ``--exclude`` and the indirect-selection mode."""

    select: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    indirect_selection: str = "eager"


#: daily-etl's dbt stages in build order, each building one tag.
DAILY_TAGS: tuple[tuple[str, str], ...] = (
    ("dbt-silver", "silver"),
    ("dbt-gold-dims", "gold_dims"),
    ("dbt-gold-facts", "gold_facts"),
    ("dbt-gold-links", "gold_links"),
    ("dbt-gold-kpis", "gold_kpis"),
    ("dbt-ml-scores", "ml_scores"),
)


def _daily_selection(position: int) -> Selection:
    # A test runs in the stage that builds the last of its parents: "eager" indirect selection
    # picks every test touching this stage's models, and excluding the later stages' tags
    # drops (with their models) the tests that also touch a model not built yet, e.g. the
    # fct -> dim relationship tests while dims are being built.
    later = tuple(f"tag:{tag}" for _, tag in DAILY_TAGS[position + 1 :])
    exclude = later + (("tag:external",) if position == 0 else ())
    return Selection((f"tag:{DAILY_TAGS[position][1]}",), exclude)


#: Stage name -> its slice of the project. External-sync models carry the `external` tag
#: (and sometimes `silver`/`gold_dims` too): daily-etl's silver stage leaves them out so it
#: never depends on external-sync having run; the external stages select them by folder and
#: only run tests whose parents they all build ("cautious"), so they never need daily gold.
SELECTIONS: Mapping[str, Selection] = {
    **{stage: _daily_selection(i) for i, (stage, _) in enumerate(DAILY_TAGS)},
    "dbt-external-silver": Selection(("tag:external,path:models/silver",), (), "cautious"),
    "dbt-external-gold": Selection(("tag:external,path:models/gold",), (), "cautious"),
}

#: The silver view dim_province (tags external + gold_dims) is built from. When external-sync
#: has never run on this warehouse it is missing, and dbt-gold-dims builds the other eight
#: dimensions instead of failing the daily pipeline.
EXTERNAL_SILVER_MARKER = "stg_external__provinces"


#: Stages that first (re)register their bronze tables in Trino's Hive catalog, by dbt source.
BRONZE_SOURCES: Mapping[str, tuple[str, ...]] = {
    "dbt-silver": ("bronze",),
    "dbt-external-silver": ("external",),
}
