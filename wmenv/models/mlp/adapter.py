"""The one place the MLP world model meets :class:`wmenv.core.WorldModel`.

State carried between calls: TensorDict ``[B]`` with ``"history"`` ``(B, K, D)``, the last ``K = context``
observations (real ones at reset, predicted ones after), so members reset individually.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.core.specs import space_to_spec
from wmenv.models.mlp.model import MLPWorldModel

__all__ = ["MLPImagination", "to_world_model"]


class MLPImagination:
    """A trained :class:`MLPWorldModel` as a batched, deterministic :class:`~wmenv.core.WorldModel`.

    Args:
        model: the trained model.
        sample_termination: draw ``terminated ~ Bernoulli(p)`` from the generator instead of ``p > 0.5``.
    """

    def __init__(self, model: MLPWorldModel, *, sample_termination: bool = False) -> None:
        self.model, self.sample_termination = model, sample_termination
        self.device = next(model.parameters()).device
        self.context_length = model.config.context  # read by wmenv.open_run(...).start_states()
        self.observation_spec = space_to_spec(model.observation_space, self.device)
        self.action_spec = space_to_spec(model.action_space, self.device)
        space = model.observation_space
        self.low = torch.as_tensor(space.low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(space.high, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """The last ``context`` real observations of each member (``[B]`` or ``[B, T]`` context)."""
        obs = torch.as_tensor(context["observation"], device=self.device).float()
        if obs.dim() == 2:  # [B] context: one observation each
            obs = obs.unsqueeze(1)
        k = self.context_length
        if obs.shape[1] < k:  # short context: repeat its first observation
            obs = torch.cat([obs[:, :1].expand(-1, k - obs.shape[1], -1), obs], 1)
        history = obs[:, -k:].clone()
        first = history[:, -1].to(self.observation_spec.dtype)
        return TensorDict({"state": {"history": history}, "observation": first}, batch_size=[obs.shape[0]])

    @torch.no_grad()
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        """Every member one step in one forward pass."""
        history = state["history"]
        nxt, reward, logit, _ = self.model.predict(history, action.to(self.device))
        nxt = nxt.clamp(self.low, self.high)
        p = torch.sigmoid(logit)
        if self.sample_termination:
            terminated = torch.rand(p.shape, generator=generator, device=p.device) < p
        else:
            terminated = p > 0.5
        b = history.shape[0]
        return TensorDict(
            {
                "state": {"history": torch.cat([history[:, 1:], nxt.unsqueeze(1)], 1)},
                "observation": nxt.to(self.observation_spec.dtype),
                "reward": reward.float(),
                "terminated": terminated,
                "info": {"termination_prob": p.float()},
            },
            batch_size=[b],
        )


def to_world_model(
    model: nn.Module, *, observation_mode: str | None = None, sample_termination: bool = False
) -> MLPImagination:
    """Wrap a trained :class:`MLPWorldModel` as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: the trained model (call ``eval()`` yourself if needed).
        observation_mode: ``None`` or ``"decoded"`` (the model has no latent space).
        sample_termination: sample ``terminated`` instead of thresholding at 0.5.

    Raises:
        TypeError: ``model`` is not an :class:`MLPWorldModel`.
        ConfigError: any other ``observation_mode``.
    """
    if not isinstance(model, MLPWorldModel):
        raise TypeError(f"to_world_model expects an MLPWorldModel, got {type(model).__name__}; build one with "
                        "wmenv.create_model('mlp-wm', env)")
    if observation_mode not in (None, "decoded"):
        raise ConfigError(f"mlp-wm has only observation_mode='decoded' (its observations are real ones), got "
                          f"{observation_mode!r}")
    return MLPImagination(model, sample_termination=sample_termination)
