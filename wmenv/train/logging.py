"""Scalar logging for training runs: a long-format CSV plus TensorBoard, and loss-curve plots.

``metrics.csv`` has the columns ``step,key,value`` (one row per scalar per logged step), so new
metrics can appear at any time without rewriting a header, and the file is append-only.
TensorBoard events go to ``run_dir/tb``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["MetricLogger", "read_metrics", "plot_metrics"]

_HEADER = ["step", "key", "value"]


class MetricLogger:
    """Appends scalars to ``run_dir/metrics.csv`` and (optionally) TensorBoard ``run_dir/tb``.

    Args:
        run_dir: the run directory.
        tensorboard: also write TensorBoard events.
        resume_step: when resuming from a checkpoint at this step, rows logged after it (by a run
            that was killed before its next checkpoint) are dropped from the CSV and TensorBoard
            purges its events after it, so the curves show each step once.
    """

    def __init__(
        self, run_dir: str | os.PathLike, *, tensorboard: bool = True, resume_step: int | None = None
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "metrics.csv"
        if resume_step is not None and self.csv_path.exists():
            kept = [r for r in read_metrics(self.csv_path) if r[0] <= resume_step]
            tmp = self.csv_path.with_name(".metrics.csv.tmp")
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(_HEADER)
                w.writerows(kept)
            os.replace(tmp, self.csv_path)
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._file = open(self.csv_path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(_HEADER)
            self._file.flush()
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge)

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Write one value per key at ``step`` (non-finite values are written as ``nan``/``inf``)."""
        for key, value in scalars.items():
            value = float(value)
            self._csv.writerow([int(step), key, repr(value)])
            if self._tb is not None:
                self._tb.add_scalar(key, value, int(step))
        self._file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close both outputs."""
        if not self._file.closed:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(csv_path: str | os.PathLike) -> list[tuple[int, str, float]]:
    """Rows ``(step, key, value)`` of a ``metrics.csv`` (malformed lines, e.g. a torn last line, skipped)."""
    rows: list[tuple[int, str, float]] = []
    with open(csv_path, newline="") as f:
        for row in csv.reader(f):
            if len(row) != 3 or row == _HEADER:
                continue
            try:
                rows.append((int(row[0]), row[1], float(row[2])))
            except ValueError:
                continue
    return rows


def plot_metrics(
    csv_path: str | os.PathLike, out_png: str | os.PathLike, keys: Iterable[str] | None = None
) -> Path:
    """Plot metric curves from ``metrics.csv`` into a PNG, one panel per key.

    Args:
        csv_path: a ``metrics.csv`` written by :class:`MetricLogger`.
        out_png: output image path.
        keys: keys to plot (default: every ``loss*`` key, else every key).

    Returns:
        ``out_png``.

    Raises:
        ValueError: none of the requested keys is in the file.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[int], list[float]]] = {}
    for step, key, value in read_metrics(csv_path):
        xs, ys = series.setdefault(key, ([], []))
        xs.append(step)
        ys.append(value)
    if keys is None:
        chosen = [k for k in series if k.startswith("loss")] or list(series)
    else:
        chosen = [k for k in keys if k in series]
        if not chosen:
            raise ValueError(f"none of {list(keys)} is in {csv_path}; available keys: {sorted(series)}")
    if not chosen:
        raise ValueError(f"{csv_path} holds no metrics yet")
    cols = min(3, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, chosen, strict=False):
        xs, ys = series[key]
        ax.plot(xs, ys, lw=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
