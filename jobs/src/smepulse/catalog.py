"""The pipeline catalog (``catalog.yaml``) as typed, validated objects.

Pure: no I/O beyond reading the packaged YAML once. The local runner and the operator both
plan from :func:`load_catalog`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class Stage(_Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    needs: tuple[str, ...] = ()
    kind: Literal["job", "trigger"] = "job"
    triggers: str | None = None
    timeout_seconds: int = Field(1800, gt=0, alias="timeoutSeconds")
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    resources: Resources = Field(default_factory=Resources)

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
            if stage.kind == "trigger" and not stage.triggers:
                raise ValueError(
                    f"pipeline {self.name}: trigger stage {stage.name} names no pipeline"
                )
        for stage in self.finally_:
            if stage.needs:
                raise ValueError(
                    f"pipeline {self.name}: finally stage {stage.name} cannot have needs"
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

    @property
    def stage_names(self) -> set[str]:
        return {s.name for p in self.pipelines.values() for s in p.all_stages if s.kind == "job"}


def parse_catalog(doc: dict[str, Any]) -> Catalog:
    """Validate a catalog document, applying ``defaults`` to every stage."""
    defaults = doc.get("defaults", {})
    pipelines: dict[str, Any] = {}
    for name, raw in (doc.get("pipelines") or {}).items():
        raw = dict(raw)
        for key in ("stages", "finally"):
            raw[key] = [{**defaults, **stage} for stage in raw.get(key) or []]
        pipelines[name] = {"name": name, **raw}
    return Catalog.model_validate({"version": doc.get("version", 1), "pipelines": pipelines})


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The packaged catalog (read once per process)."""
    text = resources.files("smepulse").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(yaml.safe_load(text))
