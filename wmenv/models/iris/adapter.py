"""The one place the IRIS family meets :class:`wmenv.core.WorldModel`.

Usage::

    model = wmenv.create_model("iris", "MinAtar/Breakout-v1", preset="minatar")   # ...then train it
    wm = to_world_model(model, observation_mode="decoded")      # uint8 10x10x4 frames
    env = WorldModelVectorEnv(wm, ReplayStartStates(rows, context_length=wm.context_length), num_envs=64)

The logic (token windows, KV cache, per-member random streams) is in
:class:`~wmenv.models.iris.imagination.IRISImagination`.
"""

from __future__ import annotations

from torch import nn

from wmenv.models.iris.imagination import IRISImagination, ObservationMode
from wmenv.models.iris.model import IRIS

__all__ = ["IRISImagination", "to_world_model"]


def to_world_model(
    model: nn.Module,
    *,
    observation_mode: ObservationMode = "decoded",
    temperature: float = 1.0,
    use_cache: bool = True,
    real_start_observation: bool = True,
    sample_reward: bool = True,
    sample_termination: bool = False,
    context_length: int | None = None,
    copy_state: bool = True,
) -> IRISImagination:
    """Wrap a trained :class:`~wmenv.models.iris.model.IRIS` module as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: the IRIS module (put it in ``eval()`` mode yourself; :func:`wmenv.open_run` does).
        observation_mode: ``"decoded"`` (frames in the real env's space) or ``"latent"`` (the frame's
            ``K`` code vectors, flattened).
        temperature: sampling temperature of the imagined tokens (0: argmax).
        use_cache: KV cache (``False``: recompute the window for every token; same outputs, slower).
        real_start_observation: emit the last real context frame at reset (decoded mode).
        sample_reward: sample the sign-reward class (else its expected value).
        sample_termination: sample terminations (else ``p > 0.5``).
        context_length: real steps burned in at reset (default ``world_model.burn_in``).
        copy_state: ``step`` does not modify its input state (``False``: in place, faster).

    Raises:
        TypeError: ``model`` is not an IRIS module.
        ConfigError: an unknown ``observation_mode`` or a bad argument.
    """
    if not isinstance(model, IRIS):
        raise TypeError(
            f"to_world_model expects an IRIS module, got {type(model).__name__}; build one with "
            "wmenv.create_model('iris', env)"
        )
    return IRISImagination(
        model, observation_mode=observation_mode, temperature=temperature, use_cache=use_cache,
        real_start_observation=real_start_observation, sample_reward=sample_reward,
        sample_termination=sample_termination, context_length=context_length, copy_state=copy_state,
    )
