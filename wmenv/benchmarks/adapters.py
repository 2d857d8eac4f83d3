"""Agent adapters: how the benchmark loads, optionally trains, and evaluates an agent in the REAL env.

An adapter satisfies :class:`AgentAdapter` and is built by a factory registered with
:func:`register_agent`. ``train`` and the ``progress`` keyword of ``evaluate`` are optional
extensions the runner uses when present. See ``wmenv.benchmarks`` for how a family registers one.
"""

from __future__ import annotations

import json
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
        import stable_baselines3

        try:
            self.model = getattr(stable_baselines3, algo).load(str(path), device=self.device)
        except (ValueError, KeyError, RuntimeError, zipfile.BadZipFile) as err:
            raise CheckpointError(f"could not load {path} as an SB3 {algo} model: {err}") from err
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
