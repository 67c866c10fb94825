"""The demo skips generation only when bronze holds data of the very same configuration."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import pytest
from rich.console import Console

from smepulse import demo
from smepulse.settings import Settings

pytestmark = pytest.mark.unit


def test_same_config_skips_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path)
    part = (
        Path(settings.bronze_root) / "customers" / "ingest_date=2025-06-30" / "part-00000.parquet"
    )
    part.parent.mkdir(parents=True)
    part.write_bytes(b"PAR1")
    config = demo.DataConfig(end_date="2025-06-30", scale=0.1)
    (tmp_path / demo.MARKER).write_text(json.dumps(asdict(config)))
    calls: list[object] = []
    monkeypatch.setattr("smepulse.synth.generate.generate", lambda *a, **k: calls.append(a))
    out = io.StringIO()
    demo._generate(settings, config, Console(file=out, width=300))
    assert calls == [] and "generation skipped" in out.getvalue()

    other = demo.DataConfig(end_date="2025-06-30", scale=0.2)
    demo._generate(settings, other, Console(file=io.StringIO()))
    assert len(calls) == 1  # a different scale regenerates (the generator replaces bronze)
    assert json.loads((tmp_path / demo.MARKER).read_text())["scale"] == 0.2
