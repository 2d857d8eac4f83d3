"""The speed / fidelity trade-off of the number of denoising steps of a trained diffusion world model.

For each ``sampling_steps`` value: imagined env steps per second of the batched imagination
(``num_envs`` members, one batched denoiser call per denoising step) and the one-step prediction
error on real transitions (``L`` real frames and the real action -> the next frame, compared with
the real next frame after rounding)::

    python -m wmenv.models.diamond.measure --run-dir runs/diamond-breakout --steps 1 3 10

Errors: ``cell_error`` is the fraction of frame cells (pixels x channels) whose rounded value is
wrong; ``mae`` the mean absolute error in units of the frame's range (``|pred - real| / high``);
``frame_exact`` the fraction of frames predicted without a single wrong cell; ``changed_cell_error``
the error on the cells whose value differs from the last context frame (what the dynamics must
predict: copying the last frame gets all of them wrong, with ``copy_cell_error`` overall).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from tensordict import TensorDictBase

from wmenv.core.protocol import ReplayStartStates
from wmenv.models.diamond.model import DiamondWorldModel

__all__ = ["one_step_transitions", "sampling_tradeoff", "format_table", "main"]


def one_step_transitions(rows: TensorDictBase, context: int, limit: int | None = None,
                         seed: int = 0) -> tuple[TensorDictBase, torch.Tensor, torch.Tensor]:
    """Real one-step transitions of replay rows: ``(contexts [N, L], actions (N,), next frames (N, H, W, C))``.

    A context is ``L`` rows of one episode; its target is the next row of the same episode.
    """
    starts = ReplayStartStates(rows, context_length=context + 1)
    ends = starts.valid_ends
    if limit is not None and ends.numel() > limit:
        ends = ends[torch.randperm(ends.numel(), generator=torch.Generator().manual_seed(seed))[:limit]]
    idx = ends[:, None] + torch.arange(-context, 1)[None]  # (N, L + 1)
    window = rows[idx.reshape(-1)].reshape(*idx.shape)
    return window[:, :-1], window[:, -1]["action"], window[:, -1]["observation"]


@torch.no_grad()
def sampling_tradeoff(
    model: torch.nn.Module,
    rows: TensorDictBase,
    steps: Sequence[int] = (1, 3, 10),
    *,
    num_envs: int = 64,
    speed_steps: int = 10,
    transitions: int = 512,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Imagined steps/s and one-step errors for each number of denoising steps.

    Args:
        model: a ``DiamondAgent`` or ``DiamondWorldModel``.
        rows: real replay rows ``[N]`` (``wmenv.train.replay.replay_as_tensordict``), ideally not trained on.
        steps: denoising steps to compare.
        num_envs: batch of the speed measurement.
        speed_steps: imagined steps timed per setting (after one warm-up step).
        transitions: real transitions of the error measurement.
        seed: keys of the imagination noise and the choice of transitions.
    """
    wm: DiamondWorldModel = getattr(model, "world_model", model)
    wm.eval()
    dev = next(wm.parameters()).device
    big_l = wm.context_frames
    ctx, actions, target = one_step_transitions(rows, big_l, transitions, seed)
    ctx, actions, target = ctx.to(dev), actions.to(dev), target.to(dev)
    high = float(wm.codec.high)
    speed_ctx = ReplayStartStates(rows, context_length=big_l).sample(
        num_envs, generator=torch.Generator().manual_seed(seed)).to(dev)
    out = []
    for n in steps:
        keys = torch.arange(ctx.batch_size[0], device=dev) + seed * 1_000_003
        state = wm.start(ctx["observation"], ctx["action"], ctx["is_first"], key=keys)
        pred = wm.imagine(state, actions, steps=n)["observation"]
        wrong = pred != target
        last = ctx["observation"][:, -1]
        changed = last != target  # the cells the dynamics move
        state = wm.start(speed_ctx["observation"], speed_ctx["action"], speed_ctx["is_first"],
                         key=torch.arange(num_envs, device=dev))
        act = torch.zeros(num_envs, *wm.action_space.shape, dtype=speed_ctx["action"].dtype, device=dev)
        state = wm.imagine(state, act, steps=n)["state"]  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        for _ in range(speed_steps):
            state = wm.imagine(state, act, steps=n)["state"]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t0
        out.append({
            "sampling_steps": int(n),
            "steps_per_s": num_envs * speed_steps / seconds,
            "cell_error": wrong.float().mean().item(),
            "mae": ((pred.float() - target.float()).abs() / high).mean().item(),
            "frame_exact": (~wrong.flatten(1).any(1)).float().mean().item(),
            "changed_cell_error": wrong[changed].float().mean().item() if changed.any() else float("nan"),
            "copy_cell_error": changed.float().mean().item(),
            "transitions": int(ctx.batch_size[0]),
            "num_envs": num_envs,
        })
    return out


def format_table(results: Sequence[dict[str, Any]], title: str = "") -> str:
    """A Markdown table of :func:`sampling_tradeoff` results."""
    lines = [title] if title else []
    lines += ["| sampling steps | imagined steps/s | cell error | error on changed cells | MAE | exact frames |",
              "|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['sampling_steps']} | {r['steps_per_s']:.0f} | {r['cell_error']:.4f} | "
                     f"{r['changed_cell_error']:.3f} | {r['mae']:.4f} | {r['frame_exact']:.3f} |")
    if results:
        lines.append(f"\n(copying the last real frame: cell error {results[0]['copy_cell_error']:.4f}, error on "
                     f"changed cells 1.000; {results[0]['transitions']} transitions, {results[0]['num_envs']} envs)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wmenv.models.diamond.measure``: see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m wmenv.models.diamond.measure", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 3, 10])
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--transitions", type=int, default=512)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    import wmenv
    from wmenv.train.replay import replay_as_tensordict

    run = wmenv.open_run(args.run_dir, device=args.device)
    rows = replay_as_tensordict(run.replay()).clone()
    results = sampling_tradeoff(run.model(), rows, args.steps, num_envs=args.num_envs, transitions=args.transitions)
    print(format_table(results, f"{run.info.model} on {run.info.env_id} ({args.device}, {args.num_envs} envs)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
