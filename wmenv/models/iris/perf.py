"""IRIS imagination speed: the KV cache against recomputing the context for every token.

Usage::

    python -m wmenv.models.iris.perf                       # minatar preset, N = 1, 16, 256, horizon 20
    python -m wmenv.models.iris.perf --preset tiny --sizes 1,64 --horizon 20 --json out.json
    python -m wmenv.models.iris.perf --preset atari100k --device cuda

A model of the preset's sizes (random weights: speed does not depend on training) imagines
``horizon`` steps for ``N`` members from a burned-in real-sized context, with
:class:`~wmenv.models.iris.imagination.IRISImagination` as the env faces use it (``copy_state=True``),
once with the KV cache and once recomputing each member's window for every token. Both produce the
same tokens (checked here too). Reported: imagined steps per second (``N * horizon / seconds``, the
resets excluded, window refreshes included) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict

from wmenv.config import make_preset
from wmenv.models.iris.config import IRISConfig
from wmenv.models.iris.imagination import IRISImagination
from wmenv.models.iris.model import IRIS

__all__ = ["imagination_speed", "compare", "main"]

#: frame spaces the benchmark builds a model for, by preset (MinAtar frames unless the preset is Atari's)
FRAMES = {"atari100k": (64, 64, 3), "paper": (64, 64, 3)}


def _model(preset: str, device: str) -> IRIS:
    shape = FRAMES.get(preset, (10, 10, 4))
    high = 255 if shape[-1] == 3 else 1
    torch.manual_seed(0)
    model = IRIS(make_preset(IRISConfig, preset), gym.spaces.Box(0, high, shape, np.uint8), gym.spaces.Discrete(3))
    return model.to(device).eval()


def _context(model: IRIS, n: int, steps: int, device: str) -> TensorDict:
    g = torch.Generator().manual_seed(1)
    space = model.observation_space
    frames = torch.randint(0, int(space.high.max()) + 1, (n, steps, *space.shape), generator=g, dtype=torch.uint8)
    actions = torch.randint(0, int(model.action_space.n), (n, steps), generator=g)
    keys = torch.arange(n)[:, None].expand(n, steps) + 1000
    return TensorDict({"observation": frames, "action": actions, "rng_key": keys}, batch_size=[n, steps]).to(device)


@torch.no_grad()
def imagination_speed(
    model: IRIS, num_envs: int, *, horizon: int = 20, use_cache: bool = True, repeats: int = 1,
    device: str = "cpu",
) -> tuple[float, torch.Tensor]:
    """Best imagined steps/s over ``repeats`` rollouts of ``horizon`` steps, and the last rollout's tokens."""
    wm = IRISImagination(model, use_cache=use_cache)
    context = _context(model, num_envs, wm.context_length, device)
    actions = torch.randint(0, int(model.action_space.n), (horizon, num_envs),
                            generator=torch.Generator().manual_seed(2)).to(device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    best, tokens = 0.0, torch.empty(0)
    for _ in range(repeats):
        state = wm.initial_state(context)["state"]
        sync()
        t0 = time.perf_counter()
        out = []
        for a in actions:
            state = wm.step(state, a)["state"]
            out.append(state["obs_tokens"][torch.arange(num_envs, device=device), state["steps"] - 1])
        sync()
        best = max(best, num_envs * horizon / (time.perf_counter() - t0))
        tokens = torch.stack(out)
    return best, tokens


def compare(
    preset: str = "minatar", sizes: Sequence[int] = (1, 16, 256), *, horizon: int = 20, repeats: int = 1,
    device: str = "cpu", progress: bool = True,
) -> dict[str, Any]:
    """Steps/s with and without the KV cache for each ``N`` in ``sizes``; ``{"rows": [...], ...}``."""
    model = _model(preset, device)
    cfg = model.config
    rows = []
    for n in sizes:
        cached, tok_c = imagination_speed(model, n, horizon=horizon, use_cache=True, repeats=repeats, device=device)
        plain, tok_p = imagination_speed(model, n, horizon=horizon, use_cache=False, repeats=repeats, device=device)
        row = {"N": n, "cache_steps_per_s": cached, "recompute_steps_per_s": plain, "ratio": cached / plain,
               "same_tokens": bool(torch.equal(tok_c, tok_p))}
        rows.append(row)
        if progress:
            print(f"N={n}: cache {cached:.1f} steps/s, recompute {plain:.1f} steps/s, ratio {row['ratio']:.2f}",
                  file=sys.stderr, flush=True)
    return {
        "preset": preset, "device": device, "horizon": horizon, "threads": torch.get_num_threads(),
        "tokens_per_frame": cfg.tokenizer.tokens_per_frame, "context_steps": cfg.world_model.context_steps,
        "burn_in": cfg.world_model.burn_in, "layers": cfg.world_model.layers, "embed": cfg.world_model.embed,
        "frame": list(model.observation_space.shape), "rows": rows,
    }


def table(result: dict[str, Any]) -> str:
    """A Markdown table of :func:`compare`'s result."""
    lines = [
        f"IRIS imagination, preset {result['preset']} ({result['frame']} frames, K={result['tokens_per_frame']} tokens, "
        f"L={result['context_steps']} steps, {result['layers']} layers x {result['embed']}), horizon {result['horizon']}, "
        f"{result['device']}, {result['threads']} thread(s)", "",
        "| N | KV cache steps/s | recompute steps/s | ratio | same tokens |", "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['N']} | {r['cache_steps_per_s']:.1f} | {r['recompute_steps_per_s']:.1f} | "
                     f"{r['ratio']:.2f} | {r['same_tokens']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wmenv.models.iris.perf``: see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m wmenv.models.iris.perf", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="minatar")
    p.add_argument("--sizes", default="1,16,256", help="comma-separated batch sizes N")
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the result here")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes takes comma-separated integers")
    if not sizes or min(sizes) < 1 or args.horizon < 1 or args.repeats < 1:
        p.error("--sizes, --horizon and --repeats must be >= 1")
    torch.set_num_threads(max(1, args.threads))
    result = compare(args.preset, sizes, horizon=args.horizon, repeats=args.repeats, device=args.device)
    print(table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
