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

from wmenv.core.errors import CheckpointError, ConfigError, UnknownNameError, UnsupportedSpaceError

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

EvaluationResult = dict[str, list[float] | list[int]]
"""``{"episode_returns": [float, ...], "episode_lengths": [int, ...]}``, one entry per episode."""


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


_REGISTRY: dict[str, Callable[..., AgentAdapter]] = {}
_ALIASES: dict[str, str] = {}
_BASE_REGISTRY = _REGISTRY  # families register their agents into this one, lazily


def register_agent(
    name: str, factory: Callable[..., AgentAdapter], aliases: Iterable[str] = (), overwrite: bool = False
) -> None:
    """Registers an agent factory under ``name`` (and ``aliases``).

    Args:
        name: Canonical agent name, used in results and output directories.
        factory: Called as ``factory(env_id=..., device=..., env_kwargs=..., preset=..., **extra)``.
        aliases: Other names accepted by :func:`get_agent`.
        overwrite: Replace an existing registration instead of raising ``ConfigError``.
    """
    aliases = tuple(aliases)
    taken = [n for n in (name, *aliases) if n in _REGISTRY or n in _ALIASES]
    if taken and not overwrite:
        raise ConfigError(f"agent name(s) {taken} already registered; pass overwrite=True to replace")
    _REGISTRY[name] = factory
    _ALIASES.pop(name, None)
    _ALIASES.update(dict.fromkeys(aliases, name))


def list_agents() -> list[str]:
    """Canonical names of the registered agents, sorted."""
    from wmenv.benchmarks.families import ensure_family_agents

    ensure_family_agents()
    return sorted(_REGISTRY)


def resolve_agent_name(name: str) -> str:
    """Canonical name of ``name`` (which may be an alias); ``UnknownNameError`` if unregistered."""
    from wmenv.benchmarks.families import ensure_family_agents

    ensure_family_agents()
    if name in _REGISTRY or name in _ALIASES:
        return _ALIASES.get(name, name)
    hint = "Families register theirs with wmenv.benchmarks.adapters.register_agent."
    raise UnknownAgentError("agent", name, list(_REGISTRY) + list(_ALIASES), hint=hint)


def get_agent_factory(name: str) -> Callable[..., AgentAdapter]:
    """The factory registered as ``name`` (or an alias of it)."""
    return _REGISTRY[resolve_agent_name(name)]


def get_agent(name: str, **kwargs: Any) -> AgentAdapter:
    """Builds the agent registered as ``name``; ``kwargs`` go to its factory."""
    return get_agent_factory(name)(**kwargs)


def make_real_env(env_id: str, render_mode: str | None = None, **env_kwargs: Any) -> Any:
    """Creates the real env with ``wmenv.envs.make.make_env`` (imported lazily).

    Raises:
        UnknownEnvError: ``env_id`` is not known to any backend (with close matches).
    """
    from wmenv.envs.make import make_env

    if render_mode is not None:
        env_kwargs["render_mode"] = render_mode
    return make_env(env_id, **env_kwargs)


class RealEnvEvaluator:
    """Runs a ``policy(obs) -> action`` callable in the real env for N seeded episodes.

    The env is created lazily on first use and kept until :meth:`close`, so repeated calls are
    cheap. Episode ``i`` of a call resets with ``seed + i`` (unseeded if ``seed`` is ``None``).

    Args:
        env_id: Env id passed to ``make_env``.
        env_kwargs: Extra keyword arguments for ``make_env``.
        observation_wrapper: Applied to the created env (e.g. the ``wmenv.envs.latent`` wrapper that
            shows the policy the world model's latent state instead of pixels).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        observation_wrapper: Callable | None = None,
    ) -> None:
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.observation_wrapper = observation_wrapper
        self._env: Any = None
        self._render_mode: str | None = None

    def env(self, render: bool = False) -> Any:
        """The (wrapped) real env, created on first use or when ``render`` changes."""
        mode = "human" if render else None
        if self._env is None or mode != self._render_mode:
            self.close()
            env = make_real_env(self.env_id, render_mode=mode, **self.env_kwargs)
            self._env = self.observation_wrapper(env) if self.observation_wrapper else env
            self._render_mode = mode
        return self._env

    def run(
        self,
        policy: Callable[[Any], Any],
        num_episodes: int,
        seed: int | None = None,
        render: bool = False,
        on_episode_start: Callable[[int | None], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> EvaluationResult:
        """Plays ``num_episodes`` episodes with ``policy``.

        Args:
            policy: Maps one observation to one action.
            num_episodes: Number of episodes (>= 1).
            seed: Base seed; episode ``i`` resets with ``seed + i``.
            render: Render in a window (``render_mode="human"``).
            on_episode_start: Called with the episode's reset seed before it starts (e.g. to clear a
                recurrent state or seed the policy's own RNG).
            progress: Called with ``1`` after each finished episode.

        Returns:
            ``{"episode_returns": [...], "episode_lengths": [...]}``.
        """
        if num_episodes < 1:
            raise ConfigError(f"num_episodes must be >= 1, got {num_episodes}")
        env = self.env(render)
        returns: list[float] = []
        lengths: list[int] = []
        for i in range(num_episodes):
            ep_seed = None if seed is None else int(seed) + i
            if on_episode_start is not None:
                on_episode_start(ep_seed)
            obs, _ = env.reset(seed=ep_seed)
            total, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(policy(obs))
                total += float(reward)
                steps += 1
                done = bool(terminated) or bool(truncated)
            returns.append(total)
            lengths.append(steps)
            if progress is not None:
                progress(1)
        return {"episode_returns": returns, "episode_lengths": lengths}

    def close(self) -> None:
        """Closes the env if one is open."""
        if self._env is not None:
            self._env.close()
            self._env = None


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
    a wrapper by ``wmenv.envs.latent.latent_observation_wrapper(checkpoint, device=...)``.
    """
    if observation_wrapper is not None or world_model is None:
        return observation_wrapper
    try:
        from wmenv.envs.latent import latent_observation_wrapper  # type: ignore[attr-defined]
    except ImportError as err:
        raise ConfigError(
            f"world_model={str(world_model)!r} needs wmenv.envs.latent.latent_observation_wrapper, which "
            "is not available; pass observation_wrapper=<callable(env) -> env> instead"
        ) from err
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
