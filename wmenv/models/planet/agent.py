"""PlaNet agent: the world model plus the CEM planner, acting by model-predictive control.

PlaNet learns no policy network: in the real env it filters each observation with the posterior,
plans with CEM in latent space and executes the first action of the plan, re-planning every step.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from tensordict import TensorDictBase
from torch import nn

from wmenv.models.planet.config import PlanetConfig
from wmenv.models.planet.model import PlanetWorldModel
from wmenv.nn.planning import CEMConfig, CEMPlanner, PlanningPolicy

__all__ = ["PlanetAgent"]


class PlanetAgent(nn.Module):
    """World model + CEM planner (the registered ``planet`` model).

    Args:
        config: :class:`PlanetConfig`.
        observation_space: ``Box`` float vectors or 64x64x3 uint8 images.
        action_space: ``Discrete(n)`` (categorical CEM) or 1-D ``Box`` (Gaussian CEM).
    """

    def __init__(self, config: PlanetConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config = config
        self.observation_space, self.action_space = observation_space, action_space
        self.world_model = PlanetWorldModel(config, observation_space, action_space)

    @property
    def discrete(self) -> bool:
        """Whether actions are ``Discrete``."""
        return self.world_model.actions.discrete

    def planner(self, config: CEMConfig | None = None) -> CEMPlanner:
        """A CEM planner over this model's action vectors (``config`` default: ``self.config.planner``)."""
        wm = self.world_model
        return CEMPlanner(config or self.config.planner, wm.actions.dim, discrete=wm.actions.discrete)

    @torch.no_grad()
    def plan(
        self, state: TensorDictBase, *, generator: torch.Generator, config: CEMConfig | None = None
    ) -> torch.Tensor:
        """Env actions ``(B, *action_shape)`` planned from model states ``[B]`` (posterior or imagined).

        One batched model call per imagined step and CEM iteration, over ``B * candidates`` states.
        """
        out = self.planner(config).plan(state, self.world_model.plan_step, generator=generator)
        return self.world_model.actions.decode(out["action"])

    def make_policy(
        self, explore: bool = True, seed: int | None = None, planner: CEMConfig | None = None
    ) -> PlanningPolicy:
        """NumPy-in / NumPy-out MPC policy for real envs (posterior filter + CEM); see :class:`PlanningPolicy`.

        Args:
            explore: add the config's exploration noise and plan with ``config.collect_planner``
                (collection), or act greedily with ``config.planner`` (evaluation).
            seed: seed of the policy's generator.
            planner: CEM sizes overriding the config's.
        """
        cem = planner or (self.config.collect_planner if explore else self.config.planner)
        return PlanningPolicy(
            self.world_model, self.planner(cem), explore=explore, explore_noise=self.config.explore_noise, seed=seed
        )

    def loss(self, batch: TensorDictBase) -> TensorDictBase:
        """The world model's loss (PlaNet trains nothing else); see :meth:`PlanetWorldModel.loss`."""
        return self.world_model.loss(batch)

    def optim_groups(self) -> dict[str, dict]:
        """The world model's optimizer group."""
        return self.world_model.optim_groups()
