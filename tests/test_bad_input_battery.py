"""Issue 11, "bad input": a battery of wrong arguments, actions and model outputs.

Every case must end, within its time limit, in a typed wmenv error (a ``WMEnvError`` that is also
the natural builtin) whose message names the argument (or model output) at fault. A hang or a raw
torch / NumPy / Gymnasium error fails the case. The cases cover the four faces (Gymnasium single
env, Gymnasium vector env, TorchRL, SB3), the callables API, the protocol and core, and
``LatentObservationWrapper``; a few valid-input controls at the end keep the checks honest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import NonTensorData, TensorDict
from torchrl.data import Bounded, Categorical, Unbounded

from wmenv.core import ImaginationCore
from wmenv.core.errors import (
    ArgumentTypeError,
    EpisodeEndedError,
    InvalidActionError,
    InvalidArgumentError,
    MissingActionError,
    ModelOutputError,
    ResetNeededError,
    UnsupportedSpaceError,
    WMEnvError,
)
from wmenv.envs import WorldModelEnv, WorldModelSB3VecEnv, WorldModelTorchRLEnv, WorldModelVectorEnv
from wmenv.envs.latent import LatentObservationWrapper
from wmenv.testing import FakeWorldModel, fake_start_states

N = 4


@dataclass
class Case:
    id: str
    fn: Callable[[], object]
    error: type[WMEnvError]
    builtin: type[Exception]
    names: str  # regex the message must match: the argument at fault (and what was expected / came)


CASES: list[Case] = []


def case(id: str, error: type[WMEnvError], builtin: type[Exception], names: str):
    def register(fn: Callable[[], object]) -> Callable[[], object]:
        CASES.append(Case(id, fn, error, builtin, names))
        return fn

    return register


# ----------------------------------------------------------------------------- builders
def _model(**kw) -> tuple[FakeWorldModel, object]:
    model = FakeWorldModel(**kw)
    return model, fake_start_states(model)


def _single(**kw) -> WorldModelEnv:
    model, start = _model(**{k: kw.pop(k) for k in ("action", "terminate_at") if k in kw})
    env = WorldModelEnv(model, start, **kw)
    return env


def _single_reset(**kw) -> WorldModelEnv:
    env = _single(**kw)
    env.reset(seed=0)
    return env


def _vector(**kw) -> WorldModelVectorEnv:
    model, start = _model()
    env = WorldModelVectorEnv(model, start, N, **kw)
    env.reset(seed=0)
    return env


def _torchrl() -> WorldModelTorchRLEnv:
    model, start = _model()
    env = WorldModelTorchRLEnv(model, start, N, max_episode_steps=20)
    env.reset()
    return env


def _sb3() -> WorldModelSB3VecEnv:
    model, start = _model()
    env = WorldModelSB3VecEnv(model, start, N, seed=0)
    env.reset()
    return env


def _callables(reset_out=None, step_out=None, **kw) -> WorldModelEnv:
    """A callables-API env whose reset_fn / transition_fn return the given (bad) entries."""

    def reset_fn(model, seed=None, options=None):
        out = {"state": 0, "observation": np.zeros(2, np.float32)}
        return out if reset_out is None else {**out, **reset_out} if isinstance(reset_out, dict) else reset_out

    def transition_fn(model, state, action):
        out = {"state": state + 1, "observation": np.zeros(2, np.float32), "reward": 0.0, "terminated": False}
        return {**out, **(step_out or {})}

    spaces = dict(observation_space=gym.spaces.Box(-1, 1, (2,), np.float32), action_space=gym.spaces.Discrete(2))
    return WorldModelEnv(object(), **{**spaces, "reset_fn": reset_fn, "transition_fn": transition_fn, **kw})


def _callables_step(**step_out):
    env = _callables(step_out=step_out)
    env.reset()
    env.step(0)


class Broken(FakeWorldModel):
    """A protocol model whose ``step`` (or ``initial_state``) output is replaced by a fault."""

    def __init__(self, step_fault=None, reset_fault=None, **kw):
        super().__init__(**kw)
        self.step_fault, self.reset_fault = step_fault, reset_fault

    def step(self, state, action, *, generator):
        out = super().step(state, action, generator=generator)
        return out if self.step_fault is None else self.step_fault(out)

    def initial_state(self, context, *, generator):
        out = super().initial_state(context, generator=generator)
        return out if self.reset_fault is None else self.reset_fault(out)


def _replace(key, value_fn):
    """A fault that swaps one output entry (``value_fn(out)`` gives the new value)."""

    def fault(out):
        entries = dict(out.items())
        entries[key] = value_fn(out)
        return entries

    return fault


def _core_step(step_fault=None, face="core"):
    model = Broken(step_fault=step_fault)
    start = fake_start_states(model)
    if face == "core":
        core = ImaginationCore(model, start, N)
        core.reset(seed=0)
        core.step(torch.zeros(N, dtype=torch.long))
    elif face == "vector":
        env = WorldModelVectorEnv(model, start, N)
        env.reset(seed=0)
        env.step(np.zeros(N, dtype=np.int64))
    else:
        env = WorldModelTorchRLEnv(model, start, N)
        env.rollout(2)


def _core_reset(reset_fault):
    model = Broken(reset_fault=reset_fault)
    ImaginationCore(model, fake_start_states(model), N).reset(seed=0)


# ----------------------------------------------------------------------------- Gymnasium single env
case("single/reset-seed-str", ArgumentTypeError, TypeError, r"seed must be a non-negative int.*str 'abc'")(
    lambda: _single().reset(seed="abc"))
case("single/reset-seed-float", ArgumentTypeError, TypeError, r"seed must be a non-negative int.*float 1.5")(
    lambda: _single().reset(seed=1.5))
case("single/reset-seed-negative", InvalidArgumentError, ValueError, r"seed must be >= 0.*got -1")(
    lambda: _single().reset(seed=-1))
case("single/reset-seed-bool", ArgumentTypeError, TypeError, r"seed must be .*bool True")(
    lambda: _single().reset(seed=True))
case("single/reset-options-int", ArgumentTypeError, TypeError, r"options must be a dict or None, got int 5")(
    lambda: _single().reset(options=5))
case("single/reset-options-list", ArgumentTypeError, TypeError, r"options must be a dict or None, got list")(
    lambda: _single().reset(options=["reset_mask"]))
case("single/ctor-seed-str", ArgumentTypeError, TypeError, r"seed must be a non-negative int.*str")(
    lambda: _single(seed="7"))
case("single/ctor-horizon-zero", InvalidArgumentError, ValueError, r"max_episode_steps must be >= 1.*got 0")(
    lambda: _single(max_episode_steps=0))
case("single/ctor-horizon-float", ArgumentTypeError, TypeError, r"max_episode_steps must be a positive int.*2.5")(
    lambda: _single(max_episode_steps=2.5))
case("single/ctor-no-start-states", ArgumentTypeError, TypeError, r"start_states is required")(
    lambda: WorldModelEnv(FakeWorldModel()))
case("single/ctor-not-a-model", ArgumentTypeError, TypeError, r"object does not follow the WorldModel protocol")(
    lambda: WorldModelEnv(object(), fake_start_states(FakeWorldModel())))
case("single/ctor-render-mode-human", InvalidArgumentError, ValueError, r"render_mode must be one of .*'human'")(
    lambda: _single(render_mode="human"))
case("single/ctor-render-mode-int", ArgumentTypeError, TypeError, r"render_mode must be one of .*got int")(
    lambda: _single(render_mode=1))
case("single/step-before-reset", ResetNeededError, RuntimeError, r"before reset\(\)")(
    lambda: _single().step(0))


def _step_after(kind):
    if kind == "terminated":  # every step ends the episode: |x1| > 0
        env = _single_reset(terminate_at=0.0, max_episode_steps=100)
    else:
        env = _single_reset(terminate_at=None, max_episode_steps=1)
    _, _, terminated, truncated, _ = env.step(0)
    assert terminated if kind == "terminated" else truncated
    env.step(0)


case("single/step-after-terminated", EpisodeEndedError, RuntimeError, r"after the episode ended.*call reset\(\)")(
    lambda: _step_after("terminated"))
case("single/step-after-truncated", EpisodeEndedError, RuntimeError, r"after the episode ended.*call reset\(\)")(
    lambda: _step_after("truncated"))
case("single/action-str", InvalidActionError, ValueError, r"action must be a numeric array of shape \(\) for Discrete\(2\), got str: 'a'")(
    lambda: _single_reset().step("a"))
case("single/action-none", InvalidActionError, ValueError, r"action must be .*got NoneType")(
    lambda: _single_reset().step(None))
case("single/action-shape", InvalidActionError, ValueError, r"action of shape \(\).*got \(2,\)")(
    lambda: _single_reset().step(np.array([0, 1])))
case("single/action-out-of-range", InvalidActionError, ValueError, r"actions integers in \[0, 1\]; env 0 got 7")(
    lambda: _single_reset().step(7))
case("single/action-float-for-discrete", InvalidActionError, ValueError, r"integer actions.*got dtype float")(
    lambda: _single_reset().step(0.5))
case("single/action-nontensordata", InvalidActionError, ValueError, r"action must be .*NonTensorData")(
    lambda: _single_reset().step(NonTensorData([0], batch_size=[1])))
case("single/action-nan-continuous", InvalidActionError, ValueError, r"actions finite values in \[.*got \[nan")(
    lambda: _single_reset(action="continuous").step(np.array([np.nan, 0.0], np.float32)))
case("single/action-range-continuous", InvalidActionError, ValueError, r"actions finite values in \[.*got \[3.0")(
    lambda: _single_reset(action="continuous").step(np.array([3.0, 0.0], np.float32)))

# ----------------------------------------------------------------------------- Gymnasium vector env
for bad, err, builtin, names in [
    (2.5, ArgumentTypeError, TypeError, r"num_envs must be a positive int, got float 2.5"),
    ("4", ArgumentTypeError, TypeError, r"num_envs must be a positive int, got str '4'"),
    (0, InvalidArgumentError, ValueError, r"num_envs must be >= 1.*got 0"),
    (-3, InvalidArgumentError, ValueError, r"num_envs must be >= 1.*got -3"),
    (True, ArgumentTypeError, TypeError, r"num_envs must be a positive int, got bool True"),
]:
    case(f"vector/num_envs={bad!r}", err, builtin, names)(
        lambda bad=bad: WorldModelVectorEnv(FakeWorldModel(), fake_start_states(FakeWorldModel()), bad))
case("vector/reset-seed-str", ArgumentTypeError, TypeError, r"seed must be a non-negative int.*'abc'")(
    lambda: _vector().reset(seed="abc"))
case("vector/reset-seed-negative", InvalidArgumentError, ValueError, r"seed must be >= 0.*got -1")(
    lambda: _vector().reset(seed=-1))
case("vector/reset-seed-list-item", ArgumentTypeError, TypeError, r"seed\[1\] must be a non-negative int.*'x'")(
    lambda: _vector().reset(seed=[0, "x", 2, 3]))
case("vector/reset-options-int", ArgumentTypeError, TypeError, r"options must be a dict or None, got int 5")(
    lambda: _vector().reset(options=5))
case("vector/reset-mask-length", InvalidArgumentError, ValueError, r"reset_mask'\] must be a bool array of shape \(4,\).*got shape \(3,\)")(
    lambda: _vector().reset(options={"reset_mask": np.ones(3, dtype=bool)}))
case("vector/reset-mask-fraction", InvalidArgumentError, ValueError, r"reset_mask'\] must be .*0/1 values.*0.5")(
    lambda: _vector().reset(options={"reset_mask": [0.5, 0.0, 0.0, 0.0]}))
case("vector/reset-mask-str", InvalidArgumentError, ValueError, r"reset_mask'\] must be a bool array .*got")(
    lambda: _vector().reset(options={"reset_mask": "1010"}))
case("vector/action-str", InvalidActionError, ValueError, r"action must be a numeric array of shape \(4,\).*<U1")(
    lambda: _vector().step(np.array(["a"] * N)))
case("vector/action-shape", InvalidActionError, ValueError, r"actions of shape \(4,\).*got \(3,\)")(
    lambda: _vector().step(np.zeros(3, dtype=np.int64)))
case("vector/action-none", InvalidActionError, ValueError, r"action must be .*NoneType")(
    lambda: _vector().step(None))
case("vector/autoreset-mode", InvalidArgumentError, ValueError, r"autoreset_mode must be 'next_step' or 'same_step'.*'sometimes'")(
    lambda: _vector(autoreset_mode="sometimes"))
case("vector/render-mode", InvalidArgumentError, ValueError, r"render_mode must be one of .*'human'")(
    lambda: _vector(render_mode="human"))

# ----------------------------------------------------------------------------- TorchRL
case("torchrl/action-nontensor-strings", InvalidActionError, ValueError, r"action must be a torch.int64 tensor.*NonTensorData holding list")(
    lambda: _torchrl().step(TensorDict({"action": NonTensorData(["a"] * N, batch_size=[N])}, [N])))
case("torchrl/action-nontensor-none", InvalidActionError, ValueError, r"action must be a torch.int64 tensor.*NonTensorData holding NoneType")(
    lambda: _torchrl().step(TensorDict({"action": NonTensorData(None, batch_size=[N])}, [N])))
case("torchrl/action-numpy-strings", InvalidActionError, ValueError, r"action must be a torch.int64 tensor.*got NonTensorData")(
    lambda: _torchrl().step(TensorDict({"action": np.array(["a"] * N)}, [N])))
case("torchrl/action-missing", MissingActionError, KeyError, r"no 'action' entry; expected 'action': a torch.int64 tensor.*got keys \['foo'\]")(
    lambda: _torchrl().step(TensorDict({"foo": torch.zeros(N)}, [N])))
case("torchrl/action-missing-step_and_maybe_reset", MissingActionError, KeyError, r"no 'action' entry")(
    lambda: _torchrl().step_and_maybe_reset(TensorDict({}, [N])))
case("torchrl/action-float", InvalidActionError, ValueError, r"integer actions.*torch.float32")(
    lambda: _torchrl().step(TensorDict({"action": torch.zeros(N)}, [N])))
case("torchrl/action-shape", InvalidActionError, ValueError, r"actions of shape \(4,\).*got \(4, 2\)")(
    lambda: _torchrl().step(TensorDict({"action": torch.zeros(N, 2, dtype=torch.long)}, [N])))
case("torchrl/_reset-shape", InvalidArgumentError, ValueError, r"'_reset' must be a bool array of shape \(4,\).*\(4, 2\)")(
    lambda: _torchrl().reset(TensorDict({"_reset": torch.ones(N, 2, dtype=torch.bool)}, [N])))
case("torchrl/num_envs-float", ArgumentTypeError, TypeError, r"num_envs must be a positive int, got float 2.5")(
    lambda: WorldModelTorchRLEnv(FakeWorldModel(), fake_start_states(FakeWorldModel()), 2.5))
case("torchrl/set_seed-str", ArgumentTypeError, TypeError, r"seed must be a non-negative int.*'abc'")(
    lambda: _torchrl().set_seed("abc"))
case("torchrl/set_seed-negative", InvalidArgumentError, ValueError, r"seed must be >= 0.*-1")(
    lambda: _torchrl().set_seed(-1))
case("torchrl/render-mode", InvalidArgumentError, ValueError, r"render_mode must be one of .*'human'")(
    lambda: WorldModelTorchRLEnv(FakeWorldModel(), fake_start_states(FakeWorldModel()), 2, render_mode="human"))

# ----------------------------------------------------------------------------- Stable-Baselines3
case("sb3/num_envs-str", ArgumentTypeError, TypeError, r"num_envs must be a positive int, got str '4'")(
    lambda: WorldModelSB3VecEnv(FakeWorldModel(), fake_start_states(FakeWorldModel()), "4"))
case("sb3/seed-negative", InvalidArgumentError, ValueError, r"seed must be >= 0.*-1")(
    lambda: _sb3().seed(-1))
case("sb3/seed-str", ArgumentTypeError, TypeError, r"seed must be a non-negative int.*'abc'")(
    lambda: _sb3().seed("abc"))
case("sb3/set_options-int", ArgumentTypeError, TypeError, r"options must be a dict or None, got int 5")(
    lambda: _sb3().set_options(5))
case("sb3/set_options-list-item", ArgumentTypeError, TypeError, r"options\[1\] must be a dict or None, got str")(
    lambda: _sb3().set_options([{}, "x", {}, {}]))
case("sb3/action-object", InvalidActionError, ValueError, r"action must be a numeric array of shape \(4,\).*object")(
    lambda: _sb3().step(np.array([object()] * N)))
case("sb3/action-shape", InvalidActionError, ValueError, r"actions of shape \(4,\).*got \(4, 2\)")(
    lambda: _sb3().step(np.zeros((N, 2), dtype=np.int64)))
case("sb3/render-mode", InvalidArgumentError, ValueError, r"render_mode must be one of .*'human'")(
    lambda: WorldModelSB3VecEnv(FakeWorldModel(), fake_start_states(FakeWorldModel()), 2, render_mode="human"))

# ----------------------------------------------------------------------------- callables API
case("callables/terminated-str", ModelOutputError, RuntimeError, r"transition_fn terminated: expected a bool \(or 0/1\), got str 'no'")(
    lambda: _callables_step(terminated="no"))
case("callables/terminated-probability", ModelOutputError, RuntimeError, r"transition_fn terminated: expected a bool \(or 0/1\), got 0.3")(
    lambda: _callables_step(terminated=0.3))
case("callables/terminated-none", ModelOutputError, RuntimeError, r"transition_fn terminated: expected .*NoneType")(
    lambda: _callables_step(terminated=None))
case("callables/truncated-str", ModelOutputError, RuntimeError, r"transition_fn truncated: expected a bool.*'yes'")(
    lambda: _callables_step(truncated="yes"))
case("callables/reward-str", ModelOutputError, RuntimeError, r"transition_fn reward: expected a real number.*str 'abc'")(
    lambda: _callables_step(reward="abc"))
case("callables/reward-numeric-str", ModelOutputError, RuntimeError, r"transition_fn reward: expected a real number.*str '1.0'")(
    lambda: _callables_step(reward="1.0"))
case("callables/reward-object", ModelOutputError, RuntimeError, r"transition_fn reward must be a real number \(float or int\), got object")(
    lambda: _callables_step(reward=object()))
case("callables/reward-vector", ModelOutputError, RuntimeError, r"transition_fn reward: expected a real number.*shape \(2,\)")(
    lambda: _callables_step(reward=[1.0, 2.0]))
case("callables/observation-str", ModelOutputError, RuntimeError, r"transition_fn observation must be a numeric array of shape \(2,\) for Box.*got str: 'abc'")(
    lambda: _callables_step(observation="abc"))
case("callables/observation-object", ModelOutputError, RuntimeError, r"transition_fn observation: expected a numeric array.*object")(
    lambda: _callables_step(observation=np.array([None, None])))
case("callables/observation-shape", ModelOutputError, RuntimeError, r"transition_fn observation: expected shape \(2,\), got \(3,\)")(
    lambda: _callables_step(observation=np.zeros(3, np.float32)))
case("callables/info-not-dict", ModelOutputError, RuntimeError, r"transition_fn info: expected a dict.*int")(
    lambda: _callables_step(info=5))
case("callables/reset_fn-not-dict", ModelOutputError, RuntimeError, r"reset_fn must return a dict with keys \['state', 'observation'\], got list")(
    lambda: _callables(reset_out=[1, 2]).reset())
case("callables/reset_fn-observation-str", ModelOutputError, RuntimeError, r"reset_fn observation must be a numeric array of shape \(2,\).*got str: 'zero'")(
    lambda: _callables(reset_out={"observation": "zero"}).reset())
case("callables/transition_fn-missing", ArgumentTypeError, TypeError, r"needs both reset_fn= and transition_fn=")(
    lambda: WorldModelEnv(object(), observation_space=gym.spaces.Discrete(2), action_space=gym.spaces.Discrete(2),
                          reset_fn=lambda m, seed=None, options=None: {}))
case("callables/reset_fn-not-callable", ArgumentTypeError, TypeError, r"reset_fn must be a callable, got str")(
    lambda: WorldModelEnv(object(), observation_space=gym.spaces.Discrete(2), action_space=gym.spaces.Discrete(2),
                          reset_fn="reset", transition_fn=lambda m, s, a: {}))
case("callables/observation_space-missing", ArgumentTypeError, TypeError, r"needs observation_space= and action_space=.*NoneType")(
    lambda: WorldModelEnv(object(), action_space=gym.spaces.Discrete(2), reset_fn=lambda m, seed=None, options=None: {},
                          transition_fn=lambda m, s, a: {}))

# ----------------------------------------------------------------------------- protocol / core
case("core/terminated-probability", ModelOutputError, RuntimeError, r"step terminated: expected bool \(or 0/1\) values, got dtype torch.float32 with 0.3")(
    lambda: _core_step(_replace("terminated", lambda out: torch.full((N,), 0.3))))
case("core/terminated-int-2", ModelOutputError, RuntimeError, r"step terminated: expected bool \(or 0/1\) values.*torch.int64 with 2")(
    lambda: _core_step(_replace("terminated", lambda out: torch.full((N,), 2))))
case("core/terminated-numpy", ModelOutputError, RuntimeError, r"step terminated: expected a bool tensor of shape \(4,\), got ndarray")(
    lambda: _core_step(_replace("terminated", lambda out: np.zeros(N, dtype=bool))))
case("core/terminated-shape", ModelOutputError, RuntimeError, r"step terminated: expected shape \(4,\), got \(4, 2\)")(
    lambda: _core_step(_replace("terminated", lambda out: torch.zeros(N, 2, dtype=torch.bool))))
case("core/truncated-probability", ModelOutputError, RuntimeError, r"step truncated: expected bool \(or 0/1\) values.*0.5")(
    lambda: _core_step(_replace("truncated", lambda out: torch.full((N,), 0.5))))
case("core/reward-bool", ModelOutputError, RuntimeError, r"step reward: expected a float32.*got dtype torch.bool")(
    lambda: _core_step(_replace("reward", lambda out: torch.ones(N, dtype=torch.bool))))
case("core/reward-complex", ModelOutputError, RuntimeError, r"step reward: expected a float32.*complex64")(
    lambda: _core_step(_replace("reward", lambda out: torch.zeros(N, dtype=torch.complex64))))
case("core/reward-list", ModelOutputError, RuntimeError, r"step reward: expected a float tensor of shape \(4,\), got list")(
    lambda: _core_step(_replace("reward", lambda out: [0.0] * N)))
case("core/reward-shape", ModelOutputError, RuntimeError, r"step reward: expected shape \(4,\), got \(4, 2\)")(
    lambda: _core_step(_replace("reward", lambda out: torch.zeros(N, 2))))
case("core/reward-inf", ModelOutputError, RuntimeError, r"step reward: model returned NaN/inf for batch members \[0, 1, 2, 3\]")(
    lambda: _core_step(_replace("reward", lambda out: torch.full((N,), float("inf")))))
case("core/observation-nan", ModelOutputError, RuntimeError, r"step observation: model returned NaN/inf for batch members \[0, 1, 2, 3\]")(
    lambda: _core_step(_replace("observation", lambda out: out["observation"] * float("nan"))))
case("core/observation-numpy", ModelOutputError, RuntimeError, r"step observation: expected a torch tensor of shape \(4, 4\).*got ndarray")(
    lambda: _core_step(_replace("observation", lambda out: out["observation"].numpy())))
case("core/observation-complex", ModelOutputError, RuntimeError, r"step observation: expected a real .*complex64")(
    lambda: _core_step(_replace("observation", lambda out: out["observation"].to(torch.complex64))))
case("core/observation-shape", ModelOutputError, RuntimeError, r"step observation: expected shape \(4, 4\).*got \(4, 2\)")(
    lambda: _core_step(_replace("observation", lambda out: out["observation"][:, :2])))
case("core/missing-terminated", ModelOutputError, RuntimeError, r"step returned keys .*missing \['terminated'\]")(
    lambda: _core_step(lambda out: {k: v for k, v in out.items() if k != "terminated"}))
case("core/step-returns-none", ModelOutputError, RuntimeError, r"step must return a TensorDict with keys .*got NoneType")(
    lambda: _core_step(lambda out: None))
case("core/via-vector-face-terminated-probability", ModelOutputError, RuntimeError, r"step terminated: expected bool")(
    lambda: _core_step(_replace("terminated", lambda out: torch.full((N,), 0.3)), face="vector"))
case("core/via-torchrl-face-reward-bool", ModelOutputError, RuntimeError, r"step reward: expected a float32")(
    lambda: _core_step(_replace("reward", lambda out: torch.ones(N, dtype=torch.bool)), face="torchrl"))
case("core/initial_state-observation-shape", ModelOutputError, RuntimeError, r"initial_state observation: expected shape \(4, 4\).*got \(4, 3\)")(
    lambda: _core_reset(_replace("observation", lambda out: out["observation"][:, :3])))
case("core/initial_state-observation-nan", ModelOutputError, RuntimeError, r"initial_state observation: model returned NaN/inf")(
    lambda: _core_reset(_replace("observation", lambda out: out["observation"] * float("nan"))))
case("core/initial_state-state-not-td", ModelOutputError, RuntimeError, r"initial_state state: expected a TensorDict with batch size \[4\], got Tensor")(
    lambda: _core_reset(_replace("state", lambda out: torch.zeros(N, 4))))
case("core/initial_state-missing-observation", ModelOutputError, RuntimeError, r"initial_state returned keys \['state'\]; missing \['observation'\]")(
    lambda: _core_reset(lambda out: {"state": out["state"]}))


def _core():
    model, start = _model()
    core = ImaginationCore(model, start, N)
    core.reset(seed=0)
    return core


case("core/step-autoreset", InvalidArgumentError, ValueError, r"autoreset must be 'same_step' or None, got 'always'")(
    lambda: _core().step(torch.zeros(N, dtype=torch.long), autoreset="always"))
case("core/step-reset_mask-dtype", InvalidArgumentError, ValueError, r"reset_mask must be .*0/1 values.*0.25")(
    lambda: _core().step(torch.zeros(N, dtype=torch.long), reset_mask=torch.full((N,), 0.25)))
case("core/reset-mask-length", InvalidArgumentError, ValueError, r"reset_mask must be a bool array of shape \(4,\).*got shape \(5,\)")(
    lambda: _core().reset(torch.ones(5, dtype=torch.bool)))
case("core/seed-huge-negative", InvalidArgumentError, ValueError, r"seed must be >= 0.*-18446744073709551616")(
    lambda: _core().seed(-(2**64)))
case("core/start_states-not-a-source", ArgumentTypeError, TypeError, r"start_states must have a sample\(.*got dict")(
    lambda: ImaginationCore(FakeWorldModel(), {"x": torch.zeros(3, 4)}, N))
case("core/model-lacks-step", ArgumentTypeError, TypeError, r"lacks 'step'")(
    lambda: ImaginationCore(type("M", (), {"observation_spec": None, "action_spec": None, "initial_state": None})(),
                            fake_start_states(FakeWorldModel()), N))


# ----------------------------------------------------------------------------- LatentObservationWrapper
class DeclaredFilter:
    """An adapter that declares the spaces it was built for (as the RSSM adapters do)."""

    def __init__(self, obs_dim=4, n_actions=2, latent_dim=6):
        self.decoded_spec = Bounded(-1.0, 1.0, shape=(obs_dim,), dtype=torch.float32)
        self.action_spec = Categorical(n_actions, shape=(), dtype=torch.int64)
        self.latent_spec = Unbounded(shape=(latent_dim,), dtype=torch.float32)
        self.weight = torch.ones(obs_dim, latent_dim)

    def observe(self, state, action, observation, *, generator=None):
        obs = torch.as_tensor(observation, dtype=torch.float32)
        return TensorDict({"state": {}, "observation": obs @ self.weight}, batch_size=[obs.shape[0]])


class UndeclaredFilter:
    """A generic adapter declaring only its latent space (observations of size 4)."""

    latent_spec = Unbounded(shape=(6,), dtype=torch.float32)

    def observe(self, state, action, observation, *, generator=None):
        obs = torch.as_tensor(observation, dtype=torch.float32)
        return TensorDict({"state": {}, "observation": obs @ torch.ones(4, 6)}, batch_size=[obs.shape[0]])


class WrongWidthFilter(UndeclaredFilter):
    latent_spec = Unbounded(shape=(5,), dtype=torch.float32)


class BoxActionEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        return np.zeros(4, np.float32), 0.0, False, False, {}


def _dreamer_adapter_for_cartpole():
    from wmenv.models.dreamer import DreamerConfig, DreamerWorldModel, to_world_model

    real = gym.make("CartPole-v1")
    cfg = DreamerConfig.tiny().replace(mlp_units=32, mlp_layers=1)
    cfg = cfg.replace(rssm=cfg.rssm.__class__(deter=32, stoch=4, classes=4, hidden=32))
    torch.manual_seed(0)
    return to_world_model(DreamerWorldModel(cfg, real.observation_space, real.action_space))


case("latent/dreamer-observation-space", UnsupportedSpaceError, ValueError,
     r"real env's observation space Box\(.*\(3,\), float32\) does not fit the world model \(DreamerImagination\).*observations Box\(.*\(4,\), float32\)")(
    lambda: LatentObservationWrapper(gym.make("Pendulum-v1"), _dreamer_adapter_for_cartpole()))
case("latent/declared-observation-space", UnsupportedSpaceError, ValueError,
     r"observation space Box\(.*\(2,\).*does not fit .*DeclaredFilter.*observations Box\(.*\(4,\)")(
    lambda: LatentObservationWrapper(gym.make("MountainCar-v0"), DeclaredFilter()))
case("latent/declared-action-space", UnsupportedSpaceError, ValueError,
     r"action space Box\(.*\(1,\).*does not fit .*DeclaredFilter.*actions Discrete\(2\)")(
    lambda: LatentObservationWrapper(BoxActionEnv(), DeclaredFilter()))
case("latent/undeclared-filter-fails", UnsupportedSpaceError, ValueError,
     r"filter \(UndeclaredFilter.observe\) fails on an observation of the real env's space Box\(.*\(6,\)")(
    lambda: LatentObservationWrapper(gym.make("Acrobot-v1"), UndeclaredFilter()))
case("latent/latent-width", UnsupportedSpaceError, ValueError,
     r"WrongWidthFilter.observe returned features of shape \(6,\).*declares the latent space Box\(.*\(5,\)")(
    lambda: LatentObservationWrapper(gym.make("CartPole-v1"), WrongWidthFilter()))
case("latent/no-observe", ArgumentTypeError, TypeError, r"object has no observe\(state, action, observation\) filter")(
    lambda: LatentObservationWrapper(gym.make("CartPole-v1"), object()))
case("latent/no-latent-spec", ArgumentTypeError, TypeError, r"declares no latent_spec \(or observation_spec\)")(
    lambda: LatentObservationWrapper(gym.make("CartPole-v1"), type("F", (), {"observe": lambda *a, **k: None})()))
case("latent/reset-seed-str", ArgumentTypeError, TypeError, r"seed must be a non-negative int.*'abc'")(
    lambda: LatentObservationWrapper(gym.make("CartPole-v1"), UndeclaredFilter()).reset(seed="abc"))
case("latent/ctor-seed-negative", InvalidArgumentError, ValueError, r"seed must be >= 0.*-5")(
    lambda: LatentObservationWrapper(gym.make("CartPole-v1"), UndeclaredFilter(), seed=-5))


# ----------------------------------------------------------------------------- the battery
@pytest.mark.timeout(20)
@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_a_typed_error_naming_the_argument(bad: Case) -> None:
    with pytest.raises(WMEnvError) as info:
        bad.fn()
    err = info.value
    assert isinstance(err, bad.error), f"{type(err).__name__}: {err}"
    assert isinstance(err, bad.builtin), f"{type(err).__name__} is not a {bad.builtin.__name__}"
    assert re.search(bad.names, str(err)), f"message does not name the argument ({bad.names!r}): {err}"


def test_the_battery_is_large_and_covers_every_surface() -> None:
    surfaces = {c.id.split("/")[0] for c in CASES}
    assert surfaces == {"single", "vector", "torchrl", "sb3", "callables", "core", "latent"}
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------- valid inputs still work
@pytest.mark.timeout(20)
def test_big_gymnasium_seeds_work_and_are_deterministic() -> None:
    for seed in (2**63, 2**64, 2**64 + 1, 10**40):
        env = _single()
        first, _ = env.reset(seed=seed)
        again, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(first, again)
    a, _ = _single().reset(seed=2**64)
    b, _ = _single().reset(seed=2**64 + 1)
    assert not np.array_equal(a, b)
    assert _torchrl().set_seed(2**64) is not None
    _vector().reset(seed=2**70)
    sb3 = _sb3()
    sb3.seed(2**64)
    sb3.reset()


def test_seeds_below_2_64_keep_their_trajectories() -> None:
    """Folding touches only seeds torch cannot take: smaller seeds seed the generator as before."""
    model, start = _model()
    core = ImaginationCore(model, start, N)
    core.seed(12345)
    assert core.generator.initial_seed() == 12345


@pytest.mark.timeout(20)
def test_integral_counts_and_0_1_outputs_are_accepted() -> None:
    model, start = _model()
    assert WorldModelVectorEnv(model, start, np.int64(3)).num_envs == 3
    assert WorldModelTorchRLEnv(model, start, np.int32(2)).batch_size == torch.Size([2])
    venv = _vector()
    venv.reset(options={"reset_mask": [1, 0, 0, 1]})  # 0/1 integers are a mask
    _core_step(_replace("terminated", lambda out: out["terminated"].float()))  # 0./1. floats are flags
    _core_step(_replace("reward", lambda out: out["reward"].double()))  # float64 rewards are cast
    env = _callables(step_out={"terminated": np.bool_(False), "reward": np.float64(1.5), "truncated": 0})
    env.reset()
    _, reward, terminated, truncated, _ = env.step(1)
    assert (reward, terminated, truncated) == (1.5, False, False)
    env = _callables(step_out={"terminated": 1})
    env.reset()
    assert env.step(0)[2] is True
