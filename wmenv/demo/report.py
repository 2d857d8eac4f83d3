"""The demo's report: ``report.md`` and its PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_report", "plot_returns", "plot_prediction_error"]


def plot_returns(summary: dict[str, Any], out: Path) -> Path:
    """Imagined vs real return per round, and the final real-env evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = summary["rounds"]
    x = [r["round"] for r in rounds]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(x, [r["imagined_return"] if r["imagined_return"] is not None else np.nan for r in rounds], "o-",
            label="imagined (policy training episodes)")
    ax.plot(x, [r["real_return"] if r["real_return"] is not None else np.nan for r in rounds], "s-",
            label="real (round's collection episodes)")
    ax.axhline(summary["real_env_return_mean"], color="k", ls="--",
               label=f"final real eval ({summary['eval_episodes']} ep.)")
    ax.set_xlabel("round")
    ax.set_ylabel("episode return")
    ax.set_title(f"{summary['env_id']}: imagined vs real return")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_prediction_error(errors: np.ndarray, out: Path, title: str) -> Path:
    """Open-loop prediction error (MSE) against the prediction horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(errors) + 1), errors, "o-")
    ax.set_xlabel("open-loop horizon (steps)")
    ax.set_ylabel("observation MSE")
    ax.set_yscale("log")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _prediction_errors(model: Any, replay: Any, config: Any, horizon: int = 15) -> np.ndarray | None:
    """Open-loop observation MSE per horizon step on the run's own replay (decoded observations)."""
    from wmenv.benchmarks.fidelity import open_loop_errors
    from wmenv.registry import get_model_spec

    world_model = get_model_spec(config.model).to_world_model(model, observation_mode="decoded", sample=False)
    try:
        result = open_loop_errors(world_model, replay, horizon=horizon, context=config.context_length)
    except (ValueError, RuntimeError):
        return None
    return np.asarray(result.mse, dtype=float)


def write_report(run_dir: Path, summary: dict[str, Any], model: Any, replay: Any, config: Any) -> Path:
    """Write plots and ``report.md`` into ``run_dir``."""
    from wmenv.train import plot_metrics

    figures: list[tuple[str, str]] = []
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        plot_metrics(metrics, run_dir / "world_model_losses.png")
        figures.append(("World-model losses", "world_model_losses.png"))
    plot_returns(summary, run_dir / "returns.png")
    figures.append(("Imagined vs real return", "returns.png"))
    errors = _prediction_errors(model, replay, config)
    if errors is not None:
        plot_prediction_error(errors, run_dir / "prediction_error.png",
                              f"{summary['env_id']}: open-loop error vs horizon")
        figures.append(("Prediction error vs horizon", "prediction_error.png"))
        summary["open_loop_mse"] = [float(e) for e in errors]
    lines = [
        f"# wmenv demo — {summary['env_id']}",
        "",
        f"**Real-env return: {summary['real_env_return_mean']:.1f} ± {summary['real_env_return_std']:.1f}** "
        f"over {summary['eval_episodes']} episodes (benchmark harness, `benchmark/`), policy trained only in "
        f"imagination; **{summary['real_env_steps_used']} real env steps** used for learning; "
        f"{summary['seconds']:.0f} s wall time; seed {summary['seed']}.",
        "",
        f"World model `{config.model}` (preset `{config.preset}`), policy SB3 {config.algo.upper()} on "
        f"`{config.observation_mode}` observations, {config.num_envs} imagined envs per forward pass, "
        f"horizon {config.horizon}. Chosen policy: round {summary['chosen_round']} (best real return on the "
        "collection episodes it played from their first step — a round's first finished episode usually "
        "began under the previous round's policy).",
        "",
        "| round | WM updates | imagined return | real return (collection) | own episodes | real steps | WM s "
        "| policy s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rounds"]:
        imagined = "–" if r["imagined_return"] is None else f"{r['imagined_return']:.1f}"
        real = "–" if r["real_return"] is None else f"{r['real_return']:.1f}"
        own = "–" if r.get("own_return") is None else f"{r['own_return']:.1f}"
        lines.append(f"| {r['round']} | {r['world_model_updates']} | {imagined} | {real} | {own} | {r['real_steps']} "
                     f"| {r['seconds_world_model']} | {r['seconds_policy']} |")
    if "open_loop_mse" in summary:
        mse = summary["open_loop_mse"]
        lines += ["", "Open-loop observation MSE at horizons 1 / 5 / 15: "
                  + " / ".join(f"{mse[h - 1]:.4g}" for h in (1, 5, 15) if h <= len(mse))]
    lines += [""] + [f"## {title}\n\n![{title}]({name})\n" for title, name in figures]
    lines += ["Files: `checkpoint.pt` (+ replay snapshot) loads with "
              "`wmenv.envs.make_imagination_env(run_dir, face=...)`; `policy.zip` is the SB3 policy; "
              "`tb/` holds TensorBoard logs; `benchmark/` the real-env evaluation (JSON/CSV/MD/LaTeX/PNG)."]
    out = run_dir / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out
