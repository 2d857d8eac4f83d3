"""Open a run directory: the trained model, as a world model, a policy, an env face, its real env.

Every run directory wmenv writes (``wmenv train``, ``wmenv demo``, the World Models stages, the
recipes, benchmark agents) holds ``checkpoint.pt`` (tensors and plain data, loaded with
``weights_only=True``), a replay snapshot of the real experience (plain ``.npy`` arrays and JSON)
and ``run.json`` (:class:`~wmenv.train.runinfo.RunInfo`). Nothing in it is unpickled::

    import wmenv
    run = wmenv.open_run("runs/cartpole")
    env = run.make_env("sb3", num_envs=64, observation_mode="latent")  # imagination, horizon = real env's
    real = run.real_env(observation_mode="latent")                       # the real env, seen by the model
    policy = run.policy()                                               # acting families only

:func:`make_imagination_env` and :func:`load_imagination` are one-call forms of the same.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from wmenv.core.errors import CheckpointError, ConfigError, UnsupportedSpaceError
from wmenv.core.protocol import ReplayStartStates, StartStates
from wmenv.train.runinfo import RunInfo, read_run_info

__all__ = [
    "FACES",
    "Run",
    "open_run",
    "resolve_checkpoint",
    "load_imagination",
    "make_imagination_env",
    "make_registered_env",
    "make_registered_vector_env",
    "latent_observation_wrapper",
    "space_key",
]

FACES = ("gymnasium", "vector", "torchrl", "sb3")
CHECKPOINT = "checkpoint.pt"
_DEFAULT_HORIZON = "run"  # sentinel: the run's real-env time limit


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file from a file path or a run directory holding ``checkpoint.pt``."""
    if not isinstance(path, str | os.PathLike):
        raise CheckpointError(f"checkpoint must be a path (str or os.PathLike), got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p} (give a checkpoint.pt file or a run directory holding one)")
    return p


def space_key(space: gym.Space) -> tuple[Any, ...]:
    """What must agree for a policy/model to fit an env's space: type, shape, dtype (``n`` for Discrete)."""
    if isinstance(space, gym.spaces.Discrete):
        return ("Discrete", int(space.n))
    if isinstance(space, gym.spaces.Dict):
        return ("Dict", tuple((k, space_key(s)) for k, s in space.spaces.items()))
    return (type(space).__name__, tuple(getattr(space, "shape", None) or ()), str(getattr(space, "dtype", "")))


class Run:
    """A run directory opened for use (see the module docstring). Build it with :func:`open_run`.

    Args:
        path: a run directory or its ``checkpoint.pt``.
        device: torch device the model is loaded on.

    Raises:
        CheckpointError: missing, corrupt, foreign or hostile checkpoint or run record.
    """

    def __init__(self, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> None:
        from wmenv.train.checkpoint import load_checkpoint

        self.checkpoint = resolve_checkpoint(path)
        self.path = self.checkpoint.parent
        self.device = device
        self.meta: dict[str, Any] = load_checkpoint(self.checkpoint, map_location="cpu")
        self.info: RunInfo = read_run_info(self.meta, self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, model={self.info.model!r}, env={self.info.env_id!r})"

    # ------------------------------------------------------------------ the model
    @cached_property
    def spec(self) -> Any:
        """The registered :class:`~wmenv.registry.ModelSpec` of the run's model."""
        from wmenv.registry import get_model_spec

        return get_model_spec(self.meta["model_name"])

    @cached_property
    def _model(self) -> torch.nn.Module:
        from wmenv.train.checkpoint import model_from_checkpoint

        return model_from_checkpoint(self.meta, device=self.device, path=self.checkpoint).eval()

    def model(self) -> torch.nn.Module:
        """The trained module (``eval()`` mode; loaded once)."""
        return self._model

    @property
    def config(self) -> Any:
        """The model's config dataclass."""
        self.model()
        return self.meta["config_obj"]

    @property
    def observation_space(self) -> gym.Space:
        """The real env's observation space the model was trained on."""
        self.model()
        return self.meta["observation_space_obj"]

    @property
    def action_space(self) -> gym.Space:
        """The real env's action space the model was trained on."""
        self.model()
        return self.meta["action_space_obj"]

    def world_model(self, observation_mode: str | None = None, **adapter_kwargs: Any) -> Any:
        """The model as a :class:`~wmenv.core.protocol.WorldModel` (the family's ``to_world_model``).

        Raises:
            CheckpointError: the family cannot be imagined in.
            ConfigError: the adapter rejects an argument (e.g. an unknown ``observation_mode``).
        """
        to_world_model = self.spec.to_world_model
        if to_world_model is None:
            raise CheckpointError(f"model {self.info.model!r} of {self.path} has no world-model adapter; "
                                  "it cannot be imagined in")
        if observation_mode is not None:
            adapter_kwargs["observation_mode"] = observation_mode
        try:
            return to_world_model(self.model(), **adapter_kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"cannot build the {self.info.model} world model from {self.path}: {err}") from err

    def replay(self, replay_dir: str | os.PathLike | None = None) -> Any:
        """The run's replay snapshot as a (scratch-backed) replay buffer."""
        from wmenv.train.replay import load_replay

        if replay_dir is None:
            snapshot = (self.meta.get("extra") or {}).get("replay_snapshot")
            if not snapshot or not isinstance(snapshot, str) or Path(snapshot).name != snapshot:
                raise CheckpointError(
                    f"{self.checkpoint} names no replay snapshot to start imagined episodes from; pass replay_dir="
                )
            replay_dir = self.path / snapshot
        return load_replay(replay_dir)

    def start_states(
        self,
        context_length: int | None = None,
        *,
        world_model: Any = None,
        replay_dir: str | os.PathLike | None = None,
    ) -> StartStates:
        """Real replay slices imagined episodes start from (``context_length`` steps burned in; default
        the world model's ``context_length`` attribute, else 8)."""
        from wmenv.train.replay import replay_as_tensordict

        data = replay_as_tensordict(self.replay(replay_dir)).clone()
        if context_length is None:
            context_length = int(getattr(world_model, "context_length", 8)) if world_model is not None else 8
        return ReplayStartStates(data, context_length=context_length)

    def policy(self, *, seed: int | None = None, explore: bool = False) -> Any:
        """The model's own batched policy in the real env (``obs (N, ...) -> actions (N, ...)``).

        Raises:
            CheckpointError: the family does not act (e.g. a world model without actor).
        """
        if self.spec.policy is None:
            raise CheckpointError(f"model {self.info.model!r} of {self.path} has no policy of its own; train one "
                                  "in imagination (run.make_env(...)) instead")
        return self.spec.policy(self.model(), seed=seed, explore=explore)

    # ------------------------------------------------------------------ envs
    def horizon(self) -> int | None:
        """The real env's time limit: recorded by the run, else read from the env id's registration."""
        if self.info.max_episode_steps is not None:
            return int(self.info.max_episode_steps)
        if not self.info.env_id:
            return None
        from wmenv.envs.make import make_env
        from wmenv.train.session import env_time_limit

        try:
            env = make_env(self.info.env_id, **self.info.env_kwargs)
        except Exception:  # noqa: BLE001 - an env that cannot be made here has no horizon to give
            return None
        try:
            return env_time_limit(env)
        finally:
            env.close()

    def real_env(self, observation_mode: str | None = None, *, check: bool = True, world_model: Any = None,
                 **env_kwargs: Any) -> gym.Env:
        """The real env the run learned from; with ``observation_mode="latent"`` seen through the model's
        posterior filter (:class:`~wmenv.envs.latent.LatentObservationWrapper`), as a policy trained on
        latent imagination sees it.

        Raises:
            ConfigError: the run records no env id.
            UnsupportedSpaceError: the env's spaces are not the model's (``check=True``).
        """
        from wmenv.envs.latent import LatentObservationWrapper
        from wmenv.envs.make import make_env

        if not self.info.env_id:
            raise ConfigError(f"{self.path} does not record the env it was trained on; make it yourself "
                              "(wmenv.make_env) and pass it to the faces")
        env = make_env(self.info.env_id, **{**self.info.env_kwargs, **env_kwargs})
        if check:
            try:
                self.check_spaces(env, self.info.env_id)
            except UnsupportedSpaceError:
                env.close()
                raise
        if observation_mode == "latent":
            env = LatentObservationWrapper(env, world_model or self.world_model(observation_mode="latent"))
        return env

    def check_spaces(self, env: gym.Env, env_id: str = "the env") -> None:
        """Raise :class:`UnsupportedSpaceError` naming both spaces when ``env`` is not the model's."""
        for kind in ("observation", "action"):
            ours, theirs = getattr(self, f"{kind}_space"), getattr(env, f"{kind}_space")
            if space_key(ours) != space_key(theirs):
                raise UnsupportedSpaceError(
                    f"{env_id} has {kind} space {theirs}, but the model {self.info.model!r} in {self.path} was "
                    f"trained on {ours}; use the env the run was trained on ({self.info.env_id})"
                )

    def make_env(
        self,
        face: str = "gymnasium",
        *,
        num_envs: int = 16,
        max_episode_steps: int | None | str = _DEFAULT_HORIZON,
        observation_mode: str | None = None,
        context_length: int | None = None,
        seed: int | None = None,
        device: str | torch.device | None = None,
        world_model: Any = None,
        **face_kwargs: Any,
    ) -> Any:
        """An imagination env face over the run's model, episodes starting from its real replay.

        Args:
            face: ``"gymnasium"`` (``WorldModelEnv``), ``"vector"``, ``"torchrl"`` or ``"sb3"``.
            num_envs: batch size of the vector faces.
            max_episode_steps: imagination horizon (default: the real env's time limit; ``None``: none).
            observation_mode: ``"latent"`` or ``"decoded"`` (default: the family's).
            context_length: steps of real context per reset.
            seed: seed of the env's generator.
            device: torch device of the face.
            world_model: a ready world model of this run (default: built with ``observation_mode``).
            **face_kwargs: passed to the face (``autoreset_mode``, ``render_mode``, ...).
        """
        from wmenv.envs.gymnasium import WorldModelEnv
        from wmenv.envs.sb3 import WorldModelSB3VecEnv
        from wmenv.envs.torchrl import WorldModelTorchRLEnv
        from wmenv.envs.vector import WorldModelVectorEnv

        if face not in FACES:
            raise ConfigError(f"unknown face {face!r}; expected one of {list(FACES)}")
        if max_episode_steps == _DEFAULT_HORIZON:
            max_episode_steps = self.horizon()
        model = world_model if world_model is not None else self.world_model(observation_mode)
        start = self.start_states(context_length, world_model=model)
        if face == "gymnasium":
            return WorldModelEnv(model, start, max_episode_steps=max_episode_steps, seed=seed, device=device,
                                 **face_kwargs)
        cls = {"vector": WorldModelVectorEnv, "torchrl": WorldModelTorchRLEnv, "sb3": WorldModelSB3VecEnv}[face]
        return cls(model, start, num_envs, max_episode_steps=max_episode_steps, seed=seed, device=device,
                   **face_kwargs)

    # ------------------------------------------------------------------ old layouts
    def convert(self) -> Path:
        """Rewrite the checkpoint of a run written before run schema 2 with its run record (and
        ``run.json``); a run already in the current schema is left as it is. Returns the checkpoint."""
        from wmenv.train.checkpoint import atomic_torch_save
        from wmenv.train.runinfo import write_run_json

        extra = self.meta.setdefault("extra", {})
        if "run" not in extra:
            extra["run"] = self.info.to_dict()
            payload = {k: v for k, v in self.meta.items() if not k.endswith("_obj")}
            atomic_torch_save(payload, self.checkpoint)
        write_run_json(self.path, self.info, self.meta.get("config"))
        return self.checkpoint


def open_run(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Run:
    """Open a run directory (or its ``checkpoint.pt``); see :class:`Run`."""
    return Run(path, device=device)


def load_imagination(
    checkpoint: str | os.PathLike,
    *,
    observation_mode: str | None = None,
    context_length: int | None = None,
    device: str | torch.device | None = None,
    replay_dir: str | os.PathLike | None = None,
    **adapter_kwargs: Any,
) -> tuple[Any, StartStates]:
    """``(world_model, start_states)`` of a run: ``open_run(path).world_model(...)`` and ``.start_states(...)``."""
    run = open_run(checkpoint, device=device or "cpu")
    world_model = run.world_model(observation_mode, **adapter_kwargs)
    return world_model, run.start_states(context_length, world_model=world_model, replay_dir=replay_dir)


def make_imagination_env(
    checkpoint: str | os.PathLike,
    face: str = "gymnasium",
    **kwargs: Any,
) -> Any:
    """One call from a run directory to an env face: ``open_run(checkpoint).make_env(face, **kwargs)``."""
    return open_run(checkpoint, device=kwargs.get("device") or "cpu").make_env(face, **kwargs)


def _registered_kwargs(kwargs: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, start_states, face kwargs)`` for the Gymnasium entry points from ``checkpoint=`` or ``model=``."""
    checkpoint = kwargs.pop("checkpoint", None)
    if kwargs.get("render_mode") is None:
        kwargs.pop("render_mode", None)
    if checkpoint is not None:
        run = open_run(checkpoint, device=kwargs.get("device") or "cpu")
        model = kwargs.pop("model", None) or run.world_model(kwargs.pop("observation_mode", None))
        start = kwargs.pop("start_states", None) or run.start_states(kwargs.pop("context_length", None),
                                                                     world_model=model)
        if kwargs.get("max_episode_steps", _DEFAULT_HORIZON) == _DEFAULT_HORIZON:
            kwargs["max_episode_steps"] = run.horizon()
        return model, start, kwargs
    if "model" not in kwargs:
        raise TypeError("gym.make('wmenv/WorldModel-v0') needs checkpoint=RUN_DIR, or model= (a WorldModel) "
                        "with start_states=")
    return kwargs.pop("model"), kwargs.pop("start_states", None), kwargs


def make_registered_env(**kwargs: Any) -> gym.Env:
    """Entry point of ``gym.make("wmenv/WorldModel-v0", checkpoint=... | model=..., ...)``."""
    from wmenv.envs.gymnasium import WorldModelEnv

    model, start, rest = _registered_kwargs(dict(kwargs))
    return WorldModelEnv(model, start, **rest)


def make_registered_vector_env(num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    """Vector entry point of ``wmenv/WorldModel-v0`` (one batched ``WorldModelVectorEnv``)."""
    from wmenv.envs.vector import WorldModelVectorEnv

    model, start, rest = _registered_kwargs(dict(kwargs))
    return WorldModelVectorEnv(model, start, num_envs=num_envs, **rest)


def _adapter_of_module(model: torch.nn.Module, adapter_kwargs: dict[str, Any]) -> Any:
    """The world model with ``observe`` that some registered family makes of a trained module."""
    from wmenv.registry import get_model_spec, list_models

    for name in list_models():
        to_wm = get_model_spec(name).to_world_model
        try:
            candidate = to_wm(model, **adapter_kwargs) if to_wm is not None else None
        except (TypeError, ValueError, AttributeError):
            continue
        if callable(getattr(candidate, "observe", None)):
            return candidate
    raise TypeError(f"no registered family turns {type(model).__name__} into a world model with an observe() "
                    "filter; pass an adapter (e.g. wmenv.models.dreamer.to_world_model(model))")


def latent_observation_wrapper(world_model: Any, device: str = "cpu", **adapter_kwargs: Any) -> Any:
    """``env -> LatentObservationWrapper(env, adapter)`` for the benchmark runner.

    Args:
        world_model: an adapter with ``observe``, or a run directory / checkpoint of a model whose
            family's ``to_world_model`` gives one.
        device: device of the model.
        **adapter_kwargs: forwarded to the family's ``to_world_model`` (e.g. ``sample=False``).
    """
    from wmenv.envs.latent import LatentObservationWrapper

    adapter = world_model
    if isinstance(world_model, str | os.PathLike):
        adapter = open_run(world_model, device=device).world_model(**adapter_kwargs)
    elif isinstance(world_model, torch.nn.Module):  # a trained module: its family's adapter filters
        adapter = _adapter_of_module(world_model.to(device).eval(), adapter_kwargs)
    if not callable(getattr(adapter, "observe", None)):
        raise TypeError(
            f"{type(adapter).__name__} has no observe() filter; pass a world model adapter with observe() "
            "(e.g. open_run(path).world_model(observation_mode='latent')) or a run directory"
        )

    def wrap(env: gym.Env) -> gym.Env:
        return LatentObservationWrapper(env, adapter)

    return wrap
