"""CloudWatch's metric math and alarm evaluation, locally: enough for the stack's own dashboard and alarms.

Metric math: numbers, metric ids, ``+ - * /``, comparisons, ``IF(condition, a, b)`` and ``FILL(id, value)``,
evaluated per period. A period where an operand has no data point has no value (``None``) in the result,
unless ``FILL`` gives it one.

Alarms (``AWS::CloudWatch::Alarm``, a single metric or a ``Metrics`` array with one expression returning
data) are evaluated over the periods a local run covered, aligned to the clock as CloudWatch aligns them,
with ``EvaluationPeriods``, ``DatapointsToAlarm``, ``ComparisonOperator`` and ``TreatMissingData``. A run
shorter than ``DatapointsToAlarm`` periods cannot reach ALARM or OK honestly: that alarm is
``INSUFFICIENT_DATA``, with the reason.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

Value = float | None
Series = Mapping[int, Value]  # period start (epoch ms) -> value

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


class MetricMathError(ValueError):
    pass


def statistic(values: list[float], stat: str) -> float | None:
    """CloudWatch's statistic of a period's values (Sum, Average, Maximum, Minimum, SampleCount, pNN)."""
    if not values:
        return None
    s = stat.lower()
    if s == "sum":
        return sum(values)
    if s in ("average", "avg"):
        return sum(values) / len(values)
    if s in ("maximum", "max"):
        return max(values)
    if s in ("minimum", "min"):
        return min(values)
    if s == "samplecount":
        return float(len(values))
    if s.startswith("p"):
        try:
            q = float(s[1:]) / 100
        except ValueError:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
    return None


def periods(start_ms: float, end_ms: float, period_s: int) -> list[int]:
    """The clock-aligned periods (their start, epoch ms) from ``start_ms`` to ``end_ms``."""
    width = period_s * 1000
    first = int(start_ms // width) * width
    return list(range(first, int(end_ms) + 1, width)) or [first]


def per_period(points: list[tuple[float, float]], stat: str, period_s: int, covered: list[int]) -> dict[int, Value]:
    width = period_s * 1000
    grouped: dict[int, list[float]] = {p: [] for p in covered}
    for t, v in points:
        key = int(t // width) * width
        if key in grouped:
            grouped[key].append(v)
    return {p: statistic(vs, stat) for p, vs in grouped.items()}


# -- expressions -------------------------------------------------------------------------------------------

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b if b else math.nan,
}
_COMPARE: dict[type, Callable[[float, float], bool]] = {
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


def _parse(expression: str) -> ast.expr:
    try:
        return ast.parse(expression, mode="eval").body  # CloudWatch's operators are Python's: + - * / > >= == ...
    except SyntaxError as exc:
        raise MetricMathError(f"metric math {expression!r}: {exc.msg}") from None


def _value(node: ast.expr, env: Mapping[str, Value], expression: str) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise MetricMathError(f"metric math {expression!r}: unknown id {node.id!r}")
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _value(node.operand, env, expression)
        return None if v is None else -v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        a, b = _value(node.left, env, expression), _value(node.right, env, expression)
        return None if a is None or b is None else _BINARY[type(node.op)](a, b)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        a, b = _value(node.left, env, expression), _value(node.comparators[0], env, expression)
        return None if a is None or b is None else float(_COMPARE[type(node.ops[0])](a, b))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "FILL"
        and len(node.args) == 2
    ):
        v = _value(node.args[0], env, expression)
        return _value(node.args[1], env, expression) if v is None else v
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "IF"
        and len(node.args) in (2, 3)
    ):
        condition = _value(node.args[0], env, expression)
        if condition is None:
            return None
        if condition:
            return _value(node.args[1], env, expression)
        return _value(node.args[2], env, expression) if len(node.args) == 3 else None
    raise MetricMathError(f"metric math {expression!r}: {ast.unparse(node)!r} is not supported locally")


def evaluate(expression: str, inputs: Mapping[str, Series]) -> dict[int, Value]:
    """``expression`` per period, over the periods its inputs have."""
    tree = _parse(expression)
    keys = sorted({p for series in inputs.values() for p in series})
    return {p: _value(tree, {k: s.get(p) for k, s in inputs.items()}, expression) for p in keys}


# -- alarms ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmState:
    alarm: str  # the logical id (the dashboard's alarm widget lists these)
    state: str  # ALARM, OK or INSUFFICIENT_DATA
    reason: str
    last_value: float | None

    @property
    def evaluated(self) -> bool:
        return self.state != "INSUFFICIENT_DATA"


MetricPoints = Callable[[str, str, dict[str, str]], list[tuple[float, float]]]  # namespace, name, dims -> points


def evaluate_alarm(
    logical_id: str,
    props: Mapping[str, Any],
    points_of: MetricPoints,
    resolve: Callable[[Any], Any],
    covered_ms: tuple[float, float],
) -> AlarmState:
    """The state ``props`` (an alarm's resolved-on-demand Properties) reaches over the run's periods."""
    period, series = _alarm_series(props, points_of, resolve, covered_ms)
    n = int(props.get("EvaluationPeriods", 1))
    m = int(props.get("DatapointsToAlarm", n))
    threshold = float(props["Threshold"])
    compare = COMPARISONS[str(props["ComparisonOperator"])]
    treat = str(props.get("TreatMissingData", "missing"))
    window = sorted(series)[-n:]
    values = [series[p] for p in window]
    last = next((v for v in reversed(values) if v is not None), None)
    covered = f"{len(window)} period(s) of {period} s"
    if len(window) < m:
        return AlarmState(
            logical_id, "INSUFFICIENT_DATA", f"the run covered {covered}; the alarm needs {m} of {n}", last
        )
    breaching = good = 0
    for v in values:
        if v is None:
            if treat == "breaching":
                breaching += 1
            elif treat == "notBreaching":
                good += 1
        elif compare(v, threshold):
            breaching += 1
        else:
            good += 1
    if breaching >= m:
        state = "ALARM"
    elif breaching + good == 0:
        state = "INSUFFICIENT_DATA"
    else:
        state = "OK"
    shown = "no data" if last is None else f"last {last:g}"
    return AlarmState(
        logical_id,
        state,
        f"{breaching} of {len(window)} breaching ({shown}; threshold "
        f"{props['ComparisonOperator']} {threshold:g}; over {covered})",
        last,
    )


def _alarm_series(
    props: Mapping[str, Any], points_of: MetricPoints, resolve: Callable[[Any], Any], covered_ms: tuple[float, float]
) -> tuple[int, dict[int, Value]]:
    if "Metrics" not in props:
        period = int(props.get("Period", 60))
        covered = periods(*covered_ms, period)
        dims = {d["Name"]: str(resolve(d["Value"])) for d in props.get("Dimensions") or []}
        stat = str(props.get("Statistic") or props.get("ExtendedStatistic"))
        return period, per_period(
            points_of(str(props["Namespace"]), str(props["MetricName"]), dims), stat, period, covered
        )
    queries = list(props["Metrics"])
    stats = [q for q in queries if "MetricStat" in q]
    period = int(stats[0]["MetricStat"]["Period"]) if stats else int(queries[0].get("Period", 60))
    covered = periods(*covered_ms, period)
    inputs: dict[str, Series] = {}
    for q in stats:
        metric = q["MetricStat"]["Metric"]
        dims = {d["Name"]: str(resolve(d["Value"])) for d in metric.get("Dimensions") or []}
        inputs[q["Id"]] = per_period(
            points_of(str(metric["Namespace"]), str(metric["MetricName"]), dims),
            str(q["MetricStat"]["Stat"]),
            period,
            covered,
        )
    returned = [q for q in queries if q.get("ReturnData", True) is not False]
    if not returned:
        raise MetricMathError("an alarm's Metrics has no query with ReturnData")
    target = returned[0]
    if "Expression" in target:
        return period, evaluate(str(target["Expression"]), inputs)
    return period, dict(inputs[target["Id"]])


__all__ = [
    "AlarmState",
    "COMPARISONS",
    "MetricMathError",
    "evaluate",
    "evaluate_alarm",
    "per_period",
    "periods",
    "statistic",
]
