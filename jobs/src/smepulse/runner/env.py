"""The environment of a stage subprocess: the parent's settings, passed explicitly.

A stage process builds its own :class:`Settings` from the environment. The runner may itself
have been given settings that the environment does not hold (``Settings(home=tmp)`` in a
test, ``--bronze`` on the command line), so it writes every field back as ``SMEPULSE_<FIELD>``
and the child sees exactly the parent's configuration, plus the per-run fields (logical date,
run id, pipeline, params and, for finally stages, the outcome).

This is the only place that turns settings into environment variables, and it is pure: it
takes the inherited environment as an argument instead of reading ``os.environ``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr

from smepulse.settings import Settings

# Per-run fields: set by the runner for each stage, never inherited from the parent process.
RUN_FIELDS = (
    "logical_date",
    "run_id",
    "pipeline",
    "params",
    "run_outcome",
    "failed_stage",
    "failure_message",
)


def _env_names(name: str) -> list[str]:
    """Every environment name that can set field ``name`` (its aliases included)."""
    info = Settings.model_fields[name]
    names = [f"SMEPULSE_{name.upper()}"]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        names += [str(choice).upper() for choice in alias.choices]
    elif isinstance(alias, str):
        names.append(alias.upper())
    return list(dict.fromkeys(names))


def _encode(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        # Absolute: the child must find the same files whatever its working directory.
        return str(value.resolve())
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | dict | tuple):
        return json.dumps(value)
    return str(value)


def settings_env(settings: Settings, inherited: Mapping[str, str]) -> dict[str, str]:
    """``inherited`` with every settings field overwritten by ``settings``' value.

    A field that is None in ``settings`` is removed from the environment (with its aliases,
    e.g. ``REDIS_URL``), so a child never picks up a value the parent chose not to use.
    """
    env = {k: v for k, v in inherited.items()}
    upper = {k.upper(): k for k in env}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        for env_name in _env_names(name):
            if env_name in upper:
                env.pop(upper[env_name], None)
        if name in RUN_FIELDS or value is None:
            continue
        env[f"SMEPULSE_{name.upper()}"] = _encode(value)
    if settings.log_format == "auto":
        # A stage's output goes to a log file that people read: text, not JSON.
        env["SMEPULSE_LOG_FORMAT"] = "text"
    return env


def stage_env(
    base: Mapping[str, str],
    *,
    logical_date: dt.date,
    run_id: str,
    pipeline: str,
    params: Mapping[str, str],
    outcome: str | None = None,
    failed_stage: str | None = None,
    failure_message: str | None = None,
) -> dict[str, str]:
    """``base`` (from :func:`settings_env`) plus the per-run variables of one stage."""
    env = dict(base)
    env["SMEPULSE_LOGICAL_DATE"] = logical_date.isoformat()
    env["SMEPULSE_RUN_ID"] = run_id
    env["SMEPULSE_PIPELINE"] = pipeline
    env["SMEPULSE_PARAMS"] = json.dumps(dict(params))
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the file as they happen
    if outcome is not None:
        env["SMEPULSE_RUN_OUTCOME"] = outcome
        if failed_stage:
            env["SMEPULSE_FAILED_STAGE"] = failed_stage
        if failure_message:
            env["SMEPULSE_FAILURE_MESSAGE"] = failure_message
    return env
