"""Model fidelity: how well a trained world model predicts held-out real trajectories.

- :func:`open_loop_errors`: burn in on ``K`` real steps, predict ``H`` steps open loop from the
  recorded actions; observation MSE per horizon step (and PSNR for pixels), reward MAE, and
  termination precision / recall (threshold 0.5).
- :func:`imagination_gap`: one policy's mean return inside the world model vs in the real env.
- ``wmenv evaluate-model``: both, written as ``fidelity.json``, ``fidelity.csv``,
  ``mse_vs_horizon.png`` and side-by-side real/imagined videos (MP4 and GIF).

Held-out data are fresh real episodes (:func:`collect_heldout`, a seed other than training's),
in the replay row format of :mod:`wmenv.train.replay`: row ``t`` holds the observation at ``t`` and
the action that led to it, so step ``h`` of a window is predicted from the action of its row.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase

from wmenv.benchmarks.imagine import imagination_gap
from wmenv.core.errors import ConfigError, RunDirError, UnsupportedSpaceError

__all__ = [
    "OpenLoopErrors",
    "collect_heldout",
    "open_loop_rollout",
    "open_loop_errors",
    "psnr",
    "plot_open_loop",
    "imagination_gap",  # defined in wmenv.benchmarks.imagine (the model next to the real env)
    "evaluate_model",
]

FILES = {"json": "fidelity.json", "csv": "fidelity.csv", "png": "mse_vs_horizon.png"}


@dataclass
class OpenLoopErrors:
    """Open-loop prediction errors, one entry per horizon step ``h = 1 .. H``.

    Attributes:
        horizon: ``H``.
        context: burn-in steps ``K``.
        observation_kind: ``"image"`` (MSE on [0, 1] pixels) or ``"vector"`` (raw units).
        mse: observation MSE per step (NaN where no window reaches the step).
        psnr: PSNR in dB per step for images (peak 1.0), else ``None``.
        reward_mae: absolute reward error per step.
        counts: windows still inside their episode at each step.
        termination: ``precision``, ``recall``, ``threshold``, ``true_positives``, ``predicted``,
            ``actual`` over every valid (window, step).
        windows: windows evaluated.
        rollout: the raw rollout (:func:`open_loop_rollout`) when asked for, else ``None``.
    """

    horizon: int
    context: int
    observation_kind: str
    mse: list[float]
    psnr: list[float] | None
    reward_mae: list[float]
    counts: list[int]
    termination: dict[str, Any]
    windows: int
    rollout: dict[str, Any] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe data (NaN -> ``None``), without the rollout."""
        data = asdict(self)
        data.pop("rollout")
        return _json_safe(data)


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def psnr(pred: np.ndarray | torch.Tensor, real: np.ndarray | torch.Tensor, max_value: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per leading index: ``10 log10(max^2 / MSE)``.

    Args:
        pred: ``(B, ...)`` predictions.
        real: ``(B, ...)`` targets, same shape.
        max_value: peak value (1.0 for [0, 1] images, 255 for uint8).

    Returns:
        ``(B,)`` float64; ``inf`` where the images are identical.
    """
    p = np.asarray(pred, dtype=np.float64)
    r = np.asarray(real, dtype=np.float64)
    if p.shape != r.shape:
        raise ConfigError(f"psnr needs equal shapes, got {p.shape} and {r.shape}")
    mse = ((p - r) ** 2).reshape(p.shape[0], -1).mean(1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_value**2 / mse)


def collect_heldout(
    env_id: str,
    steps: int,
    *,
    seed: int,
    policy: Callable[[Any], Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> TensorDictBase:
    """Fresh real episodes in the replay row format (a temporary replay, returned in memory).

    Args:
        env_id: real env id.
        steps: env transitions to collect.
        seed: reset seed; use one the model was not trained on.
        policy: ``policy(obs_batch) -> actions`` (``None``: uniform random actions).
        env_kwargs: extra ``make_env`` arguments.

    Returns:
        TensorDict ``[N]`` of rows (``observation``, ``action``, ``reward``, ``terminated``, ...).
    """
    from wmenv.train.collect import collect
    from wmenv.train.replay import replay_as_tensordict

    replay, _ = collect(env_id, steps, seed=seed, policy=policy, env_kwargs=env_kwargs, progress=False)
    return replay_as_tensordict(replay).clone()


def _windows(data: TensorDictBase, context: int, horizon: int, max_windows: int, gen: torch.Generator) -> tuple:
    """Gather indices ``(B, K + H)`` of windows whose context lies in one episode, and ``(B, H)`` validity."""
    if data.batch_dims == 2:  # ready-made [B, T] sequences: one window each, from t = 0
        b, t = data.batch_size
        if t < context + 1:
            raise ConfigError(f"sequences have T={t} steps; need at least context + 1 = {context + 1}")
        steps = torch.arange(context, context + horizon)
        inside = steps < t
        first = data["is_first"][:, context : context + horizon].bool()
        first = torch.cat([first, torch.ones(b, horizon - first.shape[1], dtype=torch.bool)], 1)
        valid = (~first).cumprod(1).bool() & inside
        return data, None, valid
    ep = data["episode"].reshape(-1)
    n = ep.shape[0]
    if n < context + 1:
        raise ConfigError(f"held-out data has {n} rows; need at least context + 1 = {context + 1}")
    starts = torch.arange(n - context)
    ok = torch.ones(starts.shape[0], dtype=torch.bool)
    for k in range(1, context + 1):  # the context and the first predicted row share an episode
        ok &= ep[starts + k] == ep[starts]
    starts = starts[ok]
    if starts.numel() == 0:
        raise ConfigError(f"no held-out episode is longer than the context ({context} steps); collect more "
                          "steps or lower --context")
    if starts.numel() > max_windows:
        starts = starts[torch.randperm(starts.numel(), generator=gen)[:max_windows]].sort().values
    idx = starts[:, None] + torch.arange(context + horizon)[None]
    inside = idx < n
    idx = idx.clamp(max=n - 1)
    same = (ep[idx] == ep[starts][:, None]) & inside
    first = data["is_first"].reshape(-1)[idx].bool()
    valid = (same & ~first)[:, context:].cumprod(1).bool()
    return data[idx.reshape(-1)].reshape(*idx.shape), idx, valid


@torch.no_grad()
def open_loop_rollout(
    world_model: Any,
    trajectories: Any,
    horizon: int,
    context: int,
    *,
    max_windows: int = 256,
    seed: int = 0,
    termination_threshold: float = 0.5,
) -> dict[str, Any]:
    """Burn in on ``context`` real steps, then predict ``horizon`` steps from the recorded actions.

    Args:
        world_model: a :class:`~wmenv.core.WorldModel` emitting observations in the real space
            (``observation_mode="decoded"``).
        trajectories: a replay buffer, rows ``[N]`` (with ``episode``) or sequences ``[B, T]``.
        horizon: open-loop steps ``H``.
        context: burn-in steps ``K``.
        max_windows: at most this many windows (drawn with ``seed``).
        seed: window draw and the model's generator.
        termination_threshold: predicted termination when ``1 - continue_prob`` exceeds it (models
            reporting ``info["continue_prob"]``), else the model's own ``terminated``.

    Returns:
        NumPy arrays: ``real``/``pred`` observations ``(B, H, ...)``, ``context_obs`` ``(B, K, ...)``,
        ``real_reward``/``pred_reward``/``real_term``/``pred_term``/``valid`` ``(B, H)``.
    """
    from torchrl.data import ReplayBuffer

    if horizon < 1 or context < 1:
        raise ConfigError(f"horizon and context must be >= 1, got horizon={horizon}, context={context}")
    if isinstance(trajectories, ReplayBuffer):
        from wmenv.train.replay import replay_as_tensordict

        trajectories = replay_as_tensordict(trajectories)
    gen = torch.Generator().manual_seed(seed)
    win, _, valid = _windows(trajectories, context, horizon, max_windows, gen)
    obs_shape = tuple(trajectories["observation"].shape[trajectories.batch_dims :])
    spec_shape = tuple(world_model.observation_spec.shape)
    if spec_shape != obs_shape:
        raise UnsupportedSpaceError(
            f"the world model emits observations of shape {spec_shape}, the real data has {obs_shape}; "
            "build it with observation_mode='decoded' to compare with real observations"
        )
    out = world_model.initial_state(win[:, :context], generator=gen)
    state, preds, rewards, terms = out["state"], [], [], []
    t_len = win.batch_size[1]
    for h in range(horizon):
        t = min(context + h, t_len - 1)
        step = world_model.step(state, win[:, t]["action"], generator=gen)
        state = step["state"]
        preds.append(step["observation"].cpu())
        rewards.append(step["reward"].float().cpu())
        info = step.get("info", None)
        if info is not None and "continue_prob" in info.keys():
            terms.append((1.0 - info["continue_prob"].float().cpu()) > termination_threshold)
        else:
            terms.append(step["terminated"].bool().cpu())
    steps = torch.arange(context, context + horizon).clamp(max=t_len - 1)
    real = win[:, steps]
    return {
        "real": real["observation"].numpy(), "pred": torch.stack(preds, 1).numpy(),
        "context_obs": win[:, :context]["observation"].numpy(),
        "real_reward": real["reward"].float().numpy(), "pred_reward": torch.stack(rewards, 1).numpy(),
        "real_term": real["terminated"].bool().numpy(), "pred_term": torch.stack(terms, 1).numpy(),
        "valid": valid.numpy(),
    }


def open_loop_errors(
    world_model: Any,
    trajectories: Any,
    horizon: int,
    context: int,
    *,
    max_windows: int = 256,
    seed: int = 0,
    termination_threshold: float = 0.5,
    keep_rollout: bool = False,
) -> OpenLoopErrors:
    """Open-loop prediction error vs horizon on held-out real trajectories.

    Args: see :func:`open_loop_rollout`; ``keep_rollout`` stores its arrays in the result.

    Returns:
        :class:`OpenLoopErrors` (``mse[h - 1]`` is the error ``h`` steps after the burn-in).
    """
    r = open_loop_rollout(world_model, trajectories, horizon, context, max_windows=max_windows, seed=seed,
                          termination_threshold=termination_threshold)
    real, pred, valid = r["real"], r["pred"], r["valid"]
    image = real.dtype == np.uint8 and real.ndim >= 4
    b, h = valid.shape
    flat_p, flat_r = (x.reshape(b * h, -1).astype(np.float64) / (255.0 if image else 1.0) for x in (pred, real))
    counts = valid.sum(0)

    def mean_h(x: np.ndarray) -> np.ndarray:  # (B, H) -> (H,) over valid windows
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, (np.where(valid, x, 0.0)).sum(0) / counts, np.nan)

    mse = mean_h(((flat_p - flat_r) ** 2).mean(1).reshape(b, h))
    reward_mae = mean_h(np.abs(r["pred_reward"] - r["real_reward"]))
    psnr_h = mean_h(np.minimum(psnr(flat_p, flat_r), 100.0).reshape(b, h)) if image else None
    pt, at = r["pred_term"] & valid, r["real_term"] & valid
    tp, npred, nact = int((pt & at).sum()), int(pt.sum()), int(at.sum())
    term = {"threshold": termination_threshold, "true_positives": tp, "predicted": npred, "actual": nact,
            "precision": tp / npred if npred else float("nan"), "recall": tp / nact if nact else float("nan")}
    return OpenLoopErrors(
        horizon=horizon, context=context, observation_kind="image" if image else "vector",
        mse=[float(x) for x in mse], psnr=None if psnr_h is None else [float(x) for x in psnr_h],
        reward_mae=[float(x) for x in reward_mae], counts=[int(c) for c in counts], termination=term,
        windows=int(b), rollout=r if keep_rollout else None,
    )


def plot_open_loop(errors: OpenLoopErrors, path: str | os.PathLike, title: str = "") -> Path:
    """Observation MSE (and PSNR for pixels) and reward MAE vs horizon, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    hs = np.arange(1, errors.horizon + 1)
    fig = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax, ax_r = fig.subplots(1, 2)
    ax.plot(hs, errors.mse, "o-", color="tab:blue", label="MSE")
    ax.set_xlabel("open-loop horizon (steps)")
    ax.set_ylabel("observation MSE" + (" ([0,1] pixels)" if errors.observation_kind == "image" else ""))
    ax.set_title(title or f"prediction error vs horizon (context {errors.context})", fontsize=9)
    if errors.psnr is not None:
        tw = ax.twinx()
        tw.plot(hs, errors.psnr, "s--", color="tab:green", label="PSNR")
        tw.set_ylabel("PSNR (dB)")
    ax_r.plot(hs, errors.reward_mae, "o-", color="tab:red")
    ax_r.set_xlabel("open-loop horizon (steps)")
    ax_r.set_ylabel("reward MAE")
    for a in (ax, ax_r):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def _video_pairs(rollout: dict[str, Any], count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(real, imagined) sequences of the ``count`` longest-valid windows, from the last context obs."""
    lengths = rollout["valid"].sum(1)
    pairs = []
    for b in np.argsort(-lengths, kind="stable")[:count]:
        n = int(lengths[b])
        start = rollout["context_obs"][b, -1:]
        real = np.concatenate([start, rollout["real"][b, :n]])
        pred = np.concatenate([start.astype(rollout["pred"].dtype), rollout["pred"][b, :n]])
        pairs.append((real, pred))
    return pairs


def _write_csv(errors: OpenLoopErrors, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["horizon", "mse", "psnr", "reward_mae", "count"])
        for h in range(errors.horizon):
            p = "" if errors.psnr is None else f"{errors.psnr[h]:.6g}"
            w.writerow([h + 1, f"{errors.mse[h]:.6g}", p, f"{errors.reward_mae[h]:.6g}", errors.counts[h]])


def evaluate_model(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    env_id: str | None = None,
    horizon: int = 15,
    context: int = 8,
    heldout_steps: int = 2000,
    seed: int | None = None,
    heldout_policy: str = "random",
    max_windows: int = 256,
    videos: int = 1,
    policy: Any = None,
    gap_episodes: int = 5,
    overwrite: bool = False,
    fps: float = 10,
) -> dict[str, Any]:
    """Everything ``wmenv evaluate-model`` does: held-out data, open-loop errors, files, videos, gap.

    Args:
        checkpoint: ``checkpoint.pt`` or run directory.
        out_dir: gets ``fidelity.json``/``.csv``, ``mse_vs_horizon.png``, ``rollout_<i>.mp4``/``.gif``.
        env_id: real env (default: the checkpoint's).
        horizon, context: open-loop steps ``H`` and burn-in steps ``K``.
        heldout_steps, seed: real env steps collected and their seed (default: training seed + 10000).
        heldout_policy: ``"random"`` or ``"model"`` (the checkpoint's greedy policy) for collection.
        max_windows, videos: windows evaluated at most; side-by-side videos written (0: none).
        policy, gap_episodes: SB3 ``.zip`` (or model / callable) for :func:`imagination_gap`, episodes.
        overwrite: replace fidelity files already in ``out_dir``.
        fps: video frame rate.

    Returns:
        The JSON-safe results dict written to ``fidelity.json`` plus ``"files"``.

    Raises:
        RunDirError: ``out_dir`` holds results and ``overwrite`` is false.
        ConfigError: bad options, no env id, ``heldout_policy="model"`` for a model without a policy.
        UnsupportedSpaceError: the env's spaces differ from the model's.
    """
    from wmenv.runs import open_run
    from wmenv.train.collect import make_env
    from wmenv.video import comparison_frames, write_video

    out = Path(out_dir)
    if (out / FILES["json"]).exists() and not overwrite:
        raise RunDirError(f"{out} already holds {FILES['json']}; choose another --out-dir or pass --overwrite")
    if heldout_policy not in ("random", "model"):
        raise ConfigError(f"heldout_policy must be 'random' or 'model', got {heldout_policy!r}")
    run = open_run(checkpoint)
    meta = {**run.meta, "path": str(run.checkpoint)}
    world_model = run.world_model("decoded")
    env_id = env_id or run.info.env_id
    if not env_id:
        raise ConfigError(f"run {run.path} does not record its env; pass --env ID")
    probe = make_env(env_id)
    try:
        run.check_spaces(probe, env_id)
    finally:
        probe.close()
    train_seed = int(run.info.seed)
    seed = train_seed + 10_000 if seed is None else int(seed)
    if heldout_policy == "model" and run.spec.policy is None:
        raise ConfigError(f"model {run.info.model!r} has no policy of its own; use --heldout-policy random")
    collector_policy = run.policy(seed=seed) if heldout_policy == "model" else None
    data = collect_heldout(env_id, heldout_steps, seed=seed, policy=collector_policy)
    errors = open_loop_errors(world_model, data, horizon, context, max_windows=max_windows, seed=seed,
                              keep_rollout=True)
    results: dict[str, Any] = {
        "format_version": 1, "checkpoint": meta["path"], "model_name": meta["model_name"],
        "family": meta.get("family"), "train_step": meta.get("step"), "env_id": env_id,
        "heldout": {"steps": heldout_steps, "seed": seed, "train_seed": train_seed, "policy": heldout_policy,
                    "rows": int(data.batch_size[0]), "episodes": int(data["episode"].unique().numel())},
        "open_loop": errors.to_dict(),
    }
    if policy is not None:
        gap = imagination_gap(meta["path"], policy, gap_episodes, env_id=env_id, seed=seed)
        results["imagination_gap"] = _json_safe(gap)
    out.mkdir(parents=True, exist_ok=True)
    files = {k: out / v for k, v in FILES.items()}
    files["json"].write_text(json.dumps(results, indent=2))
    _write_csv(errors, files["csv"])
    plot_open_loop(errors, files["png"], title=f"{meta['model_name']} on {env_id}: open-loop error")
    for i, (real, pred) in enumerate(_video_pairs(errors.rollout or {}, videos)):
        frames = comparison_frames(real, pred)
        for ext in ("mp4", "gif"):
            files[f"video_{i}_{ext}"] = write_video(frames, out / f"rollout_{i}.{ext}", fps=fps)
    return {**results, "files": {k: str(v) for k, v in files.items()}}
