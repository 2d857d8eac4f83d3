"""The one place PlaNet meets :class:`wmenv.core.WorldModel`.

Usage::

    agent = create_model("planet", env)          # ...train...
    imagined = to_world_model(agent, observation_mode="decoded")
    env = WorldModelVectorEnv(imagined, ReplayStartStates(replay_as_tensordict(replay), 8), 16)

State carried between calls: TensorDict ``[B]`` with ``"deter"`` ``(B, D)`` and ``"stoch"`` ``(B, S)``.
In ``"latent"`` mode observations are ``concat(deter, stoch)``, and :meth:`PlanetImagination.make_policy`
gives the CEM planner acting on exactly those observations, so the same planner acts in imagination.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.data import TensorSpec, Unbounded

from wmenv.core.specs import space_to_spec
from wmenv.models.planet.model import PlanetWorldModel
from wmenv.nn.planning import CEMConfig, CEMPlanner

__all__ = ["PlanetImagination", "LatentPlanner", "to_world_model"]

ObservationMode = Literal["latent", "decoded"]


class PlanetImagination:
    """A trained PlaNet world model as a batched :class:`~wmenv.core.WorldModel`.

    Args:
        world_model: the trained :class:`PlanetWorldModel`.
        observation_mode: ``"latent"`` emits ``concat(deter, stoch)`` (float32, unbounded);
            ``"decoded"`` emits decoder means in the real env's observation space.
        sample: sample prior (and burn-in posterior) latents with the generator (else means).
        sample_termination: ``terminated ~ Bernoulli(1 - continue)`` instead of ``continue < 0.5``.
        real_start_observation: in ``"decoded"`` mode emit the last real context observation at reset.
        planner: CEM sizes of :meth:`make_policy` (default: the model's config).
    """

    def __init__(
        self,
        world_model: PlanetWorldModel,
        *,
        observation_mode: ObservationMode = "latent",
        sample: bool = True,
        sample_termination: bool = False,
        real_start_observation: bool = True,
        planner: CEMConfig | None = None,
    ) -> None:
        if observation_mode not in ("latent", "decoded"):
            raise ValueError(f"observation_mode must be 'latent' or 'decoded', got {observation_mode!r}")
        self.world_model = world_model
        self.observation_mode = observation_mode
        self.sample, self.sample_termination = sample, sample_termination
        self.real_start_observation = real_start_observation
        self.planner_config = planner or world_model.config.planner
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

    def _context(self, context: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        wm = self.world_model
        obs = torch.as_tensor(context["observation"], device=self.device)
        if obs.dim() == len(wm.observation_space.shape) + 1:  # [B] -> [B, 1]
            context = context.unsqueeze(1)
            obs = obs.unsqueeze(1)
        b, t = obs.shape[:2]
        keys = context.keys()
        if "action" in keys:
            action = wm.actions.encode(context["action"].to(self.device).reshape(b, t, *wm.action_space.shape))
        else:
            action = torch.zeros(b, t, wm.actions.dim, device=self.device)
        if "is_first" in keys:
            is_first = context["is_first"].to(self.device).reshape(b, t).bool().clone()
        else:
            is_first = torch.zeros(b, t, dtype=torch.bool, device=self.device)
        is_first[:, 0] = True  # every context starts from the initial state
        return obs, action, is_first

    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """Burn the posterior in on real context ``[B, T]`` (or ``[B]``) with ``observation`` (and
        optionally ``action``, ``is_first``); emit the first observation."""
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
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        """One prior step of all members: next state, observation, reward and terminated ``[B]``."""
        wm = self.world_model
        b = state.batch_size[0]
        nxt = wm.rssm.img_step(
            state.select("deter", "stoch"), wm.actions.encode(action.to(self.device)), sample=self.sample,
            generator=generator,
        ).select("deter", "stoch")
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

    def state_from_latent(self, latent: torch.Tensor) -> TensorDictBase:
        """Split latent observations ``(B, D + S)`` back into a state ``[B]``."""
        d = self.world_model.rssm.deter
        return TensorDict({"deter": latent[:, :d], "stoch": latent[:, d:]}, batch_size=[latent.shape[0]])

    def make_policy(self, seed: int | None = None, planner: CEMConfig | None = None) -> LatentPlanner:
        """The CEM planner as a policy over this adapter's latent observations (``observation_mode="latent"``)."""
        if self.observation_mode != "latent":
            raise ValueError(
                "make_policy plans from latent observations; build the adapter with observation_mode='latent', "
                "or use PlanetAgent.make_policy() (posterior filter) on decoded observations"
            )
        return LatentPlanner(self, seed=seed, planner=planner)


class LatentPlanner:
    """CEM acting in imagination: ``latent observations (N, D + S) -> env actions (N, ...)`` (NumPy).

    Args:
        imagination: the adapter whose latent observations are planned from.
        seed: seed of the planner's generator.
        planner: CEM sizes (default: the adapter's).
    """

    def __init__(self, imagination: PlanetImagination, seed: int | None = None,
                 planner: CEMConfig | None = None) -> None:
        wm = imagination.world_model
        self.imagination = imagination
        self.planner = CEMPlanner(planner or imagination.planner_config, wm.actions.dim,
                                  discrete=wm.actions.discrete)
        self.generator = torch.Generator(imagination.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    @torch.no_grad()
    def __call__(self, observation: Any) -> np.ndarray:
        """Env actions for a batch of latent observations."""
        wm = self.imagination.world_model
        latent = torch.as_tensor(np.asarray(observation) if not isinstance(observation, torch.Tensor)
                                 else observation, dtype=torch.float32, device=self.imagination.device)
        out = self.planner.plan(self.imagination.state_from_latent(latent), wm.plan_step, generator=self.generator)
        action = wm.actions.decode(out["action"]).cpu().numpy()
        return action.astype(np.int64) if wm.actions.discrete else action.astype(np.float32)


def to_world_model(
    model: nn.Module,
    *,
    observation_mode: ObservationMode = "latent",
    sample: bool = True,
    sample_termination: bool = False,
    planner: CEMConfig | None = None,
) -> PlanetImagination:
    """Wrap a :class:`PlanetAgent` or :class:`PlanetWorldModel` as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: trained agent or world model (call ``eval()`` yourself if needed).
        observation_mode: ``"latent"`` (``concat(deter, stoch)``) or ``"decoded"`` (real observation space).
        sample: sample latents with the core's generator (else means: deterministic given the start).
        sample_termination: sample ``terminated`` from the continue head instead of thresholding.
        planner: CEM sizes of the adapter's :meth:`~PlanetImagination.make_policy`.

    Raises:
        TypeError: ``model`` is not a PlaNet agent or world model.
    """
    wm = getattr(model, "world_model", model)
    if not isinstance(wm, PlanetWorldModel):
        raise TypeError(
            f"to_world_model expects a PlanetAgent or PlanetWorldModel, got {type(model).__name__}; "
            "build one with wmenv.create_model('planet', env)"
        )
    return PlanetImagination(wm, observation_mode=observation_mode, sample=sample,
                             sample_termination=sample_termination, planner=planner)
