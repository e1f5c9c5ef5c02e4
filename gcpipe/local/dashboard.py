"""``gcpipe local dashboard``: the stack's own CloudWatch dashboard, filled with a local run's metrics, as one HTML file.

* The widgets are the synthesized template's ``AWS::CloudWatch::Dashboard`` ``DashboardBody``
  (its ``Fn::Join``/``Ref``/``Fn::GetAtt`` resolved with gcpipe.local.template's resolver), in
  their order and grid positions: nothing here names a widget, so a widget added to
  infra/observability.py shows up by itself.
* The data are the EMF lines the local Lambdas printed during the run (``.local-run/lambdas.log``;
  Powertools Metrics writes ``{"_aws": {"CloudWatchMetrics": [...]}, "<metric>": value(s), <dims>}``).
  A widget's metric matches an EMF metric with the same namespace and name whose dimensions
  include the widget's (CloudWatch matches exact dimension sets; locally a superset is allowed so
  that a dashboard that aggregates over an extra dimension still shows its data).
* AWS service metrics (``AWS/SQS``, ``AWS/States``, ``AWS/Lambda``) are recorded by the services on
  AWS, not printed by the Lambdas: locally the emulator records them (gcpipe.local.service_metrics,
  ``aws-metrics.log`` beside ``lambdas.log``), with the physical names the local deploy gave the
  resources (gcpipe.local.deploy.physical_name), which is what the widgets' dimensions resolve to.
* Metric math lines and the alarm widget are evaluated here (gcpipe.local.metric_math): each alarm of
  the template gets the state it reaches over the periods the run covered.

The page is self-contained (inline CSS and SVG, no script, no CDN): it opens offline.
"""

from __future__ import annotations

import functools
import html
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .deploy import physical_name
from .metric_math import AlarmState, MetricMathError, evaluate, evaluate_alarm, per_period, periods, statistic
from .service_metrics import AWS_METRICS_LOG
from .template import CloudAssembly, Resolver

DASHBOARD_TYPE = "AWS::CloudWatch::Dashboard"
BUCKETS = 40  # points per chart line
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


class DashboardError(ValueError):
    pass


# ---------------------------------------------------------------------------- EMF


@dataclass
class EmfSeries:
    namespace: str
    name: str
    dimensions: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)  # (epoch ms, value)


def read_emf(lines: Iterable[str]) -> list[EmfSeries]:
    """Every metric of every EMF line, one series per (namespace, name, dimension set and values)."""
    series: dict[tuple[str, str, tuple[tuple[str, str], ...]], EmfSeries] = {}
    for line in lines:
        start = line.find('{"_aws"') if '"_aws"' in line else -1
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        meta = record.get("_aws") if isinstance(record, dict) else None
        if not isinstance(meta, dict):
            continue
        timestamp = meta.get("Timestamp")
        for directive in meta.get("CloudWatchMetrics") or []:
            namespace = directive.get("Namespace", "")
            for dim_set in directive.get("Dimensions") or [[]]:
                dims = {d: str(record.get(d)) for d in dim_set if d in record}
                for metric in directive.get("Metrics") or []:
                    name = metric.get("Name")
                    values = record.get(name)
                    values = values if isinstance(values, list) else [values]
                    key = (namespace, name, tuple(sorted(dims.items())))
                    s = series.setdefault(key, EmfSeries(namespace, name, dims))
                    for v in values:
                        if (
                            isinstance(v, (int, float))
                            and not isinstance(v, bool)
                            and isinstance(timestamp, (int, float))
                        ):
                            s.points.append((float(timestamp), float(v)))
    return list(series.values())


# ---------------------------------------------------------------------------- widgets


@dataclass
class MetricLine:
    namespace: str | None  # None for a math expression
    name: str
    dimensions: dict[str, str]
    stat: str
    label: str
    points: list[tuple[float, float]] = field(default_factory=list)
    note: str | None = None

    @property
    def has_data(self) -> bool:
        return bool(self.points)


@dataclass
class Widget:
    index: int
    type: str
    title: str
    x: int
    y: int
    width: int
    height: int
    lines: list[MetricLine] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    alarm_states: list[AlarmState] = field(default_factory=list)
    text: str | None = None

    @property
    def has_data(self) -> bool:
        return any(line.has_data for line in self.lines) or any(a.evaluated for a in self.alarm_states)


# The property that names a resource of each type (else the local deploy generates the name).
NAME_PROPERTIES = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::DynamoDB::Table": "TableName",
}


def local_resolver(assembly: CloudAssembly, *, region: str = "us-east-1", account_id: str = "123456789012") -> Resolver:
    """Resolves Ref/GetAtt to the names and ARNs the local deploy gives the resources, which is what the
    emulator's service metrics carry. An alarm resolves to its logical id (alarms are evaluated here)."""
    resources = assembly.template.get("Resources") or {}

    def name_of(logical_id: str) -> str:
        resource = resources.get(logical_id) or {}
        rtype = str(resource.get("Type", ""))
        given = (resource.get("Properties") or {}).get(NAME_PROPERTIES.get(rtype, ""))
        return given if isinstance(given, str) else physical_name(assembly.stack_name, logical_id, rtype)

    def ref(logical_id: str) -> str:
        rtype = str((resources.get(logical_id) or {}).get("Type", ""))
        if rtype == "AWS::StepFunctions::StateMachine":
            return f"arn:aws:states:{region}:{account_id}:stateMachine:{name_of(logical_id)}"
        return logical_id if rtype == "AWS::CloudWatch::Alarm" else name_of(logical_id)

    def get_att(logical_id: str, attribute: str) -> str:
        rtype = str((resources.get(logical_id) or {}).get("Type", ""))
        return logical_id if rtype == "AWS::CloudWatch::Alarm" else name_of(logical_id)

    return Resolver(
        stack_name=assembly.stack_name,
        account_id=account_id,
        region=region,
        parameters={},
        conditions=assembly.template.get("Conditions") or {},
        ref=ref,
        get_att=get_att,
    )


def dashboard_body(
    assembly: CloudAssembly, *, region: str = "us-east-1", account_id: str = "123456789012"
) -> dict[str, Any]:
    """The resolved DashboardBody of the template's (first) dashboard."""
    resources = assembly.template.get("Resources") or {}
    found = [(k, r) for k, r in resources.items() if r.get("Type") == DASHBOARD_TYPE]
    if not found:
        raise DashboardError(f"{assembly.stack_name}: the template has no {DASHBOARD_TYPE}")
    _, resource = found[0]
    resolver = local_resolver(assembly, region=region, account_id=account_id)
    body = resolver.resolve((resource.get("Properties") or {}).get("DashboardBody"), "DashboardBody")
    try:
        return json.loads(body) if isinstance(body, str) else body
    except json.JSONDecodeError as exc:
        raise DashboardError(f"{assembly.stack_name}: DashboardBody is not JSON after resolving: {exc}") from None


def _metric_rows(metrics: list[Any]) -> Iterable[tuple[list[Any], dict[str, Any]]]:
    previous: list[Any] = []
    for row in metrics:
        if not isinstance(row, list):
            continue
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        parts = row[:-1] if options else row
        if options.get("expression"):
            yield [], options
            continue
        # CloudWatch's shorthand: "." (or "...") repeats the previous row's value at that position.
        expanded: list[Any] = []
        for i, part in enumerate(parts):
            if part == "...":
                expanded.extend(previous[i:])
                break
            expanded.append(previous[i] if part == "." and i < len(previous) else part)
        previous = expanded
        yield expanded, options


def widgets_of(body: dict[str, Any], emf: list[EmfSeries], alarms: dict[str, AlarmState] | None = None) -> list[Widget]:
    """The body's widgets, each metric line filled from ``emf``, each alarm with its ``alarms`` state."""
    out = []
    for index, raw in enumerate(body.get("widgets") or []):
        props = raw.get("properties") or {}
        widget = Widget(
            index=index,
            type=raw.get("type", "metric"),
            title=str(props.get("title") or raw.get("type")),
            x=int(raw.get("x", 0)),
            y=int(raw.get("y", 0)),
            width=int(raw.get("width", 6)),
            height=int(raw.get("height", 6)),
        )
        if widget.type == "metric":
            default_stat = props.get("stat", "Average")
            rows = list(_metric_rows(props.get("metrics") or []))
            widget.lines = [_line(parts, options, default_stat, emf) for parts, options in rows]
            _fill_expressions(widget.lines, [options for _, options in rows], int(props.get("period", 300)))
        elif widget.type == "alarm":
            widget.alarms = [str(a) for a in props.get("alarms") or []]
            widget.alarm_states = [alarms[a] for a in widget.alarms if alarms and a in alarms]
        elif widget.type == "text":
            widget.text = str(props.get("markdown") or "")
        out.append(widget)
    return out


def _fill_expressions(lines: list[MetricLine], options: list[dict[str, Any]], period_s: int) -> None:
    """A math line's points: its expression over the widget's other lines (by ``id``), one per period."""
    by_id = {
        str(o["id"]): line for line, o in zip(lines, options, strict=True) if o.get("id") and line.namespace is not None
    }
    points = [t for line in by_id.values() for t, _ in line.points]
    if not points:
        return
    covered = periods(min(points), max(points), period_s)
    inputs = {i: per_period(line.points, line.stat, period_s, covered) for i, line in by_id.items()}
    for line, o in zip(lines, options, strict=True):
        if line.namespace is None and o.get("expression"):
            try:
                values = evaluate(str(o["expression"]), inputs)
            except MetricMathError as exc:
                line.note = str(exc)
                continue
            line.points = [(float(t), v) for t, v in sorted(values.items()) if v is not None]
            line.note = None if line.points else "no data point in this run"


def _line(parts: list[Any], options: dict[str, Any], default_stat: str, emf: list[EmfSeries]) -> MetricLine:
    stat = str(options.get("stat") or default_stat)
    if not parts:
        return MetricLine(
            None,
            str(options.get("id") or "expression"),
            {},
            stat,
            str(options.get("label") or options.get("expression")),
            note="math expression with no input data in this run",
        )
    namespace, name, *rest = [str(p) for p in parts]
    dims = dict(zip(rest[0::2], rest[1::2], strict=False))
    label = str(options.get("label") or name)
    line = MetricLine(namespace, name, dims, stat, f"{label} ({stat})")
    line.points = points_of(emf, namespace, name, dims)
    if not line.points:
        line.note = "no data point in this run"
    return line


def points_of(emf: list[EmfSeries], namespace: str, name: str, dims: dict[str, str]) -> list[tuple[float, float]]:
    """The data points of a metric: the series with exactly these dimensions, else every finer one."""
    matching = [
        s
        for s in emf
        if s.namespace == namespace and s.name == name and all(s.dimensions.get(k) == v for k, v in dims.items())
    ]
    # An EMF line may carry a metric under several dimension sets: the exact set when there is one (each value
    # once), else every finer series (e.g. one per topic), whose values together are the coarser metric's.
    exact = [s for s in matching if s.dimensions == dims]
    return [p for s in (exact or matching) for p in s.points]


# ---------------------------------------------------------------------------- statistics


def _buckets(points: list[tuple[float, float]], start: float, end: float, stat: str) -> list[float | None]:
    width = max(1.0, (end - start) / BUCKETS)
    grouped: dict[int, list[float]] = defaultdict(list)
    for t, v in points:
        grouped[min(BUCKETS - 1, int((t - start) / width))].append(v)
    return [statistic(grouped[i], stat) if i in grouped else None for i in range(BUCKETS)]


# ---------------------------------------------------------------------------- HTML


def render_html(stack_name: str, widgets: list[Widget], *, source: str, log_file: str) -> str:
    all_points = [t for w in widgets for line in w.lines for t, _ in line.points]
    start, end = (min(all_points), max(all_points)) if all_points else (0.0, 1.0)
    cards = "\n".join(_card(w, start, end) for w in widgets)
    when = f"{_ts(start)} to {_ts(end)}" if all_points else "no data points"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(stack_name)} dashboard (local run)</title>
<style>
body{{font-family:system-ui,sans-serif;margin:16px;background:#f4f5f7;color:#16191f}}
.grid{{display:grid;grid-template-columns:repeat(24,1fr);gap:8px}}
.widget{{background:#fff;border:1px solid #d5dbdb;border-radius:4px;padding:8px;overflow:hidden}}
.widget h2{{font-size:14px;margin:0 0 6px}} table{{border-collapse:collapse;font-size:12px;width:100%}}
td{{padding:2px 4px;border-top:1px solid #eee}} .note{{color:#687078;font-style:italic}}
.swatch{{display:inline-block;width:10px;height:10px;margin-right:4px}} svg{{width:100%;height:120px}}
.state-ALARM{{color:#d13212;font-weight:bold}} .state-OK{{color:#1d8102}} .state-INSUFFICIENT_DATA{{color:#687078}}
</style></head><body>
<h1>{html.escape(stack_name)}: the stack's dashboard, filled by a local run</h1>
<p>Widgets from {html.escape(source)}; data from the EMF lines in {html.escape(log_file)} ({html.escape(when)}).
Alarms: the state each reaches over the periods the run covered, evaluated locally.</p>
<div class="grid">
{cards}
</div></body></html>
"""


def _ts(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _card(w: Widget, start: float, end: float) -> str:
    style = f"grid-column:{w.x + 1} / span {w.width};grid-row:{w.y + 1} / span {w.height}"
    body = ""
    if w.type == "metric":
        body = (
            _chart(w, start, end)
            + "<table>"
            + "".join(
                f"<tr><td><span class='swatch' style='background:{COLORS[i % len(COLORS)]}'></span>"
                f"{html.escape(line.label)}</td><td data-points='{len(line.points)}'>"
                + (
                    _fmt(statistic([v for _, v in line.points], line.stat))
                    if line.has_data
                    else f"<span class='note'>{html.escape(line.note or 'no data')}</span>"
                )
                + "</td></tr>"
                for i, line in enumerate(w.lines)
            )
            + "</table>"
        )
    elif w.type == "alarm":
        states = {a.alarm: a for a in w.alarm_states}
        body = (
            "<table>"
            + "".join(
                f"<tr><td>{html.escape(a)}</td>"
                + (
                    f"<td class='state-{states[a].state}' data-state='{states[a].state}'>{states[a].state}</td>"
                    f"<td class='note'>{html.escape(states[a].reason)}</td>"
                    if a in states
                    else "<td class='note' colspan='2'>not an alarm of this template</td>"
                )
                + "</tr>"
                for a in w.alarms
            )
            + "</table>"
        )
    elif w.type == "text":
        body = f"<pre>{html.escape(w.text or '')}</pre>"
    points = sum(len(line.points) for line in w.lines)
    return (
        f"<section class='widget' style='{style}' data-widget='{w.index}' data-title='{html.escape(w.title)}' "
        f"data-type='{w.type}' data-points='{points}'><h2>{html.escape(w.title)}</h2>{body}</section>"
    )


def _chart(w: Widget, start: float, end: float) -> str:
    series = [(i, _buckets(line.points, start, end, line.stat)) for i, line in enumerate(w.lines) if line.has_data]
    values = [v for _, b in series for v in b if v is not None]
    if not values:
        return "<svg viewBox='0 0 400 120'><text x='10' y='60' fill='#687078'>no local data</text></svg>"
    top = max(values) or 1.0
    paths = []
    for i, buckets in series:
        pts = [
            f"{10 + j * 380 / (BUCKETS - 1):.1f},{110 - (v / top) * 100:.1f}"
            for j, v in enumerate(buckets)
            if v is not None
        ]
        if len(pts) == 1:
            x, y = pts[0].split(",")
            paths.append(f"<circle cx='{x}' cy='{y}' r='2.5' fill='{COLORS[i % len(COLORS)]}'/>")
        else:
            paths.append(
                f"<polyline fill='none' stroke-width='1.5' stroke='{COLORS[i % len(COLORS)]}' "
                f"points='{' '.join(pts)}'/>"
            )
    return (
        f"<svg viewBox='0 0 400 120'><line x1='10' y1='110' x2='390' y2='110' stroke='#ccc'/>"
        f"<text x='12' y='12' font-size='10' fill='#687078'>max {_fmt(top)}</text>{''.join(paths)}</svg>"
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


# ---------------------------------------------------------------------------- the command's job


@dataclass
class LocalDashboard:
    stack_name: str
    widgets: list[Widget]
    alarms: dict[str, AlarmState]
    html: str

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack_name,
            "widgets": [
                {
                    "title": w.title,
                    "type": w.type,
                    "has_data": w.has_data,
                    "lines": [{"label": ln.label, "points": len(ln.points), "note": ln.note} for ln in w.lines],
                    **(
                        {"alarms": [{"alarm": a.alarm, "state": a.state, "reason": a.reason} for a in w.alarm_states]}
                        if w.type == "alarm"
                        else {}
                    ),
                }
                for w in self.widgets
            ],
        }


def alarm_states(assembly: CloudAssembly, emf: list[EmfSeries]) -> dict[str, AlarmState]:
    """Every alarm of the template, evaluated over the periods the run's data points cover."""
    stamps = [t for series in emf for t, _ in series.points]
    if not stamps:
        return {}
    resolver = local_resolver(assembly)
    states = {}
    for logical_id, resource in (assembly.template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource.get("Properties") or {}
        where = f"{logical_id}.Dimensions"
        try:
            states[logical_id] = evaluate_alarm(
                logical_id,
                props,
                lambda ns, name, dims: points_of(emf, ns, name, dims),
                functools.partial(resolver.resolve, where=where),
                (min(stamps), max(stamps)),
            )
        except (MetricMathError, KeyError, ValueError) as exc:
            states[logical_id] = AlarmState(logical_id, "INSUFFICIENT_DATA", f"not evaluated locally: {exc}", None)
    return states


def build(cdk_out: Path, stack_name: str, log_file: Path, aws_metrics_file: Path | None = None) -> LocalDashboard:
    """The page for ``log_file`` (the Lambdas' output) and ``aws_metrics_file`` (the emulator's service metrics;
    default: ``aws-metrics.log`` beside the log; a missing one leaves the AWS widgets empty, each line saying so)."""
    assembly = CloudAssembly.load(cdk_out, stack_name)
    if not log_file.is_file():
        raise DashboardError(f"{log_file} not found: run the pipeline first (gcpipe local run)")
    aws_metrics_file = aws_metrics_file or log_file.with_name(AWS_METRICS_LOG)
    emf: list[EmfSeries] = []
    for path in (log_file, aws_metrics_file):
        if path.is_file():
            with path.open(encoding="utf-8", errors="replace") as lines:
                emf.extend(read_emf(lines))
    alarms = alarm_states(assembly, emf)
    widgets = widgets_of(dashboard_body(assembly), emf, alarms)
    if not aws_metrics_file.is_file():
        for line in (ln for w in widgets for ln in w.lines if (ln.namespace or "").startswith("AWS/")):
            line.note = f"{line.namespace}: recorded by the emulator in {aws_metrics_file.name}, not found"
    page = render_html(
        stack_name,
        widgets,
        source=str(cdk_out / f"{stack_name}.template.json"),
        log_file=f"{log_file} and {aws_metrics_file}",
    )
    return LocalDashboard(stack_name, widgets, alarms, page)


__all__ = [
    "DashboardError",
    "LocalDashboard",
    "alarm_states",
    "build",
    "dashboard_body",
    "local_resolver",
    "points_of",
    "read_emf",
    "statistic",
    "widgets_of",
]
