"""What a ``dbt build`` did, in a form people and the report stage can read.

:class:`BuildProgress` turns dbt's structured events into one log line per finished node
("model fct_ar_invoices ok (30,112 rows, 1.2s)", "test unique_dim_customer_customer_id on
dim_customer FAIL (3 failing rows)"). :func:`summarise` turns dbt's run results into a JSON
document (models, tests, pass/fail counts, timings) that the runner writes to
``<home>/dbt/<stage>.json``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from smepulse.settings import Settings

log = logging.getLogger("smepulse.dbt")

#: Run-result statuses that mean "this node did not do its job".
FAILED_STATUSES = frozenset({"error", "fail", "runtime error", "skipped"})


@dataclass(frozen=True)
class NodeOutcome:
    """One finished node of a dbt invocation (model, test, unit test, hook)."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    execution_time: float
    rows: int | None = None
    failures: int | None = None
    message: str | None = None
    model: str | None = None  # for tests: the model the test is attached to
    relation: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def describe(self) -> str:
        """One human line: what the node is, its status, and its figures."""
        figures = []
        if self.rows is not None and self.rows >= 0:
            figures.append(f"{self.rows:,} rows")
        if self.failures:
            figures.append(f"{self.failures:,} failing rows")
        figures.append(f"{self.execution_time:.1f}s")
        status = {"success": "ok"}.get(self.status, self.status)
        if self.failed:
            status = status.upper()
        where = f" on {self.model}" if self.model else ""
        kind = self.resource_type.replace("_", " ")
        line = f"{kind} {self.name}{where} {status} ({', '.join(figures)})"
        if self.failed and self.message:
            line += f": {_cause(self.message)}"
        return line


def _model_name(unique_id: str | None) -> str | None:
    return unique_id.rsplit(".", 1)[-1] if unique_id else None


def outcome_from_result(result: Any) -> NodeOutcome:
    """A :class:`NodeOutcome` from a dbt ``RunResult`` (``dbtRunnerResult.result.results``)."""
    node = result.node
    attached = getattr(node, "attached_node", None)
    if attached is None and node.resource_type in ("test", "unit_test"):
        parents = [p for p in getattr(node.depends_on, "nodes", []) if p.startswith("model.")]
        attached = parents[0] if parents else None
    if node.resource_type == "unit_test":
        attached = getattr(node, "tested_node_unique_id", None) or attached
    return NodeOutcome(
        unique_id=node.unique_id,
        name=node.name,
        resource_type=str(node.resource_type),
        status=str(result.status),
        execution_time=float(result.execution_time or 0.0),
        failures=int(result.failures) if result.failures else None,
        message=result.message,
        model=_model_name(attached),
        relation=getattr(node, "relation_name", None) if node.resource_type == "model" else None,
    )


@dataclass
class BuildProgress:
    """dbt event callback: log each finished node as one line while the build runs."""

    stage: str
    #: Counts the rows of a just-built table (by its relation name); None when unknown.
    row_counter: Callable[[str], int | None] | None = None
    finished: int = 0
    failed: list[str] = field(default_factory=list)

    rows_by_node: dict[str, int] = field(default_factory=dict)

    def __call__(self, event: Any) -> None:
        if event.info.name != "NodeFinished":
            return
        data = event.data
        info = data.node_info
        result = data.run_result
        status = result.status or info.node_status
        resource_type = info.resource_type
        if resource_type in ("operation", "hook"):
            return
        rows: int | None = None
        relation = info.node_relation.relation_name if info.HasField("node_relation") else ""
        if (
            self.row_counter
            and resource_type == "model"
            and info.materialized in ("table", "incremental")
            and status == "success"
            and relation
        ):
            rows = self.row_counter(relation)
        outcome = NodeOutcome(
            unique_id=info.unique_id,
            name=info.node_name,
            resource_type=resource_type,
            status=status,
            execution_time=float(result.execution_time),
            rows=rows,
            failures=int(result.num_failures) if result.num_failures else None,
            message=result.message,
        )
        self.finished += 1
        if rows is not None:
            self.rows_by_node[info.unique_id] = rows
        if outcome.failed:
            self.failed.append(outcome.name)
            log.error("[%s] %s", self.stage, outcome.describe())
        elif status == "warn":
            log.warning("[%s] %s", self.stage, outcome.describe())
        else:
            log.info("[%s] %s", self.stage, outcome.describe())


def summarise(outcomes: list[NodeOutcome]) -> dict[str, Any]:
    """Counts and timings per node type, plus every node, as a JSON-ready mapping."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        by_status = counts.setdefault(outcome.resource_type, {})
        by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
    failed = [o for o in outcomes if o.failed]
    return {
        "counts": counts,
        "n_models": sum(1 for o in outcomes if o.resource_type == "model"),
        "n_tests": sum(1 for o in outcomes if o.resource_type in ("test", "unit_test")),
        "n_failed": len(failed),
        "failed": [
            {
                "name": o.name,
                "type": o.resource_type,
                "model": o.model,
                "status": o.status,
                "failures": o.failures,
                "message": o.message,
            }
            for o in failed
        ],
        "nodes": [
            {
                "unique_id": o.unique_id,
                "name": o.name,
                "type": o.resource_type,
                "status": o.status,
                "seconds": round(o.execution_time, 3),
                "rows": o.rows,
                "failures": o.failures,
                "model": o.model,
                "relation": o.relation,
            }
            for o in outcomes
        ],
    }


def _cause(message: str) -> str:
    """dbt's error text without its "Runtime Error in model X (path)" header line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith(
        ("Runtime Error in", "Compilation Error in", "Database Error in")
    ):
        lines = lines[1:]
    return " ".join(lines[:2])[:300]


def failure_lines(outcomes: list[NodeOutcome], limit: int = 5) -> list[str]:
    """The failed nodes, tests first with the model they test, for the stage's error message."""
    failed = sorted(
        (o for o in outcomes if o.failed and o.status != "skipped"),
        key=lambda o: o.resource_type != "test",
    )
    lines = []
    for o in failed[:limit]:
        if o.resource_type in ("test", "unit_test"):
            detail = (
                f"{o.failures:,} failing rows"
                if o.failures
                else (o.message or o.status).strip().splitlines()[0]
            )
            lines.append(
                f"{o.resource_type.replace('_', ' ')} {o.name} on model {o.model}: {detail}"
            )
        else:
            lines.append(f"{o.resource_type} {o.name}: {_cause(o.message or o.status)}")
    if len(failed) > limit:
        lines.append(f"... and {len(failed) - limit} more")
    return lines


@contextlib.contextmanager
def duckdb_row_counter(settings: Settings) -> Iterator[Callable[[str], int | None] | None]:
    """Count a just-built table's rows, for the progress lines (DuckDB only).

    dbt-duckdb reports no row counts. In this process DuckDB shares one database instance
    per file, so a second connection sees what dbt's connection committed; we hold the
    warehouse lock, so no other process is writing. On Trino the lines go without counts.
    """
    if settings.warehouse != "duckdb":
        yield None
        return
    import duckdb

    state: dict[str, Any] = {}
    # dbt calls back from its worker threads; one DuckDB connection must not run two queries
    # at once (their results would cross), so counts take turns.
    guard = threading.Lock()

    def count(relation: str) -> int | None:
        with guard:
            try:
                if "con" not in state:
                    state["con"] = duckdb.connect(str(settings.warehouse_path))
                row = state["con"].execute(f"select count(*) from {relation}").fetchone()
                return int(row[0]) if row else None
            except duckdb.Error as exc:
                log.debug("could not count rows of %s: %s", relation, exc)
                return None

    try:
        yield count
    finally:
        if "con" in state:
            state["con"].close()


def _live_twin(relation: str) -> str | None:
    """``"db"."gold_staging"."t"`` -> ``"db"."gold"."t"``; None when not a staged relation."""
    parts = relation.split(".")
    if len(parts) < 2:
        return None
    schema = parts[-2].strip('"')
    if not schema.endswith("_staging"):
        return None
    parts[-2] = f'"{schema.removesuffix("_staging")}"'
    return ".".join(parts)


def observe_publish(
    outcomes: list[NodeOutcome], count: Callable[[str], int | None]
) -> tuple[bool, str | None]:
    """Did the publish step really copy every table this build staged to the live schema?

    Observed, not assumed: each staged table's live twin must exist and hold the same number
    of rows (``count`` returns None for a table it cannot read). Returns (published, why not).
    A build that staged nothing (views only, or write-audit-publish off) has nothing to
    publish: (True, None).
    """
    for o in outcomes:
        if o.resource_type != "model" or not o.relation or o.failed:
            continue
        live = _live_twin(o.relation)
        if live is None:
            continue
        staged_rows, live_rows = count(o.relation), count(live)
        if live_rows is None:
            return False, f"{o.name}: {live} is missing after the publish step"
        if staged_rows != live_rows:
            return False, (
                f"{o.name}: {live} holds {live_rows} rows, the tested {o.relation} {staged_rows}"
            )
    return True, None


@contextlib.contextmanager
def warehouse_counter(settings: Settings) -> Iterator[Callable[[str], int | None]]:
    """``count(relation)`` on the run's warehouse (DuckDB file or Trino); None if unreadable."""
    if settings.warehouse == "duckdb":
        with duckdb_row_counter(settings) as counter:
            assert counter is not None
            yield counter
        return
    import trino

    from smepulse.warehouse import TrinoWarehouse

    con = TrinoWarehouse(settings)._connect()  # one connection for all the counts

    def count(relation: str) -> int | None:
        try:
            cur = con.cursor()
            cur.execute(f"select count(*) from {relation}")
            row = cur.fetchone()
            return int(row[0]) if row else None
        except trino.exceptions.TrinoQueryError as exc:
            log.debug("could not count rows of %s: %s", relation, exc)
            return None

    try:
        yield count
    finally:
        con.close()
