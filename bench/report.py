#!/usr/bin/env python3
"""Turn the figures of one `bench/all.sh` run into one Markdown table.

Reads the tab-separated figures file (`name value unit description` a line, as written by
`examples/support/figures.rs`, bench/floor.sh and bench/inject.sh; the last line of a name
wins) and prints: the targets of issue 16, each with its figure, the ratio to the SQL floor
measured in the same run where one applies, and whether it is met; the other figures (with
their ratio to the floor where one applies); the scale figures; and the SQL floor itself.

Usage: bench/report.py [FIGURES.tsv]   (default: $BENCH_FIGURES). Python 3.11, stdlib only.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """`value op bound`, or `value op bound × figure(of)` when `of` is set."""

    op: str  # ">=" or "<="
    bound: float
    unit: str
    of: str | None = None
    note: str = ""


# The targets of issue 16, keyed by figure name, in the order the table shows them.
TARGETS: dict[str, Target] = {
    "jobs.drain": Target(">=", 0.35, "jobs/s", "floor.claim_complete"),
    "jobs.pickup_p95": Target("<=", 5, "ms"),
    "jobs.busy_pickup_p95": Target("<=", 5, "ms", note="while a 5,000 jobs/s drain runs"),
    "jobs.post": Target(">=", 4000, "req/s"),
    "quotas.charged": Target(">=", 0.8, "req/s", "quotas.uncharged"),
    # notify.* deliveries/s: see target_for; the fan-out is judged on the whole of it.
    "notify.fanout_all_s": Target("<=", 1, "s", note="publish and every delivery"),
    "injector.rows_per_s": Target(">=", 150000, "rows/s"),
    "build.clean_release_s": Target("<=", 720, "s", note="12 min"),
}
NOTIFY_DELIVERIES = Target(">=", 3000, "deliveries/s")

# Figures compared with the SQL floor: figure -> floor figure it is divided by.
FLOOR_OF: dict[str, str] = {
    "jobs.drain": "floor.claim_complete",
    "jobs.post": "floor.insert_commits_32",
    "jobs.bulk_enqueue": "floor.bulk_insert",
    "quotas.charged": "floor.insert_commits_32",
    "quotas.uncharged": "floor.insert_commits_32",
    "injector.rows_per_s": "floor.copy_insert",
}

# Shown (as "not measured") when absent, so a missing benchmark is visible.
EXPECTED = [
    "jobs.drain",
    "jobs.pickup_p95",
    "jobs.busy_pickup_p95",
    "jobs.post",
    "quotas.charged",
    "notify.*",
    "notify.fanout_all_s",
    "injector.rows_per_s",
    "build.clean_release_s",
]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    description: str


def read_figures(path: str) -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as err:
        sys.exit(f"report.py: cannot read {path}: {err}")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t", 3)
        if len(parts) < 3:
            print(f"report.py: {path}:{number}: skipped, not name<TAB>value<TAB>unit", file=sys.stderr)
            continue
        name, value, unit = parts[0].strip(), parts[1].strip(), parts[2].strip()
        try:
            number_value = float(value)
        except ValueError:
            print(f"report.py: {path}:{number}: skipped, value {value!r}", file=sys.stderr)
            continue
        figures[name] = Figure(name, number_value, unit, parts[3].strip() if len(parts) > 3 else "")
    return figures


def is_notify_delivery_rate(figure: Figure) -> bool:
    return figure.name.startswith("notify.") and figure.unit.endswith("/s")


def target_for(figure: Figure) -> Target | None:
    if figure.name in TARGETS:
        return TARGETS[figure.name]
    if is_notify_delivery_rate(figure):
        return NOTIFY_DELIVERIES
    return None


def number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def show(figure: Figure) -> str:
    return f"{number(figure.value)} {figure.unit}".strip()


def bound_of(target: Target, figures: dict[str, Figure]) -> float | None:
    """The absolute bound, or None when the figure it is relative to is missing."""
    if target.of is None:
        return target.bound
    ref = figures.get(target.of)
    return None if ref is None else target.bound * ref.value


def target_text(target: Target, unit: str, figures: dict[str, Figure]) -> str:
    sign = "≥" if target.op == ">=" else "≤"
    if target.of is None:
        text = f"{sign} {target.bound:,g} {unit}".strip()
    else:
        bound = bound_of(target, figures)
        text = f"{sign} {target.bound:g} × {target.of}"
        text += f" (= {number(bound)} {unit})" if bound is not None else " (not measured)"
    return f"{text}, {target.note}" if target.note else text


def met(figure: Figure, target: Target, figures: dict[str, Figure]) -> str:
    bound = bound_of(target, figures)
    if bound is None or math.isnan(figure.value):
        return "?"
    ok = figure.value >= bound if target.op == ">=" else figure.value <= bound
    return "✓" if ok else "✗"


def floor_ratio(figure: Figure, figures: dict[str, Figure]) -> str:
    floor_name = FLOOR_OF.get(figure.name)
    if floor_name is None:
        return ""
    floor = figures.get(floor_name)
    if floor is None or floor.value == 0:
        return f"— ({floor_name} not measured)"
    return f"{figure.value / floor.value:.2f} × {floor_name} ({show(floor)})"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_FIGURES", "")
    if not path:
        sys.exit("usage: bench/report.py FIGURES.tsv (or set BENCH_FIGURES)")
    figures = read_figures(path)
    shown: set[str] = set()
    counts = {"✓": 0, "✗": 0, "?": 0}
    missing = 0

    print("| figure | what | value | target | ratio to the SQL floor | met |")
    print("|---|---|---|---|---|---|")
    for name in EXPECTED:
        if name == "notify.*":
            group = [f for f in figures.values() if is_notify_delivery_rate(f)]
            group.sort(key=lambda f: f.name)
            if not group:
                text = target_text(NOTIFY_DELIVERIES, NOTIFY_DELIVERIES.unit, figures)
                print(f"| notify.* | webhook deliveries | not measured | {text} | | — |")
                missing += 1
            for figure in group:
                row_with_target(figure, NOTIFY_DELIVERIES, figures, counts)
                shown.add(figure.name)
            continue
        target = TARGETS[name]
        figure = figures.get(name)
        if figure is None:
            print(f"| {name} | | not measured | {cell(target_text(target, target.unit, figures))} | | — |")
            missing += 1
            continue
        row_with_target(figure, target, figures, counts)
        shown.add(name)
        if name == "notify.fanout_all_s" and "notify.fanout_publish_s" in figures:
            publish = figures["notify.fanout_publish_s"]
            print(f"| {publish.name} | {cell(publish.description)} | {show(publish)} "
                  f"| (part of {name}) | | |")
            shown.add(publish.name)
    # Any other figure that has a target (e.g. one added to TARGETS later).
    for figure in sorted(figures.values(), key=lambda f: f.name):
        target = target_for(figure)
        if figure.name not in shown and target is not None:
            row_with_target(figure, target, figures, counts)
            shown.add(figure.name)
    print()
    notes = []
    if counts["?"]:
        notes.append(f"{counts['?']} not judged: a figure they depend on is missing")
    if missing:
        notes.append(f"{missing} not measured")
    print(f"Targets met: {counts['✓']} of {sum(counts.values())}"
          + (f" ({'; '.join(notes)})" if notes else "") + ".")

    others = [f for f in figures.values() if f.name not in shown
              and not f.name.startswith(("floor.", "scale."))]
    section("Other figures", sorted(others, key=lambda f: f.name), figures, ratio=True)
    section("Scale", sorted((f for f in figures.values() if f.name.startswith("scale.")),
                            key=lambda f: f.name), figures)
    section("SQL floor (plain SQL through pgbench, same run)",
            [f for f in figures.values() if f.name.startswith("floor.")], figures)


def row_with_target(figure: Figure, target: Target, figures: dict[str, Figure],
                    counts: dict[str, int]) -> None:
    verdict = met(figure, target, figures)
    counts[verdict] += 1
    print(f"| {figure.name} | {cell(figure.description)} | {show(figure)} "
          f"| {cell(target_text(target, figure.unit, figures))} "
          f"| {cell(floor_ratio(figure, figures))} | {verdict} |")


def section(title: str, rows: list[Figure], figures: dict[str, Figure], ratio: bool = False) -> None:
    if not rows:
        return
    print()
    print(f"**{title}**")
    print()
    if ratio:
        print("| figure | what | value | ratio to the SQL floor |")
        print("|---|---|---|---|")
        for figure in rows:
            print(f"| {figure.name} | {cell(figure.description)} | {show(figure)} "
                  f"| {cell(floor_ratio(figure, figures))} |")
    else:
        print("| figure | what | value |")
        print("|---|---|---|")
        for figure in rows:
            print(f"| {figure.name} | {cell(figure.description)} | {show(figure)} |")


if __name__ == "__main__":
    main()
