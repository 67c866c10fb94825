"""What a test does when a tool or package it needs is missing.

On a laptop the test is skipped with the reason; in CI (``SMEPULSE_REQUIRE_SERVICES=1`` or
``SMEPULSE_REQUIRE_KUBE=1``, set by ``scripts/test.sh``) it fails instead, naming what is
missing. ``scripts/test.sh`` also fails on any skip that is not in ``tests/skip-allowlist.txt``
(see :mod:`tests.skipcheck`), so nothing missing can pass unnoticed.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

SERVICES = "SMEPULSE_REQUIRE_SERVICES"
KUBE = "SMEPULSE_REQUIRE_KUBE"


def missing(what: str, *, setting: str = SERVICES) -> NoReturn:
    """Fail (``<setting>=1``) or skip, in one line naming ``what``."""
    if os.environ.get(setting) == "1":
        pytest.fail(f"{what} is required ({setting}=1)", pytrace=False)
    pytest.skip(f"{what} not available")


def import_or_fail(module: str, hint: str, *, setting: str = SERVICES) -> ModuleType:
    """``import module``, or :func:`missing` with ``hint`` (how to install it)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(f"Python module {module} ({hint}; {exc})", setting=setting)
