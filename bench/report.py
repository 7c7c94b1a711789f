"""Rows of the summary table: each figure beside its baseline, their ratio and the target."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Row", "Section", "format_table", "median", "paired_ratio", "ratio"]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


def paired_ratio(values: Sequence[float], baselines: Sequence[float]) -> float:
    """The median over rounds of callgate's figure divided by the baseline's in that round."""
    return median(ratio(v, b) for v, b in zip(values, baselines, strict=True))


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report. ``met`` is None for figures shown for context, with no target."""

    what: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""
    paired_ratio: float | None = None
    """The median of the per-round ratios, when the rounds were paired: steadier than the
    ratio of the two medians when the machine's speed drifts during the run."""

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        return None if self.baseline is None else ratio(self.value, self.baseline)


def _number(value: float, unit: str) -> str:
    if unit == "calls":
        return f"{value:.0f} {unit}"
    if unit == "req/s":
        return f"{value:,.0f} {unit}"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}" if value < 10 else f"{value:.1f} {unit}"


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("MET" if met else "MISSED")


Section = tuple[str, Sequence[Row]]


def format_table(title: str, sections: Sequence[Section], footnotes: Sequence[str] = ()) -> str:
    """One table for every section's rows, columns aligned across sections."""
    header = ("figure", "callgate", "baseline", "", "ratio", "target", "result")
    cells: list[tuple[str, ...] | str] = [header]
    for name, rows in sections:
        cells.append(name)
        for row in rows:
            r = row.ratio
            cells.append(
                (
                    row.what,
                    _number(row.value, row.unit),
                    "" if row.baseline is None else _number(row.baseline, row.unit),
                    row.baseline_what,
                    "" if r is None else f"{r:.2f}x",
                    row.target,
                    _verdict(row.met),
                )
            )
    table = [c for c in cells if isinstance(c, tuple)]
    widths = [max(len(c[i]) for c in table) for i in range(len(header))]
    right = {1, 2, 4}

    def line(c: tuple[str, ...]) -> str:
        return "  ".join(
            s.rjust(widths[i]) if i in right else s.ljust(widths[i]) for i, s in enumerate(c)
        ).rstrip()

    out = [title, "", line(header), "  ".join("-" * w for w in widths)]
    for c in cells[1:]:
        out.append(f"[{c}]" if isinstance(c, str) else line(c))
    notes = [
        f"  {row.what.strip()}: {row.note}" for _, rows in sections for row in rows if row.note
    ]
    if notes:
        out += ["", "Notes:", *notes]
    if footnotes:
        out += ["", *footnotes]
    return "\n".join(out)
