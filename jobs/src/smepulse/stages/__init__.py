"""The stage registry: ``smepulse stage <name>`` resolves a name here and runs it.

Derived from the catalog (``catalog.yaml``), nothing listed here: a stage with
``run: module:function`` runs that function; a stage with a ``dbt:`` block runs the one
generic dbt entry point, :func:`smepulse.dbt_runner.run_stage`, on its slice of the project.
The function takes the process's :class:`~smepulse.settings.Settings` and returns nothing,
raising :class:`~smepulse.errors.StageError` for an expected failure (exit 1, one line) or
:class:`~smepulse.errors.StageSkipped` when there is nothing to do (exit 0). Modules are
imported lazily so that ``smepulse --help`` stays fast and a stage loads only what it uses.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

from smepulse.catalog import Catalog, load_catalog
from smepulse.settings import Settings

StageFn = Callable[[Settings], None]

#: What every dbt stage runs, with the stage's name.
DBT_ENTRYPOINT = "smepulse.dbt_runner:run_stage"


def entrypoint(name: str, catalog: Catalog | None = None) -> str:
    """``module:function`` behind stage ``name``; KeyError naming the known stages otherwise."""
    _, stage = (catalog or load_catalog()).job_stage(name)
    return stage.run or DBT_ENTRYPOINT


def registry(catalog: Catalog | None = None) -> dict[str, str]:
    """Every job stage of the catalog -> its ``module:function``."""
    catalog = catalog or load_catalog()
    return {name: entrypoint(name, catalog) for name in sorted(catalog.stage_names)}


def resolve(name: str, catalog: Catalog | None = None) -> StageFn:
    """The function behind stage ``name``; KeyError with the known names otherwise."""
    _, stage = (catalog or load_catalog()).job_stage(name)
    target = stage.run or DBT_ENTRYPOINT
    module_name, _, attr = target.partition(":")
    fn: Callable[..., None] | None = getattr(importlib.import_module(module_name), attr, None)
    if not callable(fn):
        raise KeyError(f"stage {name!r}: module {module_name} has no function {attr!r}")
    if stage.dbt is not None:
        return functools.partial(fn, stage=name, catalog=catalog)
    return fn
