"""Which part of the dbt project each dbt stage builds, derived from the catalog (no dbt import).

A stage's ``dbt:`` block in ``catalog.yaml`` gives its ``select``; its exclusions are its own
``exclude`` plus the ``select`` of every dbt stage downstream of it in the same pipeline. With
dbt's "eager" indirect selection, which picks every test touching a selected model, this
places each test in the stage that builds the last of its parents: excluding the later
stages' models drops with them the tests that also touch a model not built yet (the
fct -> dim relationship tests while the dims are being built). Adding a dbt stage is
therefore one catalog entry; nothing here lists stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from smepulse.catalog import Catalog, ExcludeWhenMissing, Pipeline, Stage, load_catalog, topo_order


@dataclass(frozen=True)
class Selection:
    """What one stage builds: dbt ``--select`` / ``--exclude`` and the indirect-selection mode,
    the bronze sources it registers first (Trino) and the exclusions that apply while a
    relation is missing."""

    select: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    indirect_selection: str = "eager"
    bronze_sources: tuple[str, ...] = ()
    exclude_when_missing: tuple[ExcludeWhenMissing, ...] = ()


def dbt_stages(pipeline: Pipeline) -> list[Stage]:
    """The pipeline's dbt stages in build (topological) order."""
    return [s for s in topo_order(list(pipeline.stages)) if s.dbt is not None]


def selection(stage: str, catalog: Catalog | None = None) -> Selection:
    """The slice of the dbt project that dbt stage ``stage`` builds (KeyError otherwise)."""
    pipeline, entry = (catalog or load_catalog()).job_stage(stage)
    if entry.dbt is None:
        raise KeyError(f"stage {stage!r} of pipeline {pipeline.name} is not a dbt stage")
    later = pipeline.downstream(stage) - {stage}
    derived = [
        sel for s in dbt_stages(pipeline) if s.name in later and s.dbt for sel in s.dbt.select
    ]
    exclude = tuple(dict.fromkeys([*derived, *entry.dbt.exclude]))
    return Selection(
        select=entry.dbt.select,
        exclude=exclude,
        indirect_selection=entry.dbt.indirect_selection,
        bronze_sources=entry.dbt.bronze_sources,
        exclude_when_missing=entry.dbt.exclude_when_missing,
    )
