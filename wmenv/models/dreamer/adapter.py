"""The one place the Dreamer family meets :class:`wmenv.core.WorldModel`.

Usage::

    wm = create_model("dreamer-wm", env)             # or a DreamerAgent
    ...train...
    imagined = to_world_model(wm, observation_mode="decoded")
    core = ImaginationCore(imagined, ReplayStartStates(replay[:], context_length=8), num_envs=16)

State carried between calls: TensorDict ``[B]`` with ``"deter"`` ``(B, D)`` and ``"stoch"``
``(B, S, C)`` (or ``(B, S)`` for V1).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.data import TensorSpec, Unbounded

from wmenv.core.specs import space_to_spec
from wmenv.models.dreamer.model import DreamerWorldModel

__all__ = ["DreamerImagination", "to_world_model"]

ObservationMode = Literal["latent", "decoded"]


class DreamerImagination:
    """A trained Dreamer world model as a batched :class:`~wmenv.core.WorldModel`.

    Args:
        world_model: the trained :class:`DreamerWorldModel`.
        observation_mode: ``"latent"`` emits RSSM features ``concat(deter, flat stoch)`` (float32,
            unbounded); ``"decoded"`` emits decoder means in the real env's observation space.
        sample: sample latents from the generator (else take prior/posterior modes).
        sample_termination: draw ``terminated ~ Bernoulli(1 - continue)`` instead of
            thresholding the continue probability at 0.5.
        real_start_observation: in ``"decoded"`` mode emit the last real context observation at
            reset (it is exact) instead of its reconstruction.
    """

    def __init__(
        self,
        world_model: DreamerWorldModel,
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
        self.observation_spec: TensorSpec = (
            self.latent_spec if observation_mode == "latent" else self.decoded_spec
        )

    # ------------------------------------------------------------------ helpers
    def _emit(self, state: TensorDictBase) -> torch.Tensor:
        feat = self.world_model.rssm.features(state)
        if self.observation_mode == "latent":
            return feat.float()
        return self.world_model.decode(feat)

    def _context(self, context: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        wm = self.world_model
        obs = torch.as_tensor(context["observation"], device=self.device)
        obs_ndim = len(wm.observation_space.shape)
        if obs.dim() == obs_ndim + 1:  # [B] -> [B, 1]
            context = context.unsqueeze(1) if isinstance(context, TensorDictBase) else context
            obs = obs.unsqueeze(1)
        b, t = obs.shape[:2]
        keys = context.keys() if isinstance(context, TensorDictBase) else ()
        if "action" in keys:
            action = wm.actions.encode(
                context["action"].to(self.device).reshape(b, t, *wm.action_space.shape)
            )
        else:
            action = torch.zeros(b, t, wm.actions.dim, device=self.device)
        if "is_first" in keys:
            is_first = context["is_first"].to(self.device).reshape(b, t).bool().clone()
        else:
            is_first = torch.zeros(b, t, dtype=torch.bool, device=self.device)
        is_first[:, 0] = True  # a context always starts from the initial state
        return obs, action, is_first

    # ------------------------------------------------------------------ protocol
    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """Burn the posterior in on real context ``[B, T]`` (or ``[B]``) with ``observation``
        (and optionally ``action``, ``is_first``); emit the first observation."""
        wm = self.world_model
        obs, action, is_first = self._context(context)
        post, _ = wm.rssm.observe(wm.embed(obs), action, is_first, sample=self.sample, generator=generator)
        state = post[:, -1].select("deter", "stoch")
        if self.observation_mode == "decoded" and self.real_start_observation:
            first = obs[:, -1].to(self.decoded_spec.dtype).clone()
        else:
            first = self._emit(state)
        return TensorDict({"state": state, "observation": first}, batch_size=[obs.shape[0]])

    @torch.no_grad()
    def step(
        self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator
    ) -> TensorDictBase:
        """One prior step: next state, observation, reward (head mean) and terminated ``[B]``."""
        wm = self.world_model
        b = state.batch_size[0]
        nxt = wm.rssm.img_step(
            state.select("deter", "stoch"),
            wm.actions.encode(action.to(self.device)),
            sample=self.sample,
            generator=generator,
        ).select("deter", "stoch")
        feat = wm.rssm.features(nxt)
        cont = wm.cont_prob(feat)
        if self.sample_termination:
            u = torch.rand(cont.shape, generator=generator, device=cont.device)
            terminated = u >= cont
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

    # ------------------------------------------------------------------ real-env filter
    @torch.no_grad()
    def observe(
        self,
        state: TensorDictBase | None,
        action: torch.Tensor | np.ndarray | None,
        observation: torch.Tensor | np.ndarray,
        *,
        generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """Posterior update from a real observation (filtering in a real env).

        Args:
            state: ``[B]`` from the previous call, or ``None`` at an episode start.
            action: ``(B, *action_shape)`` env action taken before ``observation`` (``None`` at start).
            observation: ``(B, *obs_shape)`` real observation.
            generator: randomness for sampled latents (``None``: global RNG).

        Returns:
            TensorDict ``[B]`` with ``"state"`` and ``"observation"`` (latent features ``(B, F)``).
        """
        wm = self.world_model
        obs = torch.as_tensor(
            # contiguous copy: rendered frames may come with negative strides (flipped views)
            np.ascontiguousarray(observation) if not isinstance(observation, torch.Tensor) else observation,
            device=self.device,
        )
        b = obs.shape[0]
        if state is None or action is None:
            act = torch.zeros(b, 1, wm.actions.dim, device=self.device)
            is_first = torch.ones(b, 1, dtype=torch.bool, device=self.device)
            state = None
        else:
            a = torch.as_tensor(
                np.asarray(action) if not isinstance(action, torch.Tensor) else action, device=self.device
            )
            act = wm.actions.encode(a.reshape(b, *wm.action_space.shape)).unsqueeze(1)
            is_first = torch.zeros(b, 1, dtype=torch.bool, device=self.device)
        post, _ = wm.rssm.observe(
            wm.embed(obs.unsqueeze(1)), act, is_first, state, sample=self.sample, generator=generator
        )
        new = post[:, -1].select("deter", "stoch")
        return TensorDict({"state": new, "observation": wm.rssm.features(new).float()}, batch_size=[b])


def to_world_model(
    model: nn.Module,
    *,
    observation_mode: ObservationMode = "latent",
    sample: bool = True,
    sample_termination: bool = False,
) -> DreamerImagination:
    """Wrap a :class:`DreamerAgent` or :class:`DreamerWorldModel` as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: trained agent or world model (put it in ``eval()`` mode yourself if needed).
        observation_mode: ``"latent"`` (RSSM features) or ``"decoded"`` (real observation space).
        sample: sample latents with the core's generator (else modes: deterministic given the start).
        sample_termination: sample ``terminated`` from the continue head instead of thresholding.
    """
    wm = getattr(model, "world_model", model)
    if not isinstance(wm, DreamerWorldModel):
        raise TypeError(
            f"to_world_model expects a DreamerAgent or DreamerWorldModel, got {type(model).__name__}; "
            "build one with wmenv.create_model('dreamer', env) or create_model('dreamer-wm', env)"
        )
    return DreamerImagination(
        wm, observation_mode=observation_mode, sample=sample, sample_termination=sample_termination
    )
