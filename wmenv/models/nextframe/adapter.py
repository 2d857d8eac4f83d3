"""The one place the next-frame predictor meets :class:`wmenv.core.WorldModel`.

State carried between calls: TensorDict ``[B]`` with ``"frames"`` ``(B, L, H, W)`` float in [0, 1], the
last ``L = max(context, frames per observation)`` frames (real ones at reset, predicted ones after,
quantised to uint8 steps when the real frames are uint8), so members reset individually.

Observation modes:

- ``"stack"`` (default): the predicted frame stack ``(K, *frame)``, ``K = context``, where ``frame`` is
  one real frame's shape (``(H, W, 1)`` or ``(H, W)``): what ``wmenv.make_env(env_id, frame_stack=K)``
  (Gymnasium's ``FrameStackObservation``) returns, so a policy trained in imagination acts there.
- ``"decoded"``: observations in the real env's own space (the last frame, or the last ``K'`` frames when
  the env already stacks them); what ``wmenv evaluate-model`` compares with real observations.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.core.specs import space_to_spec
from wmenv.models.nextframe.model import NextFramePredictor

__all__ = ["NextFrameImagination", "to_world_model", "OBSERVATION_MODES"]

OBSERVATION_MODES = ("stack", "decoded")


class NextFrameImagination:
    """A trained :class:`NextFramePredictor` as a batched, deterministic :class:`~wmenv.core.WorldModel`.

    Args:
        model: the trained model.
        observation_mode: ``"stack"`` or ``"decoded"`` (module docstring).
        sample_termination: draw ``terminated ~ Bernoulli(p)`` from the generator instead of ``p > 0.5``.
    """

    def __init__(self, model: NextFramePredictor, *, observation_mode: str = "stack",
                 sample_termination: bool = False) -> None:
        self.model, self.observation_mode, self.sample_termination = model, observation_mode, sample_termination
        self.device = next(model.parameters()).device
        self.context_length = model.config.context  # read by wmenv.open_run(...).start_states()
        self.keep = max(model.config.context, model.env_stack)
        box = model.frame_box
        self.uint8 = box.dtype == np.uint8
        if observation_mode == "decoded":
            space = box
        else:
            single = (*model.frame_hw, 1) if model.layout in ("hwc", "khwc") else tuple(model.frame_hw)
            high = 255 if self.uint8 else 1.0
            space = gym.spaces.Box(0, high, (model.config.context, *single), box.dtype)
        self.observation_space = space
        self.observation_spec = space_to_spec(space, self.device)
        self.action_spec = space_to_spec(model.action_space, self.device)

    def _quantise(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames * 255).round() / 255 if self.uint8 else frames

    def _observation(self, history: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, L, H, W)`` -> observations of the mode's space."""
        m = self.model
        if self.observation_mode == "stack":
            x = history[:, -m.config.context:]
            if m.layout in ("hwc", "khwc"):
                x = x[..., None]
        elif m.layout == "hw":
            x = history[:, -1]
        elif m.layout == "hwc":
            x = history[:, -1, ..., None]
        elif m.layout == "khw":
            x = history[:, -m.env_stack:]
        else:
            x = history[:, -m.env_stack:, ..., None]
        if self.uint8:
            return (x * 255).round().clamp(0, 255).to(torch.uint8)
        return x.to(self.observation_spec.dtype)

    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """The last frames of each member's real context (``[B]`` or ``[B, T]``)."""
        m = self.model
        obs = torch.as_tensor(context.get(m.key), device=self.device)
        obs_ndim = len(m.frame_box.shape)
        if obs.dim() == obs_ndim + 1:  # [B] context: one observation each
            obs = obs.unsqueeze(1)
        b = obs.shape[0]
        last = obs[:, -1]
        if m.layout in ("khw", "khwc"):  # the env's own stack is the history
            history = last.float() * m.scale
            history = history[..., 0] if m.layout == "khwc" else history
        else:
            history = m.frames_of(obs)  # (B, T, H, W)
        if history.shape[1] < self.keep:  # short context: repeat its first frame (FrameStack's padding)
            pad = history[:, :1].expand(-1, self.keep - history.shape[1], -1, -1)
            history = torch.cat([pad, history], 1)
        history = self._quantise(history[:, -self.keep:].clone())
        if self.observation_mode == "decoded":
            first = last.to(self.observation_spec.dtype).clone()
        else:
            first = self._observation(history)
        return TensorDict({"state": {"frames": history}, "observation": first}, batch_size=[b])

    @torch.no_grad()
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        """Every member one step in one forward pass."""
        history = state["frames"]
        k = self.model.config.context
        nxt, reward, logit = self.model.predict(history[:, -k:], action.to(self.device))
        history = torch.cat([history[:, 1:], self._quantise(nxt).unsqueeze(1)], 1)
        p = torch.sigmoid(logit)
        if self.sample_termination:
            terminated = torch.rand(p.shape, generator=generator, device=p.device) < p
        else:
            terminated = p > 0.5
        return TensorDict(
            {
                "state": {"frames": history},
                "observation": self._observation(history),
                "reward": reward.float(),
                "terminated": terminated,
                "info": {"termination_prob": p.float()},
            },
            batch_size=[history.shape[0]],
        )


def to_world_model(
    model: nn.Module, *, observation_mode: str | None = None, sample_termination: bool = False
) -> NextFrameImagination:
    """Wrap a trained :class:`NextFramePredictor` as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: the trained model (call ``eval()`` yourself if needed).
        observation_mode: ``"stack"`` (default) or ``"decoded"`` (module docstring).
        sample_termination: sample ``terminated`` instead of thresholding at 0.5.

    Raises:
        TypeError: ``model`` is not a :class:`NextFramePredictor`.
        ConfigError: another ``observation_mode`` (``"latent"``: the model has no latent space), or
            ``"decoded"`` when the frames are one entry of a ``Dict`` observation.
    """
    if not isinstance(model, NextFramePredictor):
        raise TypeError(f"to_world_model expects a NextFramePredictor, got {type(model).__name__}; build one with "
                        "wmenv.create_model('nextframe', env)")
    mode = observation_mode or "stack"
    if mode not in OBSERVATION_MODES:
        raise ConfigError(f"nextframe has observation_mode 'stack' (the predicted frame stack) or 'decoded' (the real "
                          f"env's observation space), got {observation_mode!r}; it has no latent space")
    if mode == "decoded" and model.key != ("observation",):
        raise ConfigError(f"nextframe reads its frames from {model.config.frames_key} of a Dict observation and "
                          "predicts only those; use observation_mode='stack'")
    return NextFrameImagination(model, observation_mode=mode, sample_termination=sample_termination)
