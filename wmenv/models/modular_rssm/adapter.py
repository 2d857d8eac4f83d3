"""The one place the Modular RSSM meets :class:`wmenv.core.WorldModel`.

Usage::

    model = create_model("modular-rssm", env, encoder="vit", backbone="transformer", decoder="conv")
    ...train...
    imagined = to_world_model(model, observation_mode="decoded")

State carried between calls: TensorDict ``[B]`` with ``"deter"``, ``"stoch"`` and the backbone
``"carry"`` (GRU ``{"h"}``, LSTM ``{"h", "c"}``, transformer ``{"tokens", "valid"}``), all fixed-shape,
so the imagination core resets members individually.
"""

from __future__ import annotations

from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.data import TensorSpec, Unbounded

from wmenv.core.specs import space_to_spec
from wmenv.models.modular_rssm.model import ModularRSSMWorldModel
from wmenv.nn.backbone_rssm import STATE_KEYS

__all__ = ["ModularRSSMImagination", "to_world_model"]

ObservationMode = Literal["latent", "decoded"]


class ModularRSSMImagination:
    """A trained Modular RSSM as a batched :class:`~wmenv.core.WorldModel`.

    Args:
        world_model: the trained :class:`ModularRSSMWorldModel`.
        observation_mode: ``"latent"`` emits ``concat(deter, flat stoch)`` (float32, unbounded);
            ``"decoded"`` emits decoder means in the real env's observation space.
        sample: sample latents with the generator (else modes / means).
        sample_termination: ``terminated ~ Bernoulli(1 - continue)`` instead of ``continue < 0.5``.
        real_start_observation: in ``"decoded"`` mode emit the last real context observation at reset.
    """

    def __init__(
        self,
        world_model: ModularRSSMWorldModel,
        *,
        observation_mode: ObservationMode = "latent",
        sample: bool = True,
        sample_termination: bool = False,
        real_start_observation: bool = True,
    ) -> None:
        if observation_mode not in ("latent", "decoded"):
            raise ValueError(f"observation_mode must be 'latent' or 'decoded', got {observation_mode!r}")
        self.world_model = world_model
        self.observation_mode = observation_mode
        self.sample, self.sample_termination = sample, sample_termination
        self.real_start_observation = real_start_observation
        self.device = next(world_model.parameters()).device
        self.action_spec: TensorSpec = space_to_spec(world_model.action_space, self.device)
        self.latent_spec: TensorSpec = Unbounded(
            shape=(world_model.rssm.feature_dim,), dtype=torch.float32, device=self.device
        )
        self.decoded_spec: TensorSpec = space_to_spec(world_model.observation_space, self.device)
        self.observation_spec: TensorSpec = self.latent_spec if observation_mode == "latent" else self.decoded_spec

    def _emit(self, state: TensorDictBase) -> torch.Tensor:
        feat = self.world_model.rssm.features(state).float()
        return feat if self.observation_mode == "latent" else self.world_model.decode(feat)

    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """Burn the posterior in on real context ``[B, T]`` (or ``[B]``) with ``observation`` (and
        optionally ``action``, ``is_first``); emit the first observation."""
        wm = self.world_model
        obs = torch.as_tensor(context["observation"], device=self.device)
        if obs.dim() == len(wm.observation_space.shape) + 1:  # [B] -> [B, 1]
            context, obs = context.unsqueeze(1), obs.unsqueeze(1)
        b, t = obs.shape[:2]
        if "action" in context.keys():
            action = wm.actions.encode(context["action"].to(self.device).reshape(b, t, *wm.action_space.shape))
        else:
            action = torch.zeros(b, t, wm.actions.dim, device=self.device)
        if "is_first" in context.keys():
            is_first = context["is_first"].to(self.device).reshape(b, t).bool().clone()
        else:
            is_first = torch.zeros(b, t, dtype=torch.bool, device=self.device)
        is_first[:, 0] = True  # every context starts from the initial state
        _, _, state = wm.rssm.observe(wm.embed(obs), action, is_first, sample=self.sample, generator=generator)
        if self.observation_mode == "decoded" and self.real_start_observation:
            first = obs[:, -1].to(self.decoded_spec.dtype).clone()
        else:
            first = self._emit(state)
        return TensorDict({"state": state, "observation": first}, batch_size=[b])

    @torch.no_grad()
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        """One prior step of all members: next state, observation, reward and terminated ``[B]``."""
        wm = self.world_model
        b = state.batch_size[0]
        nxt = wm.rssm.img_step(
            state.select(*STATE_KEYS), wm.actions.encode(action.to(self.device)), sample=self.sample,
            generator=generator,
        ).select(*STATE_KEYS)
        feat = wm.rssm.features(nxt)
        cont = wm.cont_prob(feat)
        if self.sample_termination:
            terminated = torch.rand(cont.shape, generator=generator, device=cont.device) >= cont
        else:
            terminated = cont < 0.5
        return TensorDict(
            {
                "state": nxt,
                "observation": self._emit(nxt),
                "reward": wm.reward(feat).float(),
                "terminated": terminated,
                "info": TensorDict({"continue_prob": cont.float()}, batch_size=[b]),
            },
            batch_size=[b],
        )


def to_world_model(
    model: nn.Module,
    *,
    observation_mode: ObservationMode = "latent",
    sample: bool = True,
    sample_termination: bool = False,
) -> ModularRSSMImagination:
    """Wrap a :class:`ModularRSSMWorldModel` as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: the trained model (call ``eval()`` yourself if needed).
        observation_mode: ``"latent"`` or ``"decoded"``.
        sample: sample latents with the core's generator (else modes: deterministic given the start).
        sample_termination: sample ``terminated`` from the continue head instead of thresholding.

    Raises:
        TypeError: ``model`` is not a Modular RSSM.
    """
    wm = getattr(model, "world_model", model)
    if not isinstance(wm, ModularRSSMWorldModel):
        raise TypeError(
            f"to_world_model expects a ModularRSSMWorldModel, got {type(model).__name__}; build one with "
            "wmenv.create_model('modular-rssm', env)"
        )
    return ModularRSSMImagination(wm, observation_mode=observation_mode, sample=sample,
                                  sample_termination=sample_termination)
