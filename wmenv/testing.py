"""Tiny fake world models and a conformance check, shipped for users' own tests.

``FakeWorldModel`` follows the :class:`wmenv.core.WorldModel` protocol with a small latent
``x`` driven by fixed random weights, so every face can be exercised in milliseconds:

* observations: ``"vector"`` (``x`` itself), ``"image"`` (``H×W×3`` uint8 rendered from ``x``)
  or ``"dict"`` (``{"vector", "image"}``);
* actions: ``"discrete"`` (``n_actions``) or ``"continuous"`` (``Box(-1, 1, (action_dim,))``);
* reward: 1 when the action "agrees" with the sign of ``x[0]`` (a task a policy can learn);
* termination: when ``|x[1]|`` leaves ``terminate_at``.

``check_world_model_env(model, start_states)`` runs the checkers of Gymnasium, Stable-Baselines3
and TorchRL on all four faces plus determinism and autoreset checks, and raises
:class:`ConformanceError` naming the face and the check that failed.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite

from wmenv.core.protocol import StartStates, TensorDictStartStates

__all__ = [
    "FakeWorldModel", "fake_start_states", "check_world_model_env", "ConformanceError", "random_replay_batch",
    "train_on_batch",
]


class ConformanceError(AssertionError):
    """A face of a world model failed a conformance check."""


class FakeWorldModel(torch.nn.Module):
    """A deterministic-weight toy world model following the protocol.

    Args:
        observation: ``"vector"``, ``"image"`` or ``"dict"``.
        action: ``"discrete"`` or ``"continuous"``.
        latent_dim: size of the latent ``x`` (and of vector observations).
        n_actions: number of discrete actions.
        action_dim: size of continuous actions.
        image_size: side of square image observations.
        hidden: hidden width of the dynamics MLP (0 = linear dynamics).
        noise: std of Gaussian transition noise (drawn from the generator).
        terminate_at: ``|x[1]|`` beyond this ends an episode (``None``: never).
        seed: seed of the fixed weights.
    """

    def __init__(
        self,
        observation: Literal["vector", "image", "dict"] = "vector",
        action: Literal["discrete", "continuous"] = "discrete",
        *,
        latent_dim: int = 4,
        n_actions: int = 2,
        action_dim: int = 2,
        image_size: int = 16,
        hidden: int = 0,
        noise: float = 0.05,
        terminate_at: float | None = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if observation not in ("vector", "image", "dict"):
            raise ValueError(f"observation must be 'vector', 'image' or 'dict', got {observation!r}")
        if action not in ("discrete", "continuous"):
            raise ValueError(f"action must be 'discrete' or 'continuous', got {action!r}")
        g = torch.Generator().manual_seed(seed)
        self.observation_kind, self.action_kind = observation, action
        self.latent_dim, self.noise, self.terminate_at = latent_dim, noise, terminate_at
        self.image_size = image_size
        a_in = n_actions if action == "discrete" else action_dim
        self.n_actions = n_actions
        if hidden > 0:
            self.dynamics = torch.nn.Sequential(
                torch.nn.Linear(latent_dim + a_in, hidden), torch.nn.SiLU(),
                torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, latent_dim),
            )
            for p in self.dynamics.parameters():
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        else:
            self.dynamics = torch.nn.Linear(latent_dim + a_in, latent_dim)
            with torch.no_grad():
                self.dynamics.weight.copy_(torch.randn(latent_dim, latent_dim + a_in, generator=g) * 0.3)
                self.dynamics.bias.zero_()
        self.render_weight = torch.nn.Parameter(
            torch.randn(latent_dim, 3 * image_size * image_size, generator=g), requires_grad=False
        )
        if action == "discrete":
            self.action_spec = Categorical(n_actions, shape=(), dtype=torch.int64)
        else:
            self.action_spec = Bounded(-1.0, 1.0, shape=(action_dim,), dtype=torch.float32)
        vec = Bounded(-1.0, 1.0, shape=(latent_dim,), dtype=torch.float32)
        img = Bounded(0, 255, shape=(image_size, image_size, 3), dtype=torch.uint8)
        self.observation_spec = {"vector": vec, "image": img}.get(observation) or Composite(vector=vec, image=img)

    # ----------------------------------------------------------------- protocol
    def _observe(self, x: torch.Tensor) -> torch.Tensor | TensorDictBase:
        if self.observation_kind == "vector":
            return x
        img = torch.sigmoid(x @ self.render_weight).mul(255.0)
        img = img.reshape(x.shape[0], self.image_size, self.image_size, 3)
        if self.observation_kind == "image":
            return img
        return TensorDict({"vector": x, "image": img}, batch_size=[x.shape[0]])

    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        x = context["x"].to(torch.float32)
        return TensorDict({"state": {"x": x}, "observation": self._observe(x)}, batch_size=context.batch_size[:1])

    @torch.no_grad()
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        x = state["x"]
        if self.action_kind == "discrete":
            a = torch.nn.functional.one_hot(action.long(), self.n_actions).to(x.dtype)
            agree = (action == (x[:, 0] > 0).long()).to(torch.float32)
        else:
            a = action.to(x.dtype)
            agree = (torch.sign(a[:, 0]) == torch.sign(x[:, 0])).to(torch.float32)
        nxt = torch.tanh(self.dynamics(torch.cat([x, a], -1)))
        if self.noise > 0:
            nxt = (nxt + self.noise * torch.randn(nxt.shape, generator=generator, device=nxt.device)).clamp(-1, 1)
        if self.terminate_at is not None:
            terminated = nxt[:, 1].abs() > self.terminate_at
        else:
            terminated = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        return TensorDict(
            {"state": {"x": nxt}, "observation": self._observe(nxt), "reward": agree, "terminated": terminated},
            batch_size=x.shape[:1],
        )


def fake_start_states(model: FakeWorldModel, n: int = 256, seed: int = 0) -> StartStates:
    """Start states for a :class:`FakeWorldModel`: ``n`` latents drawn once from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, model.latent_dim, generator=g) * 1.2 - 0.6)
    return TensorDictStartStates(TensorDict({"x": x}, batch_size=[n]))


def _fail(face: str, check: str, err: BaseException | str) -> ConformanceError:
    return ConformanceError(f"[{face}] {check} failed: {err}")


def _obs_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


def check_world_model_env(
    model: Any,
    start_states: StartStates,
    *,
    max_episode_steps: int = 20,
    num_envs: int = 4,
    steps: int = 60,
    faces: tuple[str, ...] = ("gymnasium", "sb3", "vector", "torchrl", "sb3_vec"),
) -> dict[str, str]:
    """Check a world model through every face with the field's own checkers.

    Runs Gymnasium's ``check_env`` and SB3's ``check_env`` on :class:`WorldModelEnv`, vector-env
    conformance (spaces, both autoreset modes), TorchRL's ``check_env_specs`` plus a rollout,
    SB3 ``VecEnv`` conventions, and same-seed determinism.

    Args:
        model: a ``WorldModel``.
        start_states: its start-state source.
        max_episode_steps: imagination horizon used for the checks.
        num_envs: batch size of the vector faces.
        steps: random steps taken through each vector face.
        faces: subset of checks to run.

    Returns:
        ``{face: "ok"}`` for every face checked.

    Raises:
        ConformanceError: naming the face and the check.
    """
    from wmenv.envs import WorldModelEnv, WorldModelSB3VecEnv, WorldModelTorchRLEnv, WorldModelVectorEnv

    report: dict[str, str] = {}
    if "gymnasium" in faces:
        from gymnasium.utils.env_checker import check_env

        env = WorldModelEnv(model, start_states, max_episode_steps=max_episode_steps)
        try:
            check_env(env, skip_render_check=True)
        except Exception as err:  # noqa: BLE001 - re-raised with context
            raise _fail("gymnasium", "gymnasium.utils.env_checker.check_env", err) from err
        trajs = []
        for _ in range(2):
            e = WorldModelEnv(model, start_states, max_episode_steps=max_episode_steps)
            e.action_space.seed(3)
            obs, _ = e.reset(seed=7)
            traj = [obs]
            for _ in range(max_episode_steps):
                obs, r, term, trunc, _ = e.step(e.action_space.sample())
                traj.append((obs, r, term, trunc))
                if term or trunc:
                    break
            trajs.append(traj)
        if len(trajs[0]) != len(trajs[1]) or not all(
            _obs_equal(a[0] if isinstance(a, tuple) else a, b[0] if isinstance(b, tuple) else b)
            for a, b in zip(trajs[0], trajs[1])
        ):
            raise _fail("gymnasium", "determinism (same seed, same actions)", "trajectories differ")
        report["gymnasium"] = "ok"
    if "sb3" in faces:
        from stable_baselines3.common.env_checker import check_env as sb3_check_env

        env = WorldModelEnv(model, start_states, max_episode_steps=max_episode_steps)
        try:
            sb3_check_env(env, warn=False)
        except Exception as err:  # noqa: BLE001
            raise _fail("sb3", "stable_baselines3.common.env_checker.check_env", err) from err
        report["sb3"] = "ok"
    if "vector" in faces:
        for mode in ("next_step", "same_step"):
            venv = WorldModelVectorEnv(model, start_states, num_envs, max_episode_steps=max_episode_steps,
                                       autoreset_mode=mode)
            if venv.metadata["autoreset_mode"].name.lower() != mode:
                raise _fail("vector", "metadata['autoreset_mode']", venv.metadata["autoreset_mode"])
            obs, _ = venv.reset(seed=0)
            if obs not in venv.observation_space:
                raise _fail("vector", f"reset observation in observation_space ({mode})", "not contained")
            venv.action_space.seed(0)
            prev_done = np.zeros(num_envs, dtype=bool)
            for _ in range(steps):
                obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
                if obs not in venv.observation_space:
                    raise _fail("vector", f"step observation in observation_space ({mode})", "not contained")
                if rew.shape != (num_envs,) or term.shape != (num_envs,) or trunc.shape != (num_envs,):
                    raise _fail("vector", "batched shapes", f"{rew.shape} {term.shape} {trunc.shape}")
                done = term | trunc
                if mode == "next_step" and prev_done.any() and (np.any(rew[prev_done] != 0) or done[prev_done].any()):
                    raise _fail("vector", "next-step autoreset (reward 0, not done on reset step)", rew)
                if mode == "same_step" and done.any():
                    if not np.array_equal(info.get("_final_obs"), done):
                        raise _fail("vector", "same-step final_obs mask", info.get("_final_obs"))
                prev_done = done
            report[f"vector[{mode}]"] = "ok"
    if "torchrl" in faces:
        from torchrl.envs.utils import check_env_specs

        tenv = WorldModelTorchRLEnv(model, start_states, num_envs, max_episode_steps=max_episode_steps)
        try:
            check_env_specs(tenv, seed=0)
            tenv.rollout(max_episode_steps + 5, break_when_any_done=False)
        except Exception as err:  # noqa: BLE001
            raise _fail("torchrl", "torchrl.envs.utils.check_env_specs / rollout", err) from err
        report["torchrl"] = "ok"
    if "sb3_vec" in faces:
        venv = WorldModelSB3VecEnv(model, start_states, num_envs, max_episode_steps=max_episode_steps, seed=0)
        obs = venv.reset()
        for _ in range(steps):
            actions = np.stack([venv.action_space.sample() for _ in range(num_envs)])
            obs, rew, dones, infos = venv.step(actions)
            for i in np.flatnonzero(dones):
                if "terminal_observation" not in infos[i]:
                    raise _fail("sb3_vec", "terminal_observation on done", infos[i])
        if not isinstance(obs, dict | np.ndarray):
            raise _fail("sb3_vec", "NumPy observations", type(obs))
        report["sb3_vec"] = "ok"
    return report



def random_replay_batch(
    observation_space: Any, action_space: Any, b: int = 3, t: int = 6, seed: int = 0,
    observation_noise: Literal["uniform", "normal"] = "uniform",
) -> TensorDictBase:
    """A random batch ``[B, T]`` in the replay row format, one episode boundary per row.

    For tests of a family's ``loss(batch)``: keys ``observation``, ``action`` (zeros at
    ``is_first``), ``reward``, ``terminated`` (the step before the boundary), ``truncated``,
    ``is_first`` (steps 0 and ``T // 2``), ``is_last`` and ``episode``.

    Args:
        observation_space: Gymnasium ``Box`` (uint8 images get random bytes).
        action_space: ``Discrete`` or ``Box``.
        b: batch size ``B``.
        t: sequence length ``T``.
        seed: seed of every draw.
        observation_noise: float observations uniform in [-1, 1] or standard normal.
    """
    import gymnasium as gym

    g = torch.Generator().manual_seed(seed)
    if observation_space.dtype == np.uint8:
        obs = torch.randint(0, 256, (b, t, *observation_space.shape), generator=g, dtype=torch.uint8)
    elif observation_noise == "normal":
        obs = torch.randn(b, t, *observation_space.shape, generator=g)
    else:
        obs = torch.rand(b, t, *observation_space.shape, generator=g) * 2 - 1
    if isinstance(action_space, gym.spaces.Discrete):
        action = torch.randint(0, int(action_space.n), (b, t), generator=g)
    else:
        action = torch.rand(b, t, *action_space.shape, generator=g) * 4 - 2
    is_first = torch.zeros(b, t, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[:, t // 2] = True
    terminated = torch.zeros(b, t, dtype=torch.bool)
    terminated[:, t // 2 - 1] = True
    action[is_first] = 0
    reward = torch.randn(b, t, generator=g).masked_fill(is_first, 0.0)
    return TensorDict(
        {
            "observation": obs, "action": action, "reward": reward, "terminated": terminated,
            "truncated": torch.zeros(b, t, dtype=torch.bool), "is_first": is_first,
            "is_last": terminated.clone(), "episode": torch.cumsum(is_first.long(), 1),
        },
        batch_size=[b, t],
    )


def train_on_batch(model: torch.nn.Module, batch: TensorDictBase, steps: int) -> list[float]:
    """A plain loop over ``model.optim_groups()`` (one Adam per group, one backward per step).

    Returns the summed ``loss_*`` value of every step, for "loss decreases" tests.
    """
    opts = [(torch.optim.Adam(g["params"], lr=g["lr"], eps=g["eps"]), g) for g in model.optim_groups().values()]
    losses = []
    for step in range(steps):
        out = model.loss(batch)
        loss = sum(v for k, v in out.items() if k.startswith("loss_"))
        for opt, _ in opts:
            opt.zero_grad()
        loss.backward()
        for opt, g in opts:
            if g.get("grad_clip"):
                torch.nn.utils.clip_grad_norm_(g["params"], g["grad_clip"])
            opt.step()
        if hasattr(model, "after_update"):
            model.after_update(step)
        losses.append(float(loss.detach()))
    return losses
