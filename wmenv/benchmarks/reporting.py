"""Writing benchmark results: JSON, CSV, Markdown, LaTeX tables and a per-seed plot.

Every text file is written atomically (temporary file + rename), so an interrupted run never
leaves a half-written result behind. Plots use Matplotlib's object-oriented API with the Agg canvas
and never touch the global backend.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "COMBINED_CSV",
    "COMBINED_JSON",
    "RESULT_FILES",
    "Table",
    "atomic_write_text",
    "latex_escape",
    "plot_per_seed_returns",
    "write_combined",
    "write_json",
    "write_report",
]

RESULT_FILES = {
    "json": "benchmark_results.json",
    "csv": "benchmark_results.csv",
    "md": "benchmark_results.md",
    "tex": "benchmark_results.tex",
    "png": "per_seed_returns.png",
}
COMBINED_JSON = "combined_benchmark_results.json"
COMBINED_CSV = "combined_benchmark_results.csv"

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escapes LaTeX special characters (``_`` becomes ``\\_``, ...)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Writes ``obj`` as indented JSON (NaN/inf are refused: they are not valid JSON)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n")


def fmt(value: Any, digits: int = 3) -> str:
    """Formats numbers compactly for tables; other values with ``str`` (``None`` -> ``""``)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


@dataclass
class Table:
    """A small table rendered to CSV, Markdown and LaTeX with the same columns."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        """Appends a row; the number of cells must match the columns."""
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.columns)} columns")
        self.rows.append(list(cells))

    def to_csv(self) -> str:
        """CSV text with a header row; numbers keep full precision."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([["" if c is None else c for c in row] for row in self.rows])
        return buf.getvalue()

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown table (numbers to 3 decimals)."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def to_latex(self, comment: str = "") -> str:
        """A plain ``tabular`` with ``\\hline`` rules (no booktabs) and escaped cells."""
        align = "l" + "r" * (len(self.columns) - 1)
        out = [f"% {latex_escape(comment)}"] if comment else []
        out += [f"\\begin{{tabular}}{{{align}}}", "\\hline"]
        out.append(" & ".join(latex_escape(c) for c in self.columns) + r" \\")
        out.append("\\hline")
        out += [" & ".join(latex_escape(fmt(c)) for c in row) + r" \\" for row in self.rows]
        out += ["\\hline", "\\end{tabular}"]
        return "\n".join(out) + "\n"


def seed_table(results: Mapping[str, Any]) -> Table:
    """One row per seed: seed, episodes, mean_return, std, min, max."""
    table = Table(["seed", "episodes", "mean_return", "std", "min", "max"])
    for run in results["per_seed"]:
        r = [float(x) for x in run["episode_returns"]]
        mu = sum(r) / len(r)
        std = math.sqrt(sum((x - mu) ** 2 for x in r) / (len(r) - 1)) if len(r) > 1 else 0.0
        table.add(run["seed"], len(r), mu, std, min(r), max(r))
    return table


def aggregate_table(agg: Mapping[str, Any]) -> Table:
    """Rows ``statistic, value, ci_low, ci_high`` for mean / median / IQM over seeds."""
    table = Table(["statistic", "value", "ci_low", "ci_high"])
    for key in ("mean", "median", "iqm"):
        lo, hi = agg.get(f"{key}_ci") or (None, None)
        table.add(key, agg[key], lo, hi)
    table.add("std", agg.get("std"), None, None)
    return table


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Writes the five result files of one agent on one env into ``out_dir``.

    Args:
        results: The dict built by ``run_benchmark`` (``protocol``, ``per_seed``, ``aggregate``).
        out_dir: Target directory (created if needed).

    Returns:
        ``{"json" | "csv" | "md" | "tex" | "png": path}``.
    """
    out = Path(out_dir)
    paths = {k: out / v for k, v in RESULT_FILES.items()}
    agent, env_id = results["agent"], results["protocol"]["env_id"]
    seeds, agg = seed_table(results), aggregate_table(results["aggregate"])
    title = f"{agent} on {env_id}"
    level = int(round(100 * results["aggregate"].get("ci_level", 0.95)))
    write_json(paths["json"], results)
    atomic_write_text(paths["csv"], seeds.to_csv())
    proto = results["protocol"]
    md = [f"# Benchmark: {title}", "", "## Per seed (real-env episode returns)", "", seeds.to_markdown()]
    md += [f"## Over seeds (per-seed means, {level}% stratified bootstrap CI)", "", agg.to_markdown()]
    md += ["## Protocol", "", *[f"- {k}: {v}" for k, v in proto.items()], ""]
    atomic_write_text(paths["md"], "\n".join(md))
    tex = seeds.to_latex(f"wmenv benchmark: {title}, per seed") + "\n"
    tex += agg.to_latex(f"over seeds, {level}% bootstrap CI")
    atomic_write_text(paths["tex"], tex)
    plot_per_seed_returns(results["per_seed"], paths["png"], title)
    return paths


def plot_per_seed_returns(per_seed: Iterable[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Box plot of episode returns per seed with each episode as a dot and the mean as a diamond."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = list(per_seed)
    fig = Figure(figsize=(max(4.0, 0.6 * len(runs) + 2.0), 3.5), tight_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    data = [[float(x) for x in r["episode_returns"]] for r in runs]
    pos = list(range(1, len(runs) + 1))
    ax.boxplot(data, positions=pos, widths=0.5, showfliers=False)
    for p, d in zip(pos, data):
        ax.scatter([p] * len(d), d, s=10, alpha=0.6, color="tab:blue")
        ax.scatter([p], [sum(d) / len(d)], marker="D", color="tab:red", zorder=3)
    ax.set_xticks(pos, [str(r["seed"]) for r in runs])
    ax.set_xlabel("seed")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


COMBINED_COLUMNS = [
    "agent",
    "status",
    "trained",
    "checkpoint",
    "seeds",
    "episodes",
    "mean",
    "mean_ci_low",
    "mean_ci_high",
    "median",
    "iqm",
    "iqm_ci_low",
    "iqm_ci_high",
    "std",
    "note",
]


def combined_table(combined: Mapping[str, Any]) -> Table:
    """One row per agent (evaluated, skipped or failed) of a multi-agent run."""
    table = Table(list(COMBINED_COLUMNS))
    for name, entry in combined["agents"].items():
        agg = entry.get("aggregate") or {}
        mean_ci = agg.get("mean_ci") or (None, None)
        iqm_ci = agg.get("iqm_ci") or (None, None)
        table.add(
            name,
            entry["status"],
            entry.get("trained"),
            entry.get("checkpoint"),
            len(combined["seeds"]),
            combined["episodes"],
            agg.get("mean"),
            *mean_ci,
            agg.get("median"),
            agg.get("iqm"),
            *iqm_ci,
            agg.get("std"),
            entry.get("note", ""),
        )
    return table


def write_combined(combined: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Writes ``combined_benchmark_results.json`` and ``.csv`` into ``out_dir``."""
    out = Path(out_dir)
    paths = {"json": out / COMBINED_JSON, "csv": out / COMBINED_CSV}
    write_json(paths["json"], combined)
    atomic_write_text(paths["csv"], combined_table(combined).to_csv())
    return paths
