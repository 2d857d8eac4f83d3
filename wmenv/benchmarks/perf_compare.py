"""``wmenv perf --compare`` and ``--train``: our faces next to what a user would otherwise use.

``--compare torchrl``
    :class:`~wmenv.envs.WorldModelTorchRLEnv` next to TorchRL's own
    ``torchrl.envs.model_based.WorldModelEnv`` wrapping the same module (the perf model's
    ``step`` as the dynamics of a ``torchrl.modules.WorldModel``), for a hand-written step loop,
    ``env.rollout`` and a ``torchrl.collectors.Collector``. TorchRL's env lacks two things ours
    has, and is given them so that both do the same work: real start latents at every (partial)
    reset (:class:`StartStatesWorldModelEnv` draws them from the same start-state source through
    the world model's encoder; TorchRL's ``_reset`` raises without a caller-supplied latent, so it
    cannot autoreset at all) and an imagination horizon (TorchRL's ``StepCounter(max_steps=...)``
    transform).
``--compare naive``
    The simplest correct ``gymnasium.Env`` a user would write over the seed's callables
    (:class:`NaiveCallablesEnv`: ``reset_fn`` / ``transition_fn``, converting to NumPy) and a
    ``gymnasium.vector.SyncVectorEnv`` of them, next to our :class:`~wmenv.envs.WorldModelEnv`
    (over the same callables, and over the batched model) and :class:`~wmenv.envs.WorldModelVectorEnv`.
``--train``
    World-model updates/s of each registered family's presets through the generic
    :meth:`wmenv.train.trainer.Trainer.update` on a random replay batch, and Dreamer (V1 recipe)
    next to TorchRL's Dreamer modules of the same sizes (``RSSMPrior``, ``RSSMPosterior``,
    ``RSSMRollout``, ``ObsEncoder``, ``ObsDecoder``, ``DreamerModelLoss``).

Every figure is the best of interleaved rounds measured in one process (see
:func:`wmenv.benchmarks.perf.round_robin`), so the ratios compare like with like.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from torchrl.envs.model_based import WorldModelEnv as TorchRLWorldModelEnv

from wmenv.benchmarks.perf import round_robin

__all__ = [
    "HORIZON",
    "PerfCallablesModel",
    "perf_reset_fn",
    "perf_transition_fn",
    "callables_spaces",
    "NaiveCallablesEnv",
    "StartStatesWorldModelEnv",
    "make_torchrl_world_model",
    "make_torchrl_env",
    "measure_torchrl",
    "measure_naive",
    "format_torchrl_table",
    "format_naive_table",
    "default_train_models",
    "measure_training",
    "format_train_tables",
    "TORCHRL_NOTES",
    "NAIVE_NOTES",
    "machine_info",
    "count_params",
    "make_torchrl_dreamer",
    "torchrl_dreamer_batch",
]

#: Imagination horizon of every env compared (episodes of the perf model end only there).
HORIZON = 100

TORCHRL_NOTES = (
    "TorchRL's WorldModelEnv is given what it lacks: real start latents at every (partial) reset "
    "(StartStatesWorldModelEnv._reset draws them from the same start states through the WorldModel's "
    "encoder; TorchRL's own _reset raises without a caller-supplied latent, so it cannot autoreset), "
    f"and a horizon (TransformedEnv(..., StepCounter(max_steps={HORIZON})))",
    "TorchRL WorldModel over the same module: encoder = model.initial_state, dynamics = model.step "
    "(writes next observation, reward, terminated, done), reward_head = identity over the step's reward "
    "(WorldModel requires one); latent key 'observation' (the perf model's state is its observation); "
    "specs from our TorchRL face of the same batch size (reward spec kept (N, 1): TorchRL's expand of a "
    "batched reference env would make it (N,))",
    "step: a loop of env.step_and_maybe_reset as a collector runs it; rollout: env.rollout(steps, policy, "
    "break_when_any_done=False); collector: torchrl.collectors.Collector, one batch = N x steps/10 frames; "
    "the policy replays pre-drawn actions in all three",
    "both give the same trajectories under the same actions (tests/test_perf.py), except that TorchRL's "
    "StepCounter also flags truncated when a member terminates on its last step (ours: terminated only)",
)

NAIVE_NOTES = (
    "naive: a plain gymnasium.Env over reset_fn/transition_fn (batch of one, converting to NumPy), "
    "the same callables our WorldModelEnv(reset_fn=..., transition_fn=...) wraps; naive vec: "
    "gymnasium.vector.SyncVectorEnv of N naive envs; ours vector: WorldModelVectorEnv on the batched model",
    "ours single (protocol): WorldModelEnv on the batched model (no callables); raw: model.step on a batch of N",
)


def machine_info() -> dict[str, Any]:
    """Cores and threads the figures were measured with."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
    }


# ----------------------------------------------------------------------------- callables


class PerfCallablesModel:
    """What the seed's callables receive as ``model``: a batched world model used one env at a time.

    Args:
        world_model: a batched :class:`wmenv.core.WorldModel` (here the perf model).
        start_states: its start-state source.
        seed: seed of this env's own generator (start-state draws and transition noise).
    """

    def __init__(self, world_model: Any, start_states: Any, seed: int = 0) -> None:
        self.world_model = world_model
        self.start_states = start_states
        self.device = next(world_model.parameters()).device
        self.generator = torch.Generator(self.device).manual_seed(seed)


@torch.no_grad()
def perf_reset_fn(model: PerfCallablesModel, seed: int | None = None, options: Any = None) -> dict[str, Any]:
    """``reset_fn`` of the callables API over a batched model: one start state, as a user writes it."""
    if seed is not None:
        model.generator.manual_seed(seed)
    context = model.start_states.sample(1, generator=model.generator).to(model.device)
    out = model.world_model.initial_state(context, generator=model.generator)
    return {"state": out["state"], "observation": out["observation"][0]}


@torch.no_grad()
def perf_transition_fn(model: PerfCallablesModel, state: TensorDictBase, action: Any) -> dict[str, Any]:
    """``transition_fn`` of the callables API over a batched model: one step of a batch of one."""
    out = model.world_model.step(state, torch.as_tensor([action], device=model.device), generator=model.generator)
    return {
        "state": out["state"],
        "observation": out["observation"][0],
        "reward": out["reward"][0],
        "terminated": out["terminated"][0],
    }


def callables_spaces(world_model: Any) -> tuple[gym.Space, gym.Space]:
    """Gymnasium observation and action spaces of a batched model, for the callables API."""
    from wmenv.core.specs import spec_to_space

    return spec_to_space(world_model.observation_spec), spec_to_space(world_model.action_spec)


class NaiveCallablesEnv(gym.Env):
    """The simplest correct single ``gymnasium.Env`` over ``reset_fn`` / ``transition_fn``.

    What a user writes by hand: call the callables, convert what comes back to NumPy and Python
    scalars, count steps for the horizon. No checks, no batching.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        model: Any,
        observation_space: gym.Space,
        action_space: gym.Space,
        reset_fn: Callable[..., Mapping[str, Any]],
        transition_fn: Callable[..., Mapping[str, Any]],
        max_episode_steps: int | None = None,
    ) -> None:
        self.model = model
        self.observation_space = observation_space
        self.action_space = action_space
        self.reset_fn = reset_fn
        self.transition_fn = transition_fn
        self.max_episode_steps = max_episode_steps
        self._state: Any = None
        self._t = 0

    def _obs(self, obs: Any) -> np.ndarray:
        if isinstance(obs, torch.Tensor):
            obs = obs.detach().cpu().numpy()
        return np.asarray(obs, dtype=self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        out = self.reset_fn(self.model, seed=seed, options=options)
        self._state, self._t = out["state"], 0
        return self._obs(out["observation"]), dict(out.get("info") or {})

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        out = self.transition_fn(self.model, self._state, action)
        self._state = out["state"]
        self._t += 1
        terminated = bool(out["terminated"])
        truncated = bool(out.get("truncated", False)) or (
            self.max_episode_steps is not None and self._t >= self.max_episode_steps
        )
        return self._obs(out["observation"]), float(out["reward"]), terminated, truncated and not terminated, dict(
            out.get("info") or {}
        )


# ----------------------------------------------------------------------------- TorchRL


class _Encode(torch.nn.Module):
    """Encoder of the TorchRL ``WorldModel``: real context -> first latent (``model.initial_state``)."""

    def __init__(self, model: Any, generator: torch.Generator) -> None:
        super().__init__()
        self.model = model
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = TensorDict({"x": x}, batch_size=x.shape[:1])
        return self.model.initial_state(ctx, generator=self.generator)["observation"]


class _Step(torch.nn.Module):
    """Dynamics of the TorchRL ``WorldModel``: the same ``model.step`` our core calls."""

    def __init__(self, model: Any, generator: torch.Generator) -> None:
        super().__init__()
        self.model = model
        self.generator = generator

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = TensorDict({"x": observation}, batch_size=observation.shape[:1])
        out = self.model.step(state, action, generator=self.generator)
        terminated = out["terminated"].unsqueeze(-1)
        return out["observation"], out["reward"].unsqueeze(-1), terminated, terminated.clone()


def make_torchrl_world_model(model: Any, generator: torch.Generator) -> Any:
    """A ``torchrl.modules.WorldModel`` over the perf model (whose state is its observation ``x``)."""
    from torchrl.modules import WorldModel as TorchRLWorldModel

    encoder = TensorDictModule(_Encode(model, generator), in_keys=["x"], out_keys=["observation"])
    dynamics = TensorDictModule(
        _Step(model, generator), in_keys=["observation", "action"],
        out_keys=[("next", "observation"), ("next", "reward"), ("next", "terminated"), ("next", "done")],
    )
    reward_head = TensorDictModule(torch.nn.Identity(), in_keys=[("next", "reward")], out_keys=[("next", "reward")])
    return TorchRLWorldModel(encoder, dynamics, reward_head)


class StartStatesWorldModelEnv(TorchRLWorldModelEnv):
    """TorchRL's ``WorldModelEnv`` given real start latents at reset.

    ``StartStatesWorldModelEnv(world_model, base_env, start_states, generator, batch_size=[N])``:
    every reset (full, or partial through TorchRL's ``"_reset"`` mask) draws contexts for the
    members reset from ``start_states`` with ``generator`` and encodes them with the
    ``WorldModel``'s encoder -- the same draws, in the same order, as our core. A caller-supplied
    latent without a ``"_reset"`` mask is honoured as TorchRL's own ``_reset`` does. The latent
    lives under ``"observation"``.
    """

    def __init__(self, world_model: Any, base_env: Any, start_states: Any, generator: torch.Generator,
                 **kwargs: Any) -> None:
        super().__init__(world_model, base_env, latent_key="observation", **kwargs)
        if base_env.batch_size == self.batch_size:
            # TorchRL expands the reference env's specs to batch_size, written for an unbatched
            # reference (GymEnv): a batched one's (N, 1) reward spec would become (N,). Same batch:
            # its specs are taken as they are.
            self.reward_spec = base_env.reward_spec.clone()
        self._start_states = start_states
        self._generator = generator

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if mask is None and tensordict is not None and self.latent_key in tensordict.keys(True):
            return super()._reset(tensordict, **kwargs)  # TorchRL's own contract: the caller's latent
        n = self.batch_size[0]
        mask = None if mask is None else mask.reshape(n)
        k = n if mask is None else int(mask.sum())
        context = self._start_states.sample(k, generator=self._generator).to(self.device)
        latent = self._world_model.encode(context)[self.latent_key]
        if k < n:
            full = torch.zeros((n, *latent.shape[1:]), dtype=latent.dtype, device=latent.device)
            full[mask] = latent
            latent = full
        td = TensorDict({self.latent_key: latent}, batch_size=self.batch_size, device=self.device)
        return super()._reset(td, **kwargs)

    def _set_seed(self, seed: int | None) -> None:
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(seed)


def make_torchrl_env(model: Any, start_states: Any, n: int, *, horizon: int = HORIZON, seed: int = 0) -> Any:
    """TorchRL's ``WorldModelEnv`` over ``model`` with start states and a ``StepCounter`` horizon.

    Its specs are read from our :class:`~wmenv.envs.WorldModelTorchRLEnv` of the same model (the
    ``base_env`` TorchRL asks for; it is never stepped).
    """
    from torchrl.envs import StepCounter, TransformedEnv

    from wmenv.envs import WorldModelTorchRLEnv

    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    world_model = make_torchrl_world_model(model, generator)
    spec_env = WorldModelTorchRLEnv(model, start_states, n)
    env = StartStatesWorldModelEnv(world_model, spec_env, start_states, generator, batch_size=[n], device=device)
    return TransformedEnv(env, StepCounter(max_steps=horizon))


class _ReplayPolicy(torch.nn.Module):
    """Writes pre-drawn actions into the carried tensordict, one row per call (cycling)."""

    def __init__(self, actions: torch.Tensor) -> None:
        super().__init__()
        self.actions = actions
        self.i = 0

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        tensordict.set("action", self.actions[self.i % self.actions.shape[0]])
        self.i += 1
        return tensordict


def _torchrl_loops(
    name: str, env: Any, acts: torch.Tensor, n: int, chunk: int
) -> tuple[dict[str, Callable[[int], None]], Any]:
    from torchrl.collectors import Collector

    carried = {"td": env.reset()}

    def step(k: int) -> None:
        td = carried["td"]
        for i in range(k):
            td.set("action", acts[i])
            _, td = env.step_and_maybe_reset(td)
        carried["td"] = td

    policy = _ReplayPolicy(acts)

    def rollout(k: int) -> None:
        env.rollout(k, policy=policy, break_when_any_done=False)

    collector = Collector(env, _ReplayPolicy(acts), frames_per_batch=n * chunk, total_frames=-1,
                          auto_register_policy_transforms=False)
    batches = iter(collector)

    def collect(k: int) -> None:
        for _ in range(math.ceil(k / chunk)):
            next(batches)

    return {f"{name}_step": step, f"{name}_rollout": rollout, f"{name}_collector": collect}, collector


def _raw_loop(model: Any, start_states: Any, n: int, acts: torch.Tensor) -> Callable[[int], None]:
    device = acts.device
    g = torch.Generator(device).manual_seed(0)
    ctx = start_states.sample(n, generator=torch.Generator().manual_seed(0)).to(device)
    state0 = model.initial_state(ctx, generator=g)["state"]

    def raw(k: int) -> None:
        state = state0
        for i in range(k):
            state = model.step(state, acts[i], generator=g)["state"]

    return raw


def _ratios(out: dict[str, float], pairs: Mapping[str, tuple[str, str]]) -> dict[str, float]:
    for name, (ours, theirs) in pairs.items():
        if ours in out and theirs in out:
            out[name] = out[ours] / out[theirs]
    for name in [k for k in out if not k.endswith("_ratio") and k != "raw"]:
        out[f"{name}_vs_raw"] = out[name] / out["raw"]
    return out


def measure_torchrl(n: int, steps: int, model: Any, start_states: Any, repeats: int = 9) -> dict[str, float]:
    """Imagined steps/s of our TorchRL face and of TorchRL's ``WorldModelEnv`` (step loop, rollout,
    collector) at batch size ``n``, the raw model step, and the ratios ours / TorchRL's
    (``step_ratio``, ``rollout_ratio``, ``collector_ratio``) and each to raw (``*_vs_raw``)."""
    from wmenv.envs import WorldModelTorchRLEnv

    device = next(model.parameters()).device
    with torch.no_grad():
        acts = torch.randint(0, 2, (steps + 8, n), generator=torch.Generator().manual_seed(0)).to(device)
        chunk = max(1, steps // 10)
        loops: dict[str, Callable[[int], None]] = {"raw": _raw_loop(model, start_states, n, acts)}
        ours = WorldModelTorchRLEnv(model, start_states, n, max_episode_steps=HORIZON, seed=0)
        ours_loops, ours_collector = _torchrl_loops("ours", ours, acts, n, chunk)
        theirs = make_torchrl_env(model, start_states, n, horizon=HORIZON, seed=0)
        theirs_loops, theirs_collector = _torchrl_loops("torchrl", theirs, acts, n, chunk)
        loops.update(ours_loops)
        loops.update(theirs_loops)
        order = ["raw", "ours_step", "torchrl_step", "ours_rollout", "torchrl_rollout", "ours_collector",
                 "torchrl_collector"]
        try:
            sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
            out = round_robin({k: loops[k] for k in order}, steps, n, repeats, sync)
        finally:
            ours_collector.shutdown()
            theirs_collector.shutdown()
    return _ratios(out, {"step_ratio": ("ours_step", "torchrl_step"),
                         "rollout_ratio": ("ours_rollout", "torchrl_rollout"),
                         "collector_ratio": ("ours_collector", "torchrl_collector")})


def measure_naive(n: int, steps: int, model: Any, start_states: Any, repeats: int = 9) -> dict[str, float]:
    """Imagined steps/s of the naive callables env (and a ``SyncVectorEnv`` of ``n`` of them) next to
    our ``WorldModelEnv`` (over the same callables, and over the batched model; ``n == 1`` only) and
    ``WorldModelVectorEnv``, with the ratios ours / naive (``single_ratio``,
    ``single_protocol_ratio``, ``vector_ratio``) and each to raw (``*_vs_raw``)."""
    from wmenv.envs import WorldModelEnv, WorldModelVectorEnv

    device = next(model.parameters()).device
    obs_space, act_space = callables_spaces(model)
    with torch.no_grad():
        acts_np = torch.randint(0, 2, (steps + 8, n), generator=torch.Generator().manual_seed(0)).numpy()
        loops: dict[str, Callable[[int], None]] = {"raw": _raw_loop(model, start_states, n, torch.from_numpy(acts_np).to(device))}

        def naive_env(seed: int) -> NaiveCallablesEnv:
            return NaiveCallablesEnv(PerfCallablesModel(model, start_states, seed), obs_space, act_space,
                                     perf_reset_fn, perf_transition_fn, max_episode_steps=HORIZON)

        def single_loop(env: gym.Env) -> Callable[[int], None]:
            env.reset(seed=0)
            acts_py = [int(a) for a in acts_np[:, 0]]

            def loop(k: int) -> None:
                for i in range(k):
                    _, _, term, trunc, _ = env.step(acts_py[i])
                    if term or trunc:
                        env.reset()

            return loop

        def vector_loop(venv: Any) -> Callable[[int], None]:
            venv.reset(seed=0)

            def loop(k: int) -> None:
                for i in range(k):
                    venv.step(acts_np[i])

            return loop

        if n == 1:
            loops["naive_single"] = single_loop(naive_env(0))
            loops["ours_single"] = single_loop(WorldModelEnv(
                PerfCallablesModel(model, start_states, 0), observation_space=obs_space, action_space=act_space,
                reset_fn=perf_reset_fn, transition_fn=perf_transition_fn, max_episode_steps=HORIZON,
            ))
            loops["ours_single_protocol"] = single_loop(WorldModelEnv(model, start_states, max_episode_steps=HORIZON))
        naive_vec = gym.vector.SyncVectorEnv([lambda i=i: naive_env(i) for i in range(n)])
        loops["naive_vector"] = vector_loop(naive_vec)
        loops["ours_vector"] = vector_loop(WorldModelVectorEnv(model, start_states, n, max_episode_steps=HORIZON))
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        try:
            out = round_robin(loops, steps, n, repeats, sync)
        finally:
            naive_vec.close()
    return _ratios(out, {"single_ratio": ("ours_single", "naive_single"),
                         "single_protocol_ratio": ("ours_single_protocol", "naive_single"),
                         "vector_ratio": ("ours_vector", "naive_vector")})


def _cell(r: Mapping[str, float], key: str) -> str:
    return f"{r[key]:,.0f}" if key in r else "–"


def _ratio(r: Mapping[str, float], key: str) -> str:
    return f"**{r[key]:.2f}**" if key in r else "–"


def format_torchrl_table(results: Mapping[int, Mapping[str, float]]) -> str:
    """Markdown table: steps/s of ours and TorchRL's for each of step loop, rollout and collector,
    with the ratio ours / TorchRL's."""
    head = ["N", "raw"]
    for what in ("step", "rollout", "collector"):
        head += [f"{what}: ours", f"{what}: TorchRL", f"{what}: ours/TorchRL"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for n, r in results.items():
        cells = [str(n), _cell(r, "raw")]
        for what in ("step", "rollout", "collector"):
            cells += [_cell(r, f"ours_{what}"), _cell(r, f"torchrl_{what}"), _ratio(r, f"{what}_ratio")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_naive_table(results: Mapping[int, Mapping[str, float]]) -> str:
    """Markdown table: steps/s of the naive envs and ours, with the ratios ours / naive."""
    head = ["N", "raw", "naive single", "ours single (callables)", "ours/naive", "ours single (protocol)",
            "ours/naive", "naive SyncVectorEnv", "ours WorldModelVectorEnv", "ours/naive"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for n, r in results.items():
        cells = [str(n), _cell(r, "raw"), _cell(r, "naive_single"), _cell(r, "ours_single"), _ratio(r, "single_ratio"),
                 _cell(r, "ours_single_protocol"), _ratio(r, "single_protocol_ratio"), _cell(r, "naive_vector"),
                 _cell(r, "ours_vector"), _ratio(r, "vector_ratio")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- training


#: Spaces of the per-family training table: vector observations for every family that takes them;
#: pixel families get the first of :data:`TRAIN_IMAGES` they accept.
TRAIN_OBS_DIM = 16
TRAIN_ACTIONS = 4
TRAIN_IMAGES = ((64, 64, 3), (64, 64, 1))
#: Spaces of the Dreamer side-by-side (TorchRL's ObsEncoder / ObsDecoder are 64x64 pixel modules).
DREAMER_IMAGE = (64, 64, 3)
DREAMER_ACTION_DIM = 6


def default_train_models() -> list[str]:
    """One registered model per family, its world model where a family has a world-model-only spec
    (``<family>-wm``), else the spec named after the family, else the family's first name."""
    from wmenv.registry import get_model_spec, list_models

    by_family: dict[str, list[str]] = {}
    for name in list_models():
        by_family.setdefault(get_model_spec(name).family, []).append(name)
    chosen = []
    for family, names in sorted(by_family.items()):
        for pick in (f"{family}-wm", family, names[0]):
            if pick in names:
                chosen.append(pick)
                break
    return chosen


def _trainer(name: str, preset: str, obs_space: gym.Space, act_space: gym.Space, run_dir: str, b: int, t: int,
             device: str = "cpu") -> Any:
    from wmenv.registry import create_config, create_model
    from wmenv.train.trainer import Trainer, TrainerConfig

    config = create_config(name, preset)
    model = create_model(name, config=config, observation_space=obs_space, action_space=act_space)
    tcfg = TrainerConfig(batch_size=b, seq_len=t, tensorboard=False, progress=False, checkpoint_every=0,
                         device=device)
    return Trainer(model, None, tcfg, run_dir, model_name=name, model_config=config,
                   observation_space=obs_space, action_space=act_space)


def count_params(module: torch.nn.Module) -> int:
    """Trainable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def make_torchrl_dreamer(config: Any, action_dim: int) -> tuple[torch.nn.Module, Any]:
    """TorchRL's Dreamer (V1) world model and ``DreamerModelLoss`` at the sizes of our ``config``.

    Assembled as TorchRL's own ``make_dreamer`` helper does (RSSMRollout over RSSMPrior and
    RSSMPosterior, ObsEncoder / ObsDecoder on 64x64 pixels, an ELU MLP reward head inside a
    ``WorldModelWrapper``), with explicit sizes instead of lazy layers: ``state_dim`` =
    ``rssm.stoch``, ``rnn_hidden_dim`` = ``rssm.deter``, ``hidden_dim`` = ``rssm.hidden``, conv
    channels = ``cnn_depth``, reward MLP ``mlp_layers`` x ``mlp_units``.
    """
    from tensordict.nn import TensorDictSequential
    from torch import nn
    from torchrl.data import Bounded
    from torchrl.modules import MLP, WorldModelWrapper
    from torchrl.modules.models.model_based import (
        ObsDecoder,
        ObsEncoder,
        RSSMPosterior,
        RSSMPrior,
        RSSMRollout,
    )
    from torchrl.objectives import DreamerModelLoss

    r = config.resolved().rssm
    depth, units, layers = config.cnn_depth, config.mlp_units, config.mlp_layers
    encoder = ObsEncoder(channels=depth, in_channels=3)
    with torch.no_grad():
        embed_dim = encoder(torch.zeros(1, 3, *DREAMER_IMAGE[:2])).shape[-1]
    feat = r.stoch + r.deter
    decoder = ObsDecoder(channels=depth, latent_dim=feat)
    prior = RSSMPrior(Bounded(-1.0, 1.0, shape=(action_dim,)), hidden_dim=r.hidden, rnn_hidden_dim=r.deter,
                      state_dim=r.stoch, action_dim=action_dim)
    posterior = RSSMPosterior(hidden_dim=r.hidden, state_dim=r.stoch, rnn_hidden_dim=r.deter, obs_embed_dim=embed_dim)
    reward = MLP(in_features=feat, out_features=1, depth=layers, num_cells=units, activation_class=nn.ELU)
    rollout = RSSMRollout(
        TensorDictModule(prior, in_keys=["state", "belief", "action"],
                         out_keys=[("next", "prior_mean"), ("next", "prior_std"), "_", ("next", "belief")]),
        TensorDictModule(posterior, in_keys=[("next", "belief"), ("next", "encoded_latents")],
                         out_keys=[("next", "posterior_mean"), ("next", "posterior_std"), ("next", "state")]),
    )
    transition = TensorDictSequential(
        TensorDictModule(encoder, in_keys=[("next", "pixels")], out_keys=[("next", "encoded_latents")]),
        rollout,
        TensorDictModule(decoder, in_keys=[("next", "state"), ("next", "belief")], out_keys=[("next", "reco_pixels")]),
    )
    world_model = WorldModelWrapper(
        transition, TensorDictModule(reward, in_keys=[("next", "state"), ("next", "belief")], out_keys=[("next", "reward")])
    )
    return world_model, DreamerModelLoss(world_model)


def torchrl_dreamer_batch(batch: TensorDictBase, stoch: int, deter: int) -> TensorDictBase:
    """Our replay batch in the layout TorchRL's Dreamer loss reads (pixels float ``(B, T, 3, 64, 64)``
    in [-0.5, 0.5], zero initial ``state`` / ``belief``), as TorchRL's env transforms would store it."""
    b, t = batch.batch_size
    pixels = batch["observation"].permute(0, 1, 4, 2, 3).float() / 255.0 - 0.5
    return TensorDict(
        {
            "state": torch.zeros(b, t, stoch), "belief": torch.zeros(b, t, deter),
            "action": batch["action"].float(),
            "next": {"pixels": pixels, "reward": batch["reward"].unsqueeze(-1).float(),
                     "done": batch["terminated"].unsqueeze(-1)},
        },
        batch_size=[b, t],
    )


def measure_training(
    models: list[str] | None = None,
    presets: tuple[str, ...] = ("tiny", "small"),
    *,
    batch_size: int = 16,
    seq_len: int = 64,
    updates: int = 3,
    repeats: int = 3,
    torchrl_dreamer: bool = True,
    dreamer_batch_size: int | None = None,
    dreamer_seq_len: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """World-model updates/s of each model's presets and, for Dreamer, TorchRL's Dreamer beside ours.

    Every update is :meth:`wmenv.train.trainer.Trainer.update` on one random replay batch
    (:func:`wmenv.testing.random_replay_batch`, ``batch_size`` x ``seq_len``; vector observations of
    :data:`TRAIN_OBS_DIM`, or for families that only model pixels the first uint8 image shape of
    :data:`TRAIN_IMAGES` they accept; :data:`TRAIN_ACTIONS` discrete actions). Presets a model
    does not define are listed under ``"skipped"``. The Dreamer pair trains our
    ``dreamerv1-wm`` (V1 recipe: Gaussian RSSM, as TorchRL's modules) and TorchRL's V1 world model
    (:func:`make_torchrl_dreamer`, one Adam step of ``DreamerModelLoss`` with the same learning rate
    and grad clip) on 64x64x3 images and :data:`DREAMER_ACTION_DIM`-d continuous actions. All
    entries take turns within each of ``repeats`` rounds of ``updates`` updates; each figure is the
    best round.

    Returns:
        ``{"families": {"<model>/<preset>": {...}}, "dreamer_vs_torchrl": {"<preset>": {...}},
        "skipped": [...], ...}``.
    """
    from wmenv.core.errors import WMEnvError
    from wmenv.registry import create_config, get_model_spec
    from wmenv.testing import random_replay_batch

    models = list(models) if models else default_train_models()
    db, dt = dreamer_batch_size or batch_size, dreamer_seq_len or seq_len
    obs_space = gym.spaces.Box(-1.0, 1.0, (TRAIN_OBS_DIM,), np.float32)
    act_space = gym.spaces.Discrete(TRAIN_ACTIONS)
    images = [gym.spaces.Box(0, 255, shape, np.uint8) for shape in TRAIN_IMAGES]
    batches: dict[str, TensorDictBase] = {}
    loops: dict[str, Callable[[int], None]] = {}
    info: dict[str, dict[str, Any]] = {}
    pairs: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wmenv-perf-train-") as tmp:
        for name in models:
            spec = get_model_spec(name)
            for preset in presets:
                if preset not in spec.presets:
                    skipped.append(f"{name}/{preset} (no such preset; it has {', '.join(spec.presets)})")
                    continue
                candidates = [obs_space] if "vector" in spec.observations else images
                for space in candidates:
                    try:
                        trainer = _trainer(name, preset, space, act_space, os.path.join(tmp, f"{name}-{preset}"),
                                           batch_size, seq_len, device)
                        break
                    except WMEnvError as err:  # this family does not model these observations
                        error = err
                else:
                    skipped.append(f"{name}/{preset} ({type(error).__name__}: {error})")
                    continue
                what = (f"{space.shape[0]}-d vector" if len(space.shape) == 1
                        else "x".join(map(str, space.shape)) + " uint8")
                if what not in batches:
                    batches[what] = random_replay_batch(space, act_space, b=batch_size, t=seq_len, seed=0)
                key = f"{name}/{preset}"
                loops[key] = _update_loop(trainer, batches[what])
                info[key] = {"params": count_params(trainer.model), "family": spec.family, "observation": what}
        if torchrl_dreamer:
            img_space = gym.spaces.Box(0, 255, DREAMER_IMAGE, np.uint8)
            cont_space = gym.spaces.Box(-1.0, 1.0, (DREAMER_ACTION_DIM,), np.float32)
            img_batch = random_replay_batch(img_space, cont_space, b=db, t=dt, seed=0)
            for preset in presets:
                config = create_config("dreamerv1-wm", preset)
                trainer = _trainer("dreamerv1-wm", preset, img_space, cont_space,
                                   os.path.join(tmp, f"dreamerv1-image-{preset}"), db, dt, device)
                wm, loss = make_torchrl_dreamer(config, DREAMER_ACTION_DIM)
                wm, loss = wm.to(device), loss.to(device)
                r = config.resolved()
                loops[f"ours-dreamerv1/{preset}"] = _update_loop(trainer, img_batch)
                loops[f"torchrl-dreamer/{preset}"] = _torchrl_update_loop(
                    wm, loss, torchrl_dreamer_batch(img_batch, r.rssm.stoch, r.rssm.deter).to(device),
                    lr=r.optim.model_lr, eps=r.optim.eps, clip=r.optim.model_grad_clip,
                )
                pairs[preset] = {"ours_params": count_params(trainer.model), "torchrl_params": count_params(wm),
                                 "sizes": {"deter": r.rssm.deter, "stoch": r.rssm.stoch, "hidden": r.rssm.hidden,
                                           "mlp_units": r.mlp_units, "mlp_layers": r.mlp_layers,
                                           "cnn_depth": r.cnn_depth}}
        sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
        rates = round_robin(loops, updates, 1, repeats, sync, warmup=1)
    families = {key: {**info[key], "updates_per_s": rates[key]} for key in info}
    for preset, pair in pairs.items():
        ours, theirs = rates[f"ours-dreamerv1/{preset}"], rates[f"torchrl-dreamer/{preset}"]
        pair.update(ours_updates_per_s=ours, torchrl_updates_per_s=theirs, ratio=ours / theirs)
    return {
        "families": families,
        "dreamer_vs_torchrl": pairs,
        "skipped": skipped,
        "batch": {"batch_size": batch_size, "seq_len": seq_len, "observation_dim": TRAIN_OBS_DIM,
                  "actions": TRAIN_ACTIONS},
        "dreamer_batch": {"batch_size": db, "seq_len": dt, "image": list(DREAMER_IMAGE),
                          "action_dim": DREAMER_ACTION_DIM},
    }


def _update_loop(trainer: Any, batch: TensorDictBase) -> Callable[[int], None]:
    def loop(k: int) -> None:
        for _ in range(k):
            trainer.update(batch)

    return loop


def _torchrl_update_loop(world_model: torch.nn.Module, loss: Any, batch: TensorDictBase, *, lr: float, eps: float,
                         clip: float | None) -> Callable[[int], None]:
    """One update as TorchRL's Dreamer recipe does it: loss, backward, clip, Adam step."""
    params = [p for p in world_model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, eps=eps)

    def loop(k: int) -> None:
        world_model.train()
        for _ in range(k):
            losses, _ = loss(batch)
            total = sum(v.sum() for k_, v in losses.items() if k_.startswith("loss_"))
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))
            opt.step()

    return loop


def format_train_tables(result: Mapping[str, Any]) -> str:
    """Two Markdown tables: updates/s per model and preset; Dreamer V1 ours vs TorchRL's."""
    b = result["batch"]
    lines = [f"World-model updates/s (Trainer.update, batch {b['batch_size']}x{b['seq_len']}, "
             f"{b['actions']} discrete actions):", "",
             "| model | preset | observations | params | updates/s | ms/update |", "|---|---|---|---:|---:|---:|"]
    for key, r in result["families"].items():
        name, preset = key.rsplit("/", 1)
        lines.append(f"| {name} | {preset} | {r['observation']} | {r['params']:,} | {r['updates_per_s']:.2f} | "
                     f"{1000 / r['updates_per_s']:,.0f} |")
    if result.get("skipped"):
        lines += ["", "not measured: " + "; ".join(result["skipped"])]
    pairs = result["dreamer_vs_torchrl"]
    if pairs:
        d = result["dreamer_batch"]
        lines += ["", f"Dreamer (V1 recipe) vs TorchRL's Dreamer modules, same sizes (batch {d['batch_size']}x"
                  f"{d['seq_len']}, {d['image'][0]}x{d['image'][1]}x{d['image'][2]} images, "
                  f"{d['action_dim']}-d continuous actions):", "",
                  "| preset | sizes | ours params | TorchRL params | ours upd/s | TorchRL upd/s | ours/TorchRL |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for preset, p in pairs.items():
            s = p["sizes"]
            sizes = (f"deter {s['deter']}, stoch {s['stoch']}, hidden {s['hidden']}, MLP {s['mlp_layers']}x"
                     f"{s['mlp_units']}, CNN depth {s['cnn_depth']}")
            lines.append(f"| {preset} | {sizes} | {p['ours_params']:,} | {p['torchrl_params']:,} | "
                         f"{p['ours_updates_per_s']:.2f} | {p['torchrl_updates_per_s']:.2f} | **{p['ratio']:.2f}** |")
    return "\n".join(lines)
