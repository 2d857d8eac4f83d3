"""Agent adapters: how the benchmark loads, optionally trains, and evaluates an agent in the REAL env.

An adapter satisfies :class:`AgentAdapter` and is built by a factory registered with
:func:`register_agent`. ``train`` and the ``progress`` keyword of ``evaluate`` are optional
extensions the runner uses when present. See ``wmenv.benchmarks`` for how a family registers one.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from wmenv.core.errors import CheckpointError, UnknownNameError, UnsupportedSpaceError
from wmenv.envs.evaluate import EvaluationResult, RealEnvEvaluator, make_real_env
from wmenv.registry import Registry

__all__ = [
    "AgentAdapter",
    "EvaluationResult",
    "RandomAgent",
    "RealEnvEvaluator",
    "SB3Agent",
    "TrainableAgent",
    "get_agent",
    "get_agent_factory",
    "is_trainable",
    "list_agents",
    "make_real_env",
    "register_agent",
    "resolve_agent_name",
]



class UnknownAgentError(UnknownNameError):
    """An agent name is not registered."""


@runtime_checkable
class AgentAdapter(Protocol):
    """What the benchmark needs from an agent.

    Factory / constructor: ``(env_id: str, device: str = "cpu", env_kwargs: dict | None = None,
    preset: str | None = None, **extra)``. Optional attribute ``requires_checkpoint: bool``
    (``True`` = meaningless untrained; ``--all-agents`` then skips it when it has no checkpoint).
    """

    name: str

    def load_checkpoint(self, path: str | Path) -> None:
        """Loads trained weights; raises ``CheckpointError`` if missing, corrupt or foreign."""
        ...

    def evaluate(self, num_episodes: int, render: bool = False, seed: int | None = None) -> EvaluationResult:
        """Plays ``num_episodes`` episodes in the real env; episode ``i`` resets with ``seed + i``."""
        ...


@runtime_checkable
class TrainableAgent(AgentAdapter, Protocol):
    """An adapter that can train itself from scratch (``--train-epochs``, Atari 100k)."""

    def train(
        self,
        *,
        steps: int | None = None,
        epochs: int | None = None,
        seed: int = 0,
        log_dir: str | None = None,
    ) -> None:
        """Trains for ``steps`` real-env agent steps or ``epochs`` epochs (whichever is given)."""
        ...


def is_trainable(agent: object) -> bool:
    """Whether ``agent`` has a callable ``train`` method."""
    return callable(getattr(agent, "train", None))


def _load_agents() -> None:
    """Agents of the families: their own (``ModelSpec.benchmark_agent``) or the registry agent."""
    from wmenv.benchmarks.families import register_family_agents

    register_family_agents()


#: The benchmark agents (name -> factory); families' agents are added on the first lookup.
AGENTS: Registry[Callable[..., AgentAdapter]] = Registry(
    "agent", error=UnknownAgentError, loader=_load_agents,
    hint="Register one with wmenv.benchmarks.adapters.register_agent, or give a family a policy.",
)


def register_agent(
    name: str,
    factory: Callable[..., AgentAdapter],
    aliases: Iterable[str] = (),
    replace: bool = False,
    *,
    overwrite: bool | None = None,
) -> None:
    """Registers an agent factory under ``name`` (and ``aliases``).

    Args:
        name: Canonical agent name, used in results and output directories.
        factory: Called as ``factory(env_id=..., device=..., env_kwargs=..., preset=..., **extra)``.
        aliases: Other names accepted by :func:`get_agent`.
        replace: Replace an existing registration instead of raising ``ConfigError``
            (``overwrite`` is its old name).
    """
    AGENTS.register(name, factory, aliases=tuple(aliases), replace=replace or bool(overwrite))


def list_agents() -> list[str]:
    """Canonical names of the registered agents, sorted."""
    return sorted(AGENTS.names())


def resolve_agent_name(name: str) -> str:
    """Canonical name of ``name`` (which may be an alias); ``UnknownAgentError`` if unregistered."""
    return AGENTS.resolve(name)


def get_agent_factory(name: str) -> Callable[..., AgentAdapter]:
    """The factory registered as ``name`` (or an alias of it)."""
    return AGENTS.get(name)


def get_agent(name: str, **kwargs: Any) -> AgentAdapter:
    """Builds the agent registered as ``name``; ``kwargs`` go to its factory."""
    return get_agent_factory(name)(**kwargs)


class RandomAgent:
    """Uniformly random actions: a baseline and the adapter used by the tests.

    ``load_checkpoint`` accepts and ignores a path (there are no weights); ``preset`` is ignored.
    """

    name = "random"
    requires_checkpoint = False

    def __init__(
        self,
        env_id: str,
        device: str = "cpu",
        env_kwargs: dict[str, Any] | None = None,
        preset: str | None = None,
    ) -> None:
        self.env_id, self.device, self.preset = env_id, device, preset
        self._eval = RealEnvEvaluator(env_id, env_kwargs)
        self._space: Any = None

    def load_checkpoint(self, path: str | Path) -> None:
        """No weights to load; kept for protocol conformance."""

    def _start(self, ep_seed: int | None) -> None:
        self._space = self._eval.env().action_space
        self._space.seed(None if ep_seed is None else int(np.uint32(ep_seed)))

    def evaluate(
        self,
        num_episodes: int,
        render: bool = False,
        seed: int | None = None,
        progress: Callable | None = None,
    ) -> EvaluationResult:
        """Plays ``num_episodes`` episodes with uniformly random actions."""
        policy = lambda _obs: self._space.sample()  # noqa: E731
        return self._eval.run(
            policy, num_episodes, seed, render, on_episode_start=self._start, progress=progress
        )

    def close(self) -> None:
        """Closes the real env."""
        self._eval.close()


_SB3_ALGOS = ("PPO", "A2C", "SAC", "TD3", "DQN")


def detect_sb3_algorithm(path: str | Path) -> str:
    """Reads an SB3 ``.zip``'s ``data`` entry and names its algorithm (``"PPO"``, ``"DQN"``, ...)."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not a Stable-Baselines3 .zip model ({err})") from err
    module = str(data.get("policy_class", {}).get("__module__", ""))
    for algo in ("DQN", "SAC", "TD3"):
        if f".{algo.lower()}." in f"{module}.":
            return algo
    if module.endswith("common.policies"):  # shared by PPO and A2C; PPO stores its clipping
        return "PPO" if "clip_range" in data or "n_epochs" in data else "A2C"
    raise CheckpointError(
        f"cannot tell the SB3 algorithm of {path} (policy module {module!r}); pass algo= one of {_SB3_ALGOS}"
    )


def resolve_observation_wrapper(
    world_model: str | Path | None, observation_wrapper: Callable[[Any], Any] | None, device: str
) -> Callable[[Any], Any] | None:
    """The one place where a policy trained on a world model's latents meets the real env.

    An explicit ``observation_wrapper`` wins. Otherwise a ``world_model`` checkpoint is turned into
    a wrapper by :func:`wmenv.runs.latent_observation_wrapper` (``checkpoint``, ``device``).
    """
    if observation_wrapper is not None or world_model is None:
        return observation_wrapper
    from wmenv.runs import latent_observation_wrapper

    return latent_observation_wrapper(world_model, device=device)


class SB3Agent:
    """A Stable-Baselines3 policy (e.g. trained in a wmenv imagination env), judged in the real env.

    Args:
        env_id: Real env id.
        device: Torch device for the policy.
        env_kwargs: Extra ``make_env`` arguments.
        preset: Ignored (SB3 models carry their own hyper-parameters).
        algo: Force the algorithm class (``"PPO"``, ``"A2C"``, ``"SAC"``, ``"TD3"``, ``"DQN"``)
            instead of detecting it from the zip.
        deterministic: Greedy actions (``model.predict(..., deterministic=True)``).
        world_model: Checkpoint of the world model whose latents the policy was trained on.
        observation_wrapper: ``env -> env`` applied to the real env before the policy sees it.
    """

    name = "sb3"
    requires_checkpoint = True

    def __init__(
        self,
        env_id: str,
        device: str = "cpu",
        env_kwargs: dict[str, Any] | None = None,
        preset: str | None = None,
        algo: str | None = None,
        deterministic: bool = True,
        world_model: str | Path | None = None,
        observation_wrapper: Callable[[Any], Any] | None = None,
    ) -> None:
        if algo is not None and algo.upper() not in _SB3_ALGOS:
            raise UnknownNameError("SB3 algorithm", algo, _SB3_ALGOS)
        self.env_id, self.device, self.algo, self.deterministic = env_id, device, algo, deterministic
        wrapper = resolve_observation_wrapper(world_model, observation_wrapper, device)
        self._eval = RealEnvEvaluator(env_id, env_kwargs, observation_wrapper=wrapper)
        self.model: Any = None

    def load_checkpoint(self, path: str | Path) -> None:
        """Loads an SB3 ``.zip`` model; ``CheckpointError`` if missing or not an SB3 model."""
        if not Path(path).is_file():
            raise CheckpointError(f"SB3 model file {str(path)!r} does not exist")
        algo = (self.algo or detect_sb3_algorithm(path)).upper()
        env = self._eval.env()
        self.model = load_sb3_model(path, algo, self.device, env.observation_space, env.action_space)
        self.algo = algo

    def evaluate(
        self,
        num_episodes: int,
        render: bool = False,
        seed: int | None = None,
        progress: Callable | None = None,
    ) -> EvaluationResult:
        """Plays ``num_episodes`` episodes with the loaded policy."""
        if self.model is None:
            raise CheckpointError("no SB3 model loaded; call load_checkpoint(path) (CLI: --checkpoint) first")
        space = self._eval.env(render).observation_space
        if getattr(space, "shape", None) != getattr(self.model.observation_space, "shape", None):
            raise UnsupportedSpaceError(
                f"policy expects observations {self.model.observation_space}, real env {self.env_id} gives "
                f"{space}; if the policy was trained on world-model latents pass world_model= or "
                "observation_wrapper="
            )
        policy = lambda obs: self.model.predict(obs, deterministic=self.deterministic)[0]  # noqa: E731
        seeder = None if self.deterministic else self.model.set_random_seed  # seeds SB3's global RNGs
        return self._eval.run(
            policy, num_episodes, seed=seed, render=render, on_episode_start=seeder, progress=progress
        )

    def close(self) -> None:
        """Closes the real env."""
        self._eval.close()


register_agent("random", RandomAgent, aliases=("uniform",), overwrite=True)
register_agent("sb3", SB3Agent, aliases=("stable-baselines3", "stable_baselines3"), overwrite=True)


def _space_from_sb3_json(entry: Any, what: str, path: str | Path) -> Any:
    """A ``Box`` or ``Discrete`` from the printable fields SB3 writes next to a pickled space (no unpickling)."""
    import gymnasium as gym

    try:
        kind = str(entry[":type:"])
        if "Discrete" in kind and "Multi" not in kind:
            return gym.spaces.Discrete(int(entry["n"]), start=int(entry.get("start", 0)))
        if "Box" in kind:
            raw = entry["_shape"]
            shape, dtype = tuple(json.loads(raw) if isinstance(raw, str) else raw), np.dtype(entry["dtype"])

            def bound(name: str) -> Any:
                scalar = entry.get(f"{name}_repr")
                if scalar not in (None, "None"):
                    return float(scalar)
                raw = entry[name]
                if isinstance(raw, list):
                    return np.asarray(raw, dtype=np.float64).reshape(shape)
                values = np.array(str(raw).replace("[", " ").replace("]", " ").split(), dtype=np.float64)
                return values.reshape(shape)

            return gym.spaces.Box(bound("low"), bound("high"), shape=shape, dtype=dtype)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read the policy's {what} space without unpickling ({err})") from err
    raise CheckpointError(f"{path}: the policy's {what} space {entry.get(':type:')} cannot be read without "
                          "unpickling; pass the env's spaces")


def load_sb3_model(path: str | Path, algo: str, device: str, observation_space: Any = None,
                   action_space: Any = None) -> Any:
    """Load an SB3 ``.zip`` without unpickling anything it holds.

    SB3's own ``load`` runs ``cloudpickle.loads`` on every ``":serialized:"`` entry of the zip's ``data``
    (policy class, spaces, schedules, buffer class): a hostile zip runs code. Here every such entry is
    replaced through ``custom_objects``, which SB3 consults before unpickling: the policy class from an
    allow-list (the algorithm's own policies, matched by name), the spaces from the env the policy will
    act in (after checking the saved observation shape; else read from the zip's printable fields),
    constant schedules, and ``None`` for the rest.
    Weights come from the zip's ``.pth`` files, which SB3 loads with ``weights_only=True``.

    Raises:
        CheckpointError: not a readable SB3 zip, a policy class outside the allow-list, or weights that
            do not fit.
        UnsupportedSpaceError: the saved observation shape is not the env's.
    """
    import stable_baselines3

    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path} is not a readable SB3 model zip ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the SB3 'data' entry is not a JSON object")
    cls = getattr(stable_baselines3, algo)
    custom: dict[str, Any] = {k: None for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v}
    allowed = {c.__name__: c for alias in cls.policy_aliases.values() for c in alias.__mro__}
    saved = data.get("policy_class")
    init = str(saved.get("__init__", "")) if isinstance(saved, dict) else ""
    found = re.match(r"<function (\w+)\.__init__", init)
    if found is None or found.group(1) not in allowed:
        raise CheckpointError(
            f"{path}: policy class {found.group(1) if found else '(unnamed)'} is not one of {algo}'s own policies "
            f"({sorted(allowed)}); wmenv loads only those, without unpickling (SB3's load would unpickle it)"
        )
    custom["policy_class"] = allowed[found.group(1)]
    shape = (data.get("observation_space") or {}).get("_shape") if isinstance(data.get("observation_space"), dict) else None
    try:
        saved_shape = tuple(json.loads(shape) if isinstance(shape, str) else shape) if shape is not None else None
    except (ValueError, TypeError):
        saved_shape = None
    if observation_space is not None and saved_shape is not None and saved_shape != tuple(getattr(observation_space, "shape", None) or ()):
        raise UnsupportedSpaceError(
            f"the policy in {path} was trained on observations of shape {saved_shape}, the env gives "
            f"{observation_space}; if it was trained on world-model latents pass world_model= or observation_wrapper="
        )
    if observation_space is None:
        observation_space = _space_from_sb3_json(data.get("observation_space"), "observation", path)
    if action_space is None:
        action_space = _space_from_sb3_json(data.get("action_space"), "action", path)
    custom["observation_space"], custom["action_space"] = observation_space, action_space
    for key in ("lr_schedule", "clip_range", "clip_range_vf", "exploration_schedule"):
        if key in custom:
            custom[key] = 0.0 if key != "clip_range" else 0.2  # training-only settings, not used to act
    try:
        return cls.load(str(path), device=device, custom_objects=custom)
    except (ValueError, KeyError, RuntimeError, TypeError, AttributeError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"could not load {path} as an SB3 {algo} model: {type(err).__name__}: {err}") from err
