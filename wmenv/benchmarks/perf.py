"""Imagined steps per second of each face next to the raw batched model step.

Every figure is measured in the same process, on the same model, with pre-drawn actions, so
the ratios (face / raw) say how much the face costs on top of the model call. Targets (issue
#2): vector, TorchRL and SB3 faces ≥ 0.90 of raw at N=256; the single env ≥ 0.70 of raw at N=1.

``--compare torchrl`` puts our TorchRL face next to TorchRL's own ``WorldModelEnv`` on the same
module (step loop, rollout, collector); ``--compare naive`` puts ``WorldModelEnv`` and
``WorldModelVectorEnv`` next to a hand-written ``gymnasium.Env`` over the callables API and a
``SyncVectorEnv`` of them; ``--train`` measures world-model updates/s of every family's presets
and Dreamer next to TorchRL's Dreamer modules (see :mod:`wmenv.benchmarks.perf_compare`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["measure", "format_table", "perf_model", "round_robin"]

FACES = ("raw", "single", "vector", "torchrl", "sb3")


def perf_model(kind: str = "mlp", device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """The model measured: a fake world model the size of a small latent model.

    Its dynamics are a 3-layer, 512-wide MLP on a 64-d latent (about Dreamer's ``small`` preset
    per step); episodes end only at the imagination horizon (100 steps), so resets cost what
    they cost in imagination training.

    Args:
        kind: ``"mlp"`` (default) or ``"linear"`` (nearly free model: shows pure face overhead).
        device: where the model lives (its start states stay on the CPU, as replay data does).
    """
    from wmenv.testing import FakeWorldModel, fake_start_states

    hidden = 512 if kind == "mlp" else 0
    model = FakeWorldModel("vector", "discrete", latent_dim=64, hidden=hidden, terminate_at=None)
    start = fake_start_states(model, n=1024)
    return model.to(device), start


def round_robin(loops: dict[str, Callable[[int], None]], steps: int, n: int, repeats: int,
                sync: Callable[[], None] = lambda: None, warmup: int | None = None) -> dict[str, float]:
    """Best-of-``repeats`` steps/s of each loop, the loops taking turns within every round.

    Taking turns keeps the ratios honest on a machine whose speed drifts while it runs (shared
    cores, frequency scaling): every loop sees the same conditions, and the best round of each
    is the one least disturbed.
    """
    for loop in loops.values():  # warm-up
        loop(max(steps // 10, 3) if warmup is None else warmup)
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(repeats):
        for name, loop in loops.items():
            t0 = time.perf_counter()
            loop(steps)
            sync()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: steps * n / t for name, t in best.items()}


_round_robin = round_robin  # the earlier private name


def measure(n: int, steps: int, model: Any, start_states: Any, horizon: int = 100,
            repeats: int = 9) -> dict[str, float]:
    """Imagined steps/s of the raw model step and of each face at batch size ``n``, and each
    face's ratio to the raw step (``<face>_ratio``)."""
    with torch.no_grad():  # scoped: never leave autograd switched off for the caller
        return _measure(n, steps, model, start_states, horizon, repeats)


def _measure(n: int, steps: int, model: Any, start_states: Any, horizon: int, repeats: int) -> dict[str, float]:
    from wmenv.envs import WorldModelEnv, WorldModelSB3VecEnv, WorldModelTorchRLEnv, WorldModelVectorEnv

    device = next(model.parameters()).device
    g_cpu = torch.Generator().manual_seed(0)
    acts_np = torch.randint(0, 2, (steps + 8, n), generator=g_cpu).numpy()
    acts_t = torch.from_numpy(acts_np).to(device)
    g = torch.Generator(device).manual_seed(0)
    loops: dict[str, Callable[[int], None]] = {}

    ctx = start_states.sample(n, generator=g_cpu).to(device)
    state0 = model.initial_state(ctx, generator=g)["state"]

    def raw(k: int) -> None:
        state = state0
        for i in range(k):
            state = model.step(state, acts_t[i], generator=g)["state"]

    loops["raw"] = raw

    if n == 1:
        env = WorldModelEnv(model, start_states, max_episode_steps=horizon)
        env.reset(seed=0)
        acts_py = [int(a) for a in acts_np[:, 0]]

        def single(k: int) -> None:
            for i in range(k):
                _, _, term, trunc, _ = env.step(acts_py[i])
                if term or trunc:
                    env.reset()

        loops["single"] = single

    venv = WorldModelVectorEnv(model, start_states, n, max_episode_steps=horizon)
    venv.reset(seed=0)

    def vector(k: int) -> None:
        for i in range(k):
            venv.step(acts_np[i])

    loops["vector"] = vector

    tenv = WorldModelTorchRLEnv(model, start_states, n, max_episode_steps=horizon)
    carried = {"td": tenv.reset()}

    def torchrl(k: int) -> None:  # as a collector does: the policy writes "action" into the carried td
        td = carried["td"]
        for i in range(k):
            td.set("action", acts_t[i])
            _, td = tenv.step_and_maybe_reset(td)
        carried["td"] = td

    loops["torchrl"] = torchrl

    sb3 = WorldModelSB3VecEnv(model, start_states, n, max_episode_steps=horizon, seed=0)
    sb3.reset()

    def sb3_step(k: int) -> None:
        for i in range(k):
            sb3.step(acts_np[i])

    loops["sb3"] = sb3_step
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = round_robin(loops, steps, n, repeats, sync)
    for name in list(out):
        if name != "raw":
            out[f"{name}_ratio"] = out[name] / out["raw"]
    return out


def format_table(results: dict[int, dict[str, float]]) -> str:
    """Markdown table: steps/s per face and its ratio to the raw batched step measured alongside it."""
    lines = ["| N | raw steps/s | single | vector | torchrl | sb3 |", "|---:|---:|---:|---:|---:|---:|"]
    for n, r in results.items():
        cells = [f"{r[face]:,.0f} ({r[face + '_ratio']:.2f})" if face in r else "–" for face in FACES[1:]]
        lines.append(f"| {n} | {r['raw']:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
