"""``report``: a self-contained HTML report of the run, and a Markdown summary beside it.

Written to ``settings.reports_dir/<pipeline>-<logical date>.html`` and ``.md``, or to
``<reports_uri>/<pipeline>-<logical date>.html`` and ``.md`` when ``reports_uri`` is an
``s3://`` URI (the cluster default: a stage Pod's own folder vanishes with it). The HTML has
no external references (CSS inline, charts as inline SVG from matplotlib's Agg backend), so
it opens offline, from an email attachment or an artifact store. Sections: rows per gold
table, dbt test results, KPI highlights, the top-priority receivables (UC05), the 30-day
cash-flow forecast with its interval against recent history (UC09) and the week's anomalies
(UC10). A section whose table is missing reads "not available yet".

In daily-etl the report runs right after the trigger of ml-predict, which runs afterwards (the
trigger is asynchronous): the forecast and anomalies shown are the latest ones available.
"""

from __future__ import annotations

import io
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.stages.report_data import ReportData, gather
from smepulse.warehouse import get_warehouse

log = logging.getLogger(__name__)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog/doctype: inline in HTML


def _robust_limits(history: pd.DataFrame | None, forecast: pd.DataFrame) -> tuple[float, float]:
    """Y range that shows the forecast band and ordinary days; a few extreme days (the very
    anomalies UC10 flags) would otherwise flatten everything else, so they run off the axis."""
    values = [forecast["lower"].min(), forecast["upper"].max()]
    if history is not None and len(history):
        values += [history["value"].quantile(0.02), history["value"].quantile(0.98)]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 1.0
    return float(low - pad), float(high + pad)


def forecast_chart(history: pd.DataFrame | None, forecast: pd.DataFrame | None) -> str | None:
    """Net cash flow: recent history as a line, the forecast with its shaded interval."""
    if forecast is None or forecast.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable
    fig, ax = plt.subplots(figsize=(12, 3.8), dpi=100)
    try:
        if history is not None and not history.empty:
            ax.plot(
                history["date"],
                history["value"] / 1e6,
                color="#4b5563",
                lw=1.2,
                label="actual (net)",
            )
        ax.fill_between(
            forecast["date"], forecast["lower"] / 1e6, forecast["upper"] / 1e6,
            color="#2563eb", alpha=0.18, label="forecast interval",
        )  # fmt: skip
        ax.plot(
            forecast["date"], forecast["value"] / 1e6, color="#2563eb", lw=2, label="forecast (net)"
        )
        ax.axhline(0, color="#9ca3af", lw=0.8)
        low, high = _robust_limits(history, forecast)
        ax.set_ylim(low / 1e6, high / 1e6)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylabel("million VND per day")
        ax.grid(alpha=0.25)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncol=3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.autofmt_xdate()
        return _svg(fig)
    finally:
        plt.close(fig)


COMPONENT_COLOURS = {
    "collections_book": "#16a34a",
    "collections_new": "#86efac",
    "other_in": "#a7f3d0",
    "payments_book": "#dc2626",
    "payments_new": "#fca5a5",
    "recurring_payroll": "#7c3aed",
    "recurring_rent": "#a78bfa",
    "recurring_tax": "#f59e0b",
    "recurring_utilities": "#fcd34d",
    "other_out": "#d1d5db",
}


def components_chart(components: pd.DataFrame | None) -> str | None:
    """The book-based forecast day by day: inflow components stacked up, outflow components
    stacked down, the net forecast as a line (the daily pattern an owner plans with)."""
    if components is None or components.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    matplotlib.rcParams["svg.fonttype"] = "none"
    wide = (
        components.pivot_table(
            index="forecast_date", columns="component", values="amount_vnd", aggfunc="sum"
        )
        .fillna(0.0)
        .astype(float)
        / 1e6
    )
    wide.index = pd.to_datetime(wide.index)
    fig, ax = plt.subplots(figsize=(12, 4.2), dpi=100)
    try:
        up = pd.Series(0.0, index=wide.index)
        down = pd.Series(0.0, index=wide.index)
        for name in [c for c in COMPONENT_COLOURS if c in wide.columns] + sorted(
            set(wide.columns) - set(COMPONENT_COLOURS)
        ):
            values = wide[name]
            if not values.abs().gt(0.5).any():
                continue  # a component worth less than 0.5 M VND on every day: not drawn
            pos, neg = values.clip(lower=0), values.clip(upper=0)
            colour = COMPONENT_COLOURS.get(name, "#6b7280")
            label = name.replace("_", " ")
            if pos.any():
                ax.bar(wide.index, pos, bottom=up, color=colour, width=0.8, label=label)
                up += pos
            if neg.any():
                ax.bar(wide.index, neg, bottom=down, color=colour, width=0.8,
                       label=None if pos.any() else label)  # fmt: skip
                down += neg
        ax.plot(wide.index, wide.sum(axis=1), color="#2563eb", lw=2, marker="o", ms=3,
                label="net forecast")  # fmt: skip
        ax.axhline(0, color="#111827", lw=0.8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylabel("million VND per day")
        ax.grid(alpha=0.25, axis="y")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncol=6, fontsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.autofmt_xdate()
        return _svg(fig)
    finally:
        plt.close(fig)


def accuracy_chart(accuracy: pd.DataFrame | None) -> str | None:
    """Rolling MAPE of past forecasts against the retrain threshold, and rolling MASE."""
    if accuracy is None or accuracy.empty or accuracy["rolling_mape"].isna().all():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.fonttype"] = "none"
    frame = accuracy.assign(day=pd.to_datetime(accuracy["logical_date"]))
    fig, ax = plt.subplots(figsize=(12, 2.8), dpi=100)
    try:
        ax.plot(frame["day"], frame["rolling_mape"].astype(float), color="#dc2626", lw=1.8,
                label="rolling MAPE")  # fmt: skip
        ax.plot(frame["day"], frame["rolling_mase"].astype(float), color="#2563eb", lw=1.8,
                label="rolling MASE")  # fmt: skip
        ax.axhline(float(frame["threshold_mape"].iloc[-1]), color="#dc2626", lw=1, ls="--",
                   label="retrain threshold (MAPE)")  # fmt: skip
        ax.grid(alpha=0.25)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncol=3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.autofmt_xdate()
        return _svg(fig)
    finally:
        plt.close(fig)


def largest_items(
    components: pd.DataFrame | None, days: int = 7, top: int = 8
) -> pd.DataFrame | None:
    """The largest book items of the first ``days`` forecast days, with their explanation."""
    if components is None or components.empty:
        return None
    book = components[components["component"].isin(["collections_book", "payments_book"])]
    first = sorted(set(book["forecast_date"]))[:days]
    book = book[book["forecast_date"].isin(first)]
    order = book["amount_vnd"].astype(float).abs().sort_values(ascending=False).index
    items = book.loc[order[:top], ["forecast_date", "component", "amount_vnd", "detail"]]
    return items.assign(forecast_date=pd.to_datetime(items["forecast_date"]).dt.date)


def bands_chart(bands: dict[str, int] | None) -> str | None:
    """Open receivables per priority band (high / medium / low)."""
    if not bands:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [b for b in ("high", "medium", "low") if b in bands] + sorted(
        set(bands) - {"high", "medium", "low"}
    )
    colors = {"high": "#dc2626", "medium": "#f59e0b", "low": "#10b981"}
    fig, ax = plt.subplots(figsize=(4.5, 2.2), dpi=100)
    try:
        values = [bands[b] for b in order]
        ax.barh(order, values, color=[colors.get(b, "#6b7280") for b in order])
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:,}", va="center", fontsize=9)
        ax.invert_yaxis()
        ax.set_xlabel("open invoices")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return _svg(fig)
    finally:
        plt.close(fig)


def _vnd(value: Any) -> str:
    try:
        return f"{float(value):,.0f}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, pd.Timestamp):
        # DuckDB DATE columns arrive as midnight timestamps: show them as dates.
        return value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%d %H:%M")
    if hasattr(value, "is_integer") or isinstance(value, int):  # Decimal, numpy ints
        try:
            return f"{int(value):,}" if float(value).is_integer() else f"{float(value):,.2f}"
        except (TypeError, ValueError):
            pass
    return str(value)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: (
                resources.files("smepulse").joinpath("templates", name).read_text(encoding="utf-8")
            )
        ),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["vnd"] = _vnd
    env.filters["cell"] = _cell
    return env


def render_html(data: ReportData) -> str:
    charts = {
        "forecast": forecast_chart(data.history, data.forecast),
        "bands": bands_chart(data.priority_bands),
        "components": components_chart(data.components),
        "accuracy": accuracy_chart(data.accuracy),
    }
    items = largest_items(data.components)
    return _env().get_template("report.html.j2").render(d=data, charts=charts, items=items)


def _md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(_cell(v).replace("|", "/") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *rows])


def render_markdown(data: ReportData) -> str:
    """A short summary for chat, email or a CI job page."""
    na = "_not available yet_"
    lines = [f"# SME Pulse {data.pipeline} — {data.logical_date}", ""]
    if data.run_id:
        lines += [f"Run `{data.run_id}`, generated {data.generated_at:%Y-%m-%d %H:%M} UTC.", ""]
    lines += ["## KPI highlights", ""]
    lines += [
        f"- **{label}**: {value}" + (f" ({note})" if note else "")
        for label, value, note in data.kpis
    ] or [na]
    lines += ["", "## Gold tables", ""]
    if data.gold_tables:
        lines += [f"- `{name}`: {n:,} rows" for name, n in data.gold_tables]
    else:
        lines.append(na)
    lines += ["", "## Top-priority receivables (UC05)", ""]
    lines.append(
        _md_table(data.priority.drop(columns=["reason"])) if data.priority is not None else na
    )
    lines += ["", "## Cash-flow forecast (UC09)", ""]
    if data.forecast is not None and len(data.forecast):
        f = data.forecast
        lines.append(
            f"{len(f)} days from {f['date'].min():%Y-%m-%d} to {f['date'].max():%Y-%m-%d}: "
            f"net {f['value'].sum() / 1e6:,.0f} M VND in total "
            f"(interval per day averages ±{((f['upper'] - f['lower']) / 2).mean() / 1e6:,.1f} M VND)."
        )
    else:
        lines.append(na)
    lines += ["", "## Anomalies this week (UC10)", ""]
    lines.append(f"{data.anomaly_count} alert(s)." if data.anomaly_count is not None else na)
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a report


def _s3_key(settings: Settings, name: str) -> tuple[str, str]:
    assert settings.reports_uri is not None
    bucket, _, prefix = settings.reports_uri.removeprefix("s3://").partition("/")
    return bucket, "/".join(p for p in (prefix.strip("/"), name) if p)


def report_location(settings: Settings, pipeline: str, day: str) -> str | None:
    """Where the HTML report of ``pipeline`` on ``day`` is, if it has been written."""
    name = f"{pipeline}-{day}.html"
    if not (settings.reports_uri or "").startswith("s3://"):
        path = settings.reports_dir / name
        return str(path.resolve()) if path.exists() else None
    from botocore.exceptions import BotoCoreError, ClientError

    from smepulse.bronze.store import s3_client

    bucket, key = _s3_key(settings, name)
    try:
        s3_client(settings).head_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError):
        return None
    return f"s3://{bucket}/{key}"


def _upload(settings: Settings, client: Any, name: str, text: str, content_type: str) -> str:
    bucket, key = _s3_key(settings, name)
    try:
        # One PUT: the object appears whole or not at all, as a local rename does.
        client.put_object(
            Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type
        )
    except Exception as exc:
        raise StageError(
            f"could not write the report to s3://{bucket}/{key} "
            f"(SMEPULSE_REPORTS_URI, endpoint {settings.s3_endpoint_url or 'AWS'}): {exc}"
        ) from exc
    return f"s3://{bucket}/{key}"


def run(settings: Settings) -> None:
    """Stage entrypoint: gather, render, write both files, print where they are."""
    data = gather(settings, get_warehouse(settings))
    stem = f"{data.pipeline}-{data.logical_date.isoformat()}"
    html, md = render_html(data), render_markdown(data)
    for problem in data.problems:
        log.info("report section not available: %s", problem)
    if (settings.reports_uri or "").startswith("s3://"):
        from smepulse.bronze.store import s3_client

        client = s3_client(settings)  # one client for both objects
        html_at = _upload(settings, client, f"{stem}.html", html, "text/html; charset=utf-8")
        md_at = _upload(settings, client, f"{stem}.md", md, "text/markdown; charset=utf-8")
    else:
        html_path = settings.reports_dir / f"{stem}.html"
        md_path = settings.reports_dir / f"{stem}.md"
        _write(html_path, html)
        _write(md_path, md)
        html_at, md_at = str(html_path.resolve()), str(md_path.resolve())
    print(f"report: {html_at}")
    print(f"summary: {md_at}")
