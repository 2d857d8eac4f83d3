"""An RSSM world model (Dreamer, PlaNet, Modular RSSM) as a batched :class:`wmenv.core.WorldModel`.

The families' ``adapter.py`` modules subclass :class:`RSSMImagination` and add only what differs
(type checks in ``to_world_model``, PlaNet's planner hook, the Modular RSSM's backbone carry).
Any model satisfying :class:`RSSMWorldModelLike` works.

State carried between calls: TensorDict ``[B]`` with the keys :attr:`RSSMImagination.state_keys`
(``"deter"`` and ``"stoch"`` by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import TensorSpec, Unbounded

from wmenv.core.specs import space_to_spec

__all__ = ["ObservationMode", "RSSMLike", "RSSMWorldModelLike", "RSSMImagination"]

ObservationMode = Literal["latent", "decoded"]


class RSSMLike(Protocol):
    """The recurrent state-space model of an :class:`RSSMWorldModelLike`."""

    feature_dim: int

    def observe(
        self,
        embed: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: TensorDictBase | None = None,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[TensorDictBase, ...]:
        """Posterior filter over ``(B, T)``; returns ``(posterior [B, T], prior [B, T], ...)``."""
        ...

    def img_step(
        self, state: TensorDictBase, action: torch.Tensor, *, sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """One prior step: state ``[B]`` and encoded action ``(B, A)`` -> next state ``[B]``."""
        ...

    def features(self, state: TensorDictBase) -> torch.Tensor:
        """Head input ``(..., feature_dim)`` of a state."""
        ...


class ActionCodecLike(Protocol):
    """Env actions <-> the RSSM's action vectors."""

    dim: int

    def encode(self, action: torch.Tensor) -> torch.Tensor:
        """``(..., *action_shape)`` env actions -> ``(..., dim)`` vectors."""
        ...


class RSSMWorldModelLike(Protocol):
    """What :class:`RSSMImagination` needs of a trained world model."""

    rssm: RSSMLike
    actions: ActionCodecLike
    observation_space: Any  # gymnasium.Space
    action_space: Any  # gymnasium.Space

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, T, *obs_shape)`` observations -> ``(B, T, E)`` embeddings."""
        ...

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Features -> decoder means in the observation space."""
        ...

    def reward(self, features: torch.Tensor) -> torch.Tensor:
        """Features -> predicted reward ``(...)``."""
        ...

    def cont_prob(self, features: torch.Tensor) -> torch.Tensor | None:
        """Features -> continue probability ``(...)``, or ``None`` without a continue head."""
        ...


class RSSMImagination:
    """A trained RSSM world model as a batched :class:`~wmenv.core.WorldModel`.

    Args:
        world_model: the trained model (see :class:`RSSMWorldModelLike`).
        observation_mode: ``"latent"`` emits RSSM features ``concat(deter, flat stoch)`` (float32,
            unbounded); ``"decoded"`` emits decoder means in the real env's observation space.
        sample: sample latents from the generator (else take prior/posterior modes or means).
        sample_termination: draw ``terminated ~ Bernoulli(1 - continue)`` instead of
            thresholding the continue probability at 0.5 (no continue head: never terminates).
        real_start_observation: in ``"decoded"`` mode emit the last real context observation at
            reset (it is exact) instead of its reconstruction.
    """

    #: keys of the state carried between calls
    state_keys: ClassVar[tuple[str, ...]] = ("deter", "stoch")

    def __init__(
        self,
        world_model: RSSMWorldModelLike,
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
        feat = self.world_model.rssm.features(state).float()
        return feat if self.observation_mode == "latent" else self.world_model.decode(feat)

    def _context(self, context: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        wm = self.world_model
        obs = torch.as_tensor(context["observation"], device=self.device)
        if obs.dim() == len(wm.observation_space.shape) + 1:  # [B] -> [B, 1]
            context = context.unsqueeze(1) if isinstance(context, TensorDictBase) else context
            obs = obs.unsqueeze(1)
        b, t = obs.shape[:2]
        keys = context.keys() if isinstance(context, TensorDictBase) else ()
        if "action" in keys:
            action = wm.actions.encode(context["action"].to(self.device).reshape(b, t, *wm.action_space.shape))
        else:
            action = torch.zeros(b, t, wm.actions.dim, device=self.device)
        if "is_first" in keys:
            is_first = context["is_first"].to(self.device).reshape(b, t).bool().clone()
        else:
            is_first = torch.zeros(b, t, dtype=torch.bool, device=self.device)
        is_first[:, 0] = True  # a context always starts from the initial state
        return obs, action, is_first

    def _posterior(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        is_first: torch.Tensor,
        state: TensorDictBase | None,
        generator: torch.Generator | None,
    ) -> TensorDictBase:
        """Filter observations ``(B, T, ...)``; the last posterior state ``[B]`` (:attr:`state_keys`)."""
        wm = self.world_model
        post = wm.rssm.observe(wm.embed(obs), action, is_first, state, sample=self.sample, generator=generator)[0]
        return post[:, -1].select(*self.state_keys)

    # ------------------------------------------------------------------ protocol
    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """Burn the posterior in on real context ``[B, T]`` (or ``[B]``) with ``observation``
        (and optionally ``action``, ``is_first``); emit the first observation."""
        obs, action, is_first = self._context(context)
        state = self._posterior(obs, action, is_first, None, generator)
        if self.observation_mode == "decoded" and self.real_start_observation:
            first = obs[:, -1].to(self.decoded_spec.dtype).clone()
        else:
            first = self._emit(state)
        return TensorDict({"state": state, "observation": first}, batch_size=[obs.shape[0]])

    @torch.no_grad()
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        """One prior step: next state, observation, reward (head mean) and terminated ``[B]``."""
        wm = self.world_model
        b = state.batch_size[0]
        nxt = wm.rssm.img_step(
            state.select(*self.state_keys), wm.actions.encode(action.to(self.device)), sample=self.sample,
            generator=generator,
        ).select(*self.state_keys)
        feat = wm.rssm.features(nxt)
        cont = wm.cont_prob(feat)
        if cont is None:
            cont = torch.ones(b, device=self.device)
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
            observation if isinstance(observation, torch.Tensor) else np.ascontiguousarray(observation),
            device=self.device,
        )
        b = obs.shape[0]
        if state is None or action is None:
            act = torch.zeros(b, 1, wm.actions.dim, device=self.device)
            is_first = torch.ones(b, 1, dtype=torch.bool, device=self.device)
            state = None
        else:
            a = torch.as_tensor(action if isinstance(action, torch.Tensor) else np.asarray(action), device=self.device)
            act = wm.actions.encode(a.reshape(b, *wm.action_space.shape)).unsqueeze(1)
            is_first = torch.zeros(b, 1, dtype=torch.bool, device=self.device)
        new = self._posterior(obs.unsqueeze(1), act, is_first, state, generator)
        return TensorDict({"state": new, "observation": wm.rssm.features(new).float()}, batch_size=[b])
