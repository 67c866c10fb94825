"""The pipeline catalog (``catalog.yaml``) as typed, validated objects.

The one source every registry derives from: the DAGs the local runner and the operator plan
from, what each stage runs (``smepulse.stages.resolve``) and each dbt stage's slice of the
project (``smepulse.dbt_selection``). No I/O beyond reading the packaged YAML once and
checking that each ``run`` module exists (without importing it, so the operator, which has
no dbt or ML libraries, loads the same catalog).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class CatalogError(ValueError):
    """The catalog is invalid; the message names the pipeline, the stage and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# No retry waits longer than this, however many attempts came before (exponential growth
# from a 1-hour backoff would otherwise reach weeks by the tenth attempt).
MAX_BACKOFF_SECONDS = 3600


class RetryPolicy(_Model):
    limit: int = Field(1, ge=0, le=20)
    backoff_seconds: int = Field(30, ge=0, alias="backoffSeconds")

    def delay(self, attempt: int) -> int:
        """Seconds to wait before attempt ``attempt`` (2 = the first retry): exponential,
        at most :data:`MAX_BACKOFF_SECONDS`."""
        if attempt <= 1:
            return 0
        return min(MAX_BACKOFF_SECONDS, int(self.backoff_seconds * 2 ** (attempt - 2)))


class Resources(_Model):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class ExcludeWhenMissing(_Model):
    """Build without ``exclude`` (and log ``hint``) while ``relation`` does not exist yet.

    ``relation`` is ``silver.<name>`` or ``gold.<name>``: the layer, whatever the schema
    the settings give it.
    """

    relation: str = Field(pattern=r"^(silver|gold)\.[a-z_][a-z0-9_]*$")
    exclude: tuple[str, ...] = Field(min_length=1)
    hint: str = ""


class DbtSpec(_Model):
    """What a dbt stage builds: ``dbt build --select ... --exclude ...``.

    The exclusions dbt runs with are ``exclude`` plus the ``select`` of every dbt stage
    downstream of this one in its pipeline (derived, see ``smepulse.dbt_selection``).
    """

    select: tuple[str, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()
    indirect_selection: Literal["eager", "cautious", "buildable", "empty"] = Field(
        "eager", alias="indirectSelection"
    )
    #: dbt sources whose bronze tables the stage (re)registers first on Trino.
    bronze_sources: tuple[str, ...] = Field((), alias="bronzeSources")
    exclude_when_missing: tuple[ExcludeWhenMissing, ...] = Field((), alias="excludeWhenMissing")

    @model_validator(mode="after")
    def _check_selectors(self) -> DbtSpec:
        for key, values in (("select", self.select), ("exclude", self.exclude)):
            bad = [v for v in values if not v or any(c.isspace() for c in v)]
            if bad:
                raise ValueError(f"{key}: {bad} are not dbt selectors (one per list item)")
        return self


def _module_exists(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (parents are imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class Stage(_Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    needs: tuple[str, ...] = ()
    kind: Literal["job", "trigger"] = "job"
    triggers: str | None = None
    #: A Python stage: ``module:function``, the function taking the Settings.
    run: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    #: A dbt stage: the slice of the dbt project it builds.
    dbt: DbtSpec | None = None
    timeout_seconds: int = Field(1800, gt=0, alias="timeoutSeconds")
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _check_what_runs(self) -> Stage:
        if self.kind == "trigger":
            if self.run or self.dbt:
                raise ValueError("a trigger stage starts a pipeline: give it no run or dbt")
            if not self.triggers:
                raise ValueError("a trigger stage needs `triggers: <pipeline>`")
            return self
        if self.triggers:
            raise ValueError("`triggers` is only for `kind: trigger` stages")
        if self.run and self.dbt:
            raise ValueError("give either run (a Python stage) or dbt (a dbt stage), not both")
        if not self.run and not self.dbt:
            raise ValueError("says nothing to run: give `run: module:function` or a `dbt:` block")
        if self.run:
            module = self.run.partition(":")[0]
            if not _module_exists(module):
                raise ValueError(f"run: no module {module!r} (from {self.run!r})")
        return self

    @property
    def command(self) -> list[str]:
        """The container/subprocess command of a ``job`` stage."""
        return ["smepulse", "stage", self.name]


class Pipeline(_Model):
    name: str
    description: str = ""
    schedule: str | None = None
    stages: tuple[Stage, ...]
    finally_: tuple[Stage, ...] = Field((), alias="finally")

    @model_validator(mode="after")
    def _check_dag(self) -> Pipeline:
        names = [s.name for s in self.all_stages]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"pipeline {self.name}: duplicate stage names {sorted(dupes)}")
        main = {s.name for s in self.stages}
        for stage in self.stages:
            unknown = set(stage.needs) - main
            if unknown:
                raise ValueError(
                    f"pipeline {self.name}: stage {stage.name} needs unknown {sorted(unknown)}"
                )
        for stage in self.finally_:
            if stage.needs:
                raise ValueError(
                    f"pipeline {self.name}: finally stage {stage.name} cannot have needs"
                )
            if stage.kind == "trigger":
                raise ValueError(
                    f"pipeline {self.name}: finally stage {stage.name} cannot be a trigger"
                )
        topo_order([*self.stages])  # raises on a cycle
        return self

    @property
    def all_stages(self) -> tuple[Stage, ...]:
        return (*self.stages, *self.finally_)

    def stage(self, name: str) -> Stage:
        for stage in self.all_stages:
            if stage.name == name:
                return stage
        raise KeyError(
            f"pipeline {self.name} has no stage {name!r}; stages: {', '.join(s.name for s in self.all_stages)}"
        )

    def downstream(self, name: str) -> set[str]:
        """``name`` and every stage that depends on it, transitively (for --from-stage)."""
        result = {name}
        changed = True
        while changed:
            changed = False
            for stage in self.stages:
                if stage.name not in result and result.intersection(stage.needs):
                    result.add(stage.name)
                    changed = True
        return result

    def select(self, only: list[str] | None = None, from_stage: str | None = None) -> list[str]:
        """Names of the main stages to run, in topological order.

        ``only`` runs exactly those stages (their needs outside the selection are taken as
        done); ``from_stage`` re-runs that stage and everything downstream of it.
        """
        for name in [*(only or []), *([from_stage] if from_stage else [])]:
            if name not in {s.name for s in self.stages}:
                raise KeyError(
                    f"pipeline {self.name} has no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}"
                )
        chosen = {s.name for s in self.stages}
        if from_stage:
            chosen &= self.downstream(from_stage)
        if only:
            chosen &= set(only)
        return [s.name for s in topo_order(list(self.stages)) if s.name in chosen]


def topo_order(stages: list[Stage]) -> list[Stage]:
    """Kahn's algorithm, stable in declaration order; raises ValueError on a cycle."""
    remaining = {s.name: set(s.needs) for s in stages}
    by_name = {s.name: s for s in stages}
    order: list[Stage] = []
    while remaining:
        ready = [n for n in by_name if n in remaining and not remaining[n]]
        if not ready:
            raise ValueError(f"dependency cycle among stages {sorted(remaining)}")
        for name in ready:
            order.append(by_name[name])
            del remaining[name]
        for needs in remaining.values():
            needs.difference_update(ready)
    return order


class Catalog(_Model):
    version: int
    pipelines: dict[str, Pipeline]

    def pipeline(self, name: str) -> Pipeline:
        try:
            return self.pipelines[name]
        except KeyError:
            raise KeyError(
                f"unknown pipeline {name!r}; known: {', '.join(self.pipelines)}"
            ) from None

    @model_validator(mode="after")
    def _check_stage_names(self) -> Catalog:
        # `smepulse stage <name>` knows only the name: a name shared by pipelines (notify)
        # must run the same thing everywhere, and a dbt stage, whose exclusions derive from
        # its pipeline's DAG, belongs to one pipeline.
        seen: dict[str, tuple[str, Stage]] = {}
        for pipeline in self.pipelines.values():
            for stage in pipeline.all_stages:
                if stage.kind != "job":
                    continue
                if stage.name not in seen:
                    seen[stage.name] = (pipeline.name, stage)
                    continue
                first_pipeline, first = seen[stage.name]
                if stage.dbt or first.dbt:
                    raise ValueError(
                        f"dbt stage {stage.name} appears in pipelines {first_pipeline} and "
                        f"{pipeline.name}; a dbt stage belongs to one pipeline"
                    )
                if stage.run != first.run:
                    raise ValueError(
                        f"stage {stage.name} runs {first.run} in pipeline {first_pipeline} "
                        f"but {stage.run} in pipeline {pipeline.name}; one name, one entrypoint"
                    )
        return self

    @property
    def stage_names(self) -> set[str]:
        return {s.name for p in self.pipelines.values() for s in p.all_stages if s.kind == "job"}

    def job_stage(self, name: str) -> tuple[Pipeline, Stage]:
        """The (first) pipeline holding job stage ``name``, and the stage; KeyError otherwise."""
        for pipeline in self.pipelines.values():
            for stage in pipeline.all_stages:
                if stage.name == name and stage.kind == "job":
                    return pipeline, stage
        raise KeyError(
            f"unknown stage {name!r}; known stages: {', '.join(sorted(self.stage_names))}"
        )


def parse_catalog(doc: dict[str, Any]) -> Catalog:
    """Validate a catalog document, applying ``defaults`` to every stage.

    Raises :class:`CatalogError` naming the pipeline, the stage and the key of each problem.
    """
    defaults = doc.get("defaults", {})
    pipelines: dict[str, Any] = {}
    for name, raw in (doc.get("pipelines") or {}).items():
        raw = dict(raw)
        for key in ("stages", "finally"):
            raw[key] = [{**defaults, **stage} for stage in raw.get(key) or []]
        pipelines[name] = {"name": name, **raw}
    document = {"version": doc.get("version", 1), "pipelines": pipelines}
    try:
        return Catalog.model_validate(document)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(err["loc"], document)
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message.removeprefix(where + ': ')}")
        raise CatalogError("invalid pipeline catalog:\n  " + "\n  ".join(problems)) from None


def _where(loc: Sequence[int | str], document: dict[str, Any]) -> str:
    """``('pipelines', 'p', 'stages', 2, 'dbt', 'select')`` -> ``pipeline p, stage <name>, key dbt.select``."""
    if len(loc) < 2 or loc[0] != "pipelines":
        return ".".join(map(str, loc)) or "catalog"
    parts = [f"pipeline {loc[1]}"]
    rest = list(loc[2:])
    if len(rest) >= 2 and rest[0] in ("stages", "finally") and isinstance(rest[1], int):
        stages = document["pipelines"].get(str(loc[1]), {}).get(str(rest[0])) or []
        index = rest[1]
        name = stages[index].get("name") if index < len(stages) else None
        parts.append(f"{'finally ' if rest[0] == 'finally' else ''}stage {name or f'#{index + 1}'}")
        rest = rest[2:]
    if rest:
        parts.append(f"key {'.'.join(map(str, rest))}")
    return ", ".join(parts)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The packaged catalog (read once per process)."""
    text = resources.files("smepulse").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(yaml.safe_load(text))
