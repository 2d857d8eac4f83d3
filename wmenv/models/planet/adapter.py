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

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.models.planet.model import PlanetWorldModel
from wmenv.nn.planning import CEMConfig, CEMPlanner
from wmenv.nn.rssm_imagination import ObservationMode, RSSMImagination

__all__ = ["PlanetImagination", "LatentPlanner", "to_world_model"]


class PlanetImagination(RSSMImagination):
    """A trained PlaNet world model as a batched :class:`~wmenv.core.WorldModel`.

    Args:
        world_model: the trained :class:`PlanetWorldModel`.
        observation_mode: ``"latent"`` emits ``concat(deter, stoch)`` (float32, unbounded);
            ``"decoded"`` emits decoder means in the real env's observation space.
        sample: sample prior (and burn-in posterior) latents with the generator (else means).
        sample_termination: ``terminated ~ Bernoulli(1 - continue)`` instead of ``continue < 0.5``.
        real_start_observation: in ``"decoded"`` mode emit the last real context observation at reset.
        planner: CEM sizes of :meth:`make_policy` (default: the model's config).

    The rest (burn-in, prior steps, the real-env filter :meth:`observe`) is
    :class:`~wmenv.nn.rssm_imagination.RSSMImagination`.
    """

    world_model: PlanetWorldModel

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
        super().__init__(
            world_model, observation_mode=observation_mode, sample=sample,
            sample_termination=sample_termination, real_start_observation=real_start_observation,
        )
        self.planner_config = planner or world_model.config.planner

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
