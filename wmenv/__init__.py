"""wmenv: train learned world models and use them as ordinary RL environments.

Public surface (imported lazily, so ``import wmenv`` stays cheap)::

    import wmenv
    run_dir = wmenv.train.train("dreamer-wm", "CartPole-v1", steps=300, preset="tiny")  # the training entry point
    run = wmenv.open_run(run_dir)                                # a run directory: model, replay, real env
    env = run.make_env("sb3", num_envs=64)                       # or wmenv.make_imagination_env(run_dir, "sb3")
    wmenv.make_env("CartPole-v1")                                # real envs, one factory
    wmenv.create_model("dreamer", env="CartPole-v1", preset="tiny")
    wmenv.create_config("dreamer", env="walker-walk", seed=7)    # TorchWM-style keyword overrides
    wmenv.list_models(); wmenv.list_envs(); wmenv.list_envs("dreamer"); wmenv.get_model_spec("dreamerv3")
    wmenv.run_benchmark("random", "CartPole-v1", seeds=[0], episodes=5, out_dir="results")

The four faces over the one imagination core: ``WorldModelEnv``, ``WorldModelVectorEnv``,
``WorldModelTorchRLEnv``, ``WorldModelSB3VecEnv``. ``import wmenv`` registers the Gymnasium id
``wmenv/WorldModel-v0`` and the ids bound with ``wmenv register`` / :func:`register_env`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("wmenv")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

#: public name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "open_run": ("wmenv.runs", "open_run"),
    "Run": ("wmenv.runs", "Run"),
    "make_imagination_env": ("wmenv.runs", "make_imagination_env"),
    "load_imagination": ("wmenv.runs", "load_imagination"),
    "WorldModelEnv": ("wmenv.envs.gymnasium", "WorldModelEnv"),
    "WorldModelVectorEnv": ("wmenv.envs.vector", "WorldModelVectorEnv"),
    "WorldModelTorchRLEnv": ("wmenv.envs.torchrl", "WorldModelTorchRLEnv"),
    "WorldModelSB3VecEnv": ("wmenv.envs.sb3", "WorldModelSB3VecEnv"),
    "LatentObservationWrapper": ("wmenv.envs.latent", "LatentObservationWrapper"),
    "register_env": ("wmenv.envs.registration", "register_env"),
    "ModelSpec": ("wmenv.registry", "ModelSpec"),
    "create_config": ("wmenv.registry", "create_config"),
    "create_model": ("wmenv.registry", "create_model"),
    "get_model_spec": ("wmenv.registry", "get_model_spec"),
    "list_models": ("wmenv.registry", "list_models"),
    "register_model": ("wmenv.registry", "register_model"),
    "TrainingRun": ("wmenv.train.session", "TrainingRun"),
    "run_benchmark": ("wmenv.benchmarks.runner", "run_benchmark"),
    "list_env_backends": ("wmenv.envs.make", "list_env_backends"),
    "get_env_backend_spec": ("wmenv.envs.make", "get_env_backend_spec"),
}

__all__ = ["__version__", "make_env", "list_envs", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in ("train", "runs", "envs", "benchmarks", "models", "registry"):  # subpackages, on first use
        return importlib.import_module(f"wmenv.{name}")
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wmenv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def make_env(env_id: str, backend: str = "auto", **kwargs: Any) -> Any:
    """Make a real environment (Gymnasium, ALE, dm_control, MuJoCo); see :mod:`wmenv.envs.make`."""
    from wmenv.envs.make import make_env as _make_env

    return _make_env(env_id, backend=backend, **kwargs)


def list_envs(model: str | None = None, *, backend: str | None = None) -> list[str]:
    """Known real env ids: of every backend, of one ``backend=``, or those a registered ``model``
    (family) supports (its ``ModelSpec.envs``; for families open to any env, every known id whose
    kind it accepts is not checked here: all ids are returned).

    A name that is an env backend (``"dmc"``, ``"ale"``, ...) is taken as ``backend`` (the old call form).
    """
    from wmenv.envs.make import list_env_backends
    from wmenv.envs.make import list_envs as _list_envs

    if model is not None and backend is None and model.lower() in {b.lower() for b in list_env_backends()}:
        return _list_envs(model)
    if model is not None and str(model).lower() != "auto":
        from wmenv.registry import get_model_spec

        spec = get_model_spec(model)
        if spec.envs:
            return sorted(spec.envs)
    return _list_envs(backend)


def _register_gymnasium_ids() -> None:
    from wmenv.envs.registration import register_envs

    register_envs()


_register_gymnasium_ids()
