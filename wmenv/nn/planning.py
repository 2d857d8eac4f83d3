"""Cross-entropy-method (CEM) planning in a learned latent space (PlaNet, Hafner et al. 2019).

The planner never calls a model directly: it drives a batched ``step_fn`` that advances a whole
population of imagined states by one step. Per CEM iteration and imagined step there is exactly
ONE ``step_fn`` call, over ``B * candidates`` states at once::

    step_fn(state [B*N], action (B*N, A), generator) -> (next_state [B*N], reward (B*N,), continue (B*N,) | None)

Actions are *model action vectors*: values in ``[-1, 1]`` for continuous actions (the model's
normalised scale) and one-hot vectors for discrete ones. Continuous planning fits a diagonal
Gaussian over action sequences; discrete planning fits one categorical per time step (categorical
CEM). Every random draw comes from an explicit :class:`torch.Generator`.

:class:`PlanningPolicy` turns a model with a posterior filter into a NumPy-in / NumPy-out policy
for real envs (model-predictive control: filter, plan, act, re-plan every step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tensordict import TensorDictBase

from wmenv.core.errors import ConfigError

__all__ = ["CEMConfig", "CEMPlanner", "StepFn", "PlannableModel", "PlanningPolicy"]

#: ``step_fn(state [M], action (M, A), generator) -> (state [M], reward (M,), continue_prob (M,) or None)``.
StepFn = Callable[
    [TensorDictBase, torch.Tensor, torch.Generator | None],
    tuple[TensorDictBase, torch.Tensor, torch.Tensor | None],
]


@dataclass(frozen=True)
class CEMConfig:
    """Sizes of the cross-entropy-method planner.

    Defaults: horizon 12, 1000 candidates, top 100 as in the PlaNet paper; 8 refit iterations (the paper
    uses 10).
    """

    horizon: int = 12
    """Imagined steps per candidate action sequence."""
    candidates: int = 1000
    """Action sequences evaluated per iteration (one batched model call per imagined step)."""
    iterations: int = 8
    """Refits of the action distribution per planning step."""
    top_k: int = 100
    """Elite sequences the distribution is refitted to."""
    init_std: float = 1.0
    """Initial std of continuous actions (normalised scale [-1, 1])."""
    min_std: float = 0.0
    """Floor of the refitted std of continuous actions (0: the paper's plain refit)."""
    discount: float = 1.0
    """Per-step discount of imagined rewards (1: the paper's undiscounted sum)."""
    min_prob: float = 1e-3
    """Floor mixed into refitted categorical probabilities (discrete actions) so no action dies out."""

    def __post_init__(self) -> None:
        for name in ("horizon", "candidates", "iterations", "top_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"planner.{name}: expected an int >= 1, got {value!r}")
        if self.top_k > self.candidates:
            raise ConfigError(
                f"planner.top_k={self.top_k} exceeds planner.candidates={self.candidates}; "
                "lower top_k or raise candidates"
            )
        if not self.init_std > 0 or self.min_std < 0:
            raise ConfigError(f"planner: need init_std > 0 and min_std >= 0, got {self.init_std}, {self.min_std}")
        if not 0 < self.discount <= 1:
            raise ConfigError(f"planner.discount: expected a float in (0, 1], got {self.discount!r}")
        if not 0 <= self.min_prob < 1:
            raise ConfigError(f"planner.min_prob: expected a float in [0, 1), got {self.min_prob!r}")

    @classmethod
    def tiny(cls) -> CEMConfig:
        """A few candidates for tests."""
        return cls(horizon=4, candidates=32, iterations=2, top_k=4)


class CEMPlanner:
    """Batched CEM over action sequences for ``B`` start states at once.

    Args:
        config: planner sizes.
        action_dim: size ``A`` of model action vectors (number of classes when discrete).
        discrete: plan over one-hot vectors (categorical CEM) instead of ``[-1, 1]`` vectors.
    """

    def __init__(self, config: CEMConfig, action_dim: int, *, discrete: bool) -> None:
        if action_dim < 1:
            raise ConfigError(f"action_dim must be >= 1, got {action_dim}")
        self.config, self.action_dim, self.discrete = config, int(action_dim), bool(discrete)

    def evaluate(
        self, state: TensorDictBase, actions: torch.Tensor, step_fn: StepFn,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Imagined return of each candidate sequence.

        Args:
            state: start states ``[B]``.
            actions: ``(B, N, H, A)`` model action vectors.
            step_fn: batched one-step model (see module docstring); called ``H`` times.
            generator: passed to ``step_fn`` (for models that sample latents).

        Returns:
            ``(B, N)`` discounted sums of predicted rewards (weighted by predicted continuation).
        """
        b, n, h, a = actions.shape
        cur = state.unsqueeze(1).expand(b, n).reshape(b * n)
        total = torch.zeros(b * n, device=actions.device)
        weight = torch.ones(b * n, device=actions.device)
        for t in range(h):
            cur, reward, cont = step_fn(cur, actions[:, :, t].reshape(b * n, a), generator)
            total = total + weight * reward.reshape(b * n).float()
            weight = weight * self.config.discount
            if cont is not None:
                weight = weight * cont.reshape(b * n).float()
        return total.reshape(b, n)

    @torch.no_grad()
    def plan(
        self, state: TensorDictBase, step_fn: StepFn, *, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Plan from a batch of states.

        Args:
            state: start states ``[B]`` (posterior filter output or imagined states).
            step_fn: batched one-step model.
            generator: the only source of randomness.

        Returns:
            ``{"action": (B, A) first model action vector, "plan": (B, H, A) mean plan (continuous) or
            probabilities (discrete), "return": (B,) mean imagined return of the final elites}``;
            discrete planning adds ``"index": (B,)`` int64.
        """
        c = self.config
        b = state.batch_size[0]
        device = generator.device
        shape = (b, c.horizon, self.action_dim)
        if self.discrete:
            probs = torch.full(shape, 1.0 / self.action_dim, device=device)
        else:
            mean = torch.zeros(shape, device=device)
            std = torch.full(shape, c.init_std, device=device)
        for _ in range(c.iterations):
            if self.discrete:
                flat = probs.reshape(b * c.horizon, self.action_dim)
                idx = torch.multinomial(flat, c.candidates, replacement=True, generator=generator)
                idx = idx.reshape(b, c.horizon, c.candidates).permute(0, 2, 1)  # (B, N, H)
                cand = F.one_hot(idx, self.action_dim).float()
            else:
                eps = torch.randn((b, c.candidates, *shape[1:]), generator=generator, device=device)
                cand = (mean.unsqueeze(1) + std.unsqueeze(1) * eps).clamp(-1.0, 1.0)
            returns = self.evaluate(state, cand, step_fn, generator)  # (B, N)
            top_ret, top = returns.topk(c.top_k, dim=1)
            elite = cand.gather(1, top[:, :, None, None].expand(-1, -1, *shape[1:]))  # (B, K, H, A)
            if self.discrete:
                probs = (1 - c.min_prob) * elite.mean(1) + c.min_prob / self.action_dim
            else:
                mean = elite.mean(1)
                std = elite.std(1, unbiased=False).clamp(min=c.min_std)
        out = {"return": top_ret.mean(1)}
        if self.discrete:
            index = probs[:, 0].argmax(-1)
            out.update(action=F.one_hot(index, self.action_dim).float(), plan=probs, index=index)
        else:
            out.update(action=mean[:, 0], plan=mean)
        return out


class PlannableModel(Protocol):
    """What :class:`PlanningPolicy` needs from a world model.

    ``filter`` is the posterior update on a real observation; ``plan_step`` is the batched prior
    step used by the planner (``step_fn``); ``actions`` maps env actions to model vectors and back.
    """

    actions: Any

    def filter(
        self,
        state: TensorDictBase | None,
        action: torch.Tensor | None,
        observation: torch.Tensor,
        is_first: torch.Tensor,
        *,
        generator: torch.Generator | None,
    ) -> TensorDictBase: ...

    def plan_step(
        self, state: TensorDictBase, action: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[TensorDictBase, torch.Tensor, torch.Tensor | None]: ...


class PlanningPolicy:
    """Model-predictive control in a real env: filter the observation, plan with CEM, act.

    Callable ``obs (N, *obs_shape) np -> actions (N, *action_shape) np``; carries the filter state
    and the previous action. Call :meth:`reset` with a mask of members starting a new episode.

    Args:
        model: a :class:`PlannableModel` (e.g. a PlaNet or Modular-RSSM world model).
        planner: the CEM planner.
        explore: add exploration noise (continuous: Gaussian of std ``explore_noise`` in the
            normalised scale; discrete: a uniformly random action with probability ``explore_noise``).
        explore_noise: size of the exploration noise.
        seed: seed of the policy's own generator.
    """

    def __init__(
        self,
        model: PlannableModel,
        planner: CEMPlanner,
        *,
        explore: bool = False,
        explore_noise: float = 0.3,
        seed: int | None = None,
    ) -> None:
        self.model, self.planner = model, planner
        self.explore, self.explore_noise = explore, explore_noise
        self.device = next(iter(model.parameters())).device if hasattr(model, "parameters") else torch.device("cpu")
        self.generator = torch.Generator(self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))
        self.state: TensorDictBase | None = None
        self.prev_action: torch.Tensor | None = None
        self._first: torch.Tensor | None = None
        self.last_plan: dict[str, torch.Tensor] | None = None

    def reset(self, mask: np.ndarray | torch.Tensor | None = None) -> None:
        """Forget all members (``mask=None``) or those where ``mask`` is True."""
        if mask is None or self.state is None:
            self.state, self.prev_action, self._first = None, None, None
            return
        m = torch.as_tensor(np.asarray(mask), dtype=torch.bool, device=self.device).reshape(-1)
        self._first = m if self._first is None else (self._first | m)

    @torch.no_grad()
    def act(self, observation: torch.Tensor) -> torch.Tensor:
        """Env actions ``(N, *action_shape)`` (torch) for real observations ``(N, *obs_shape)``."""
        n = observation.shape[0]
        if self.state is None or self.state.batch_size[0] != n:
            is_first = torch.ones(n, dtype=torch.bool, device=self.device)
            self.state, self.prev_action = None, None
        else:
            is_first = self._first if self._first is not None else torch.zeros(n, dtype=torch.bool,
                                                                                 device=self.device)
        self.state = self.model.filter(self.state, self.prev_action, observation.to(self.device), is_first,
                                       generator=self.generator)
        self._first = None
        plan = self.planner.plan(self.state, self.model.plan_step, generator=self.generator)
        self.last_plan = plan
        vec = plan["action"]
        if self.explore and self.explore_noise > 0:
            if self.planner.discrete:
                u = torch.rand(n, generator=self.generator, device=self.device)
                rand = torch.randint(self.planner.action_dim, (n,), generator=self.generator, device=self.device)
                index = torch.where(u < self.explore_noise, rand, vec.argmax(-1))
                vec = F.one_hot(index, self.planner.action_dim).float()
            else:
                noise = torch.randn(vec.shape, generator=self.generator, device=self.device)
                vec = (vec + self.explore_noise * noise).clamp(-1.0, 1.0)
        action = self.model.actions.decode(vec)
        self.prev_action = action
        return action

    def __call__(self, observation: Any) -> np.ndarray:
        """NumPy actions for a NumPy (or torch) batch of observations."""
        obs = observation if isinstance(observation, torch.Tensor) else torch.as_tensor(np.asarray(observation))
        out = self.act(obs).cpu().numpy()
        return out.astype(np.int64) if self.planner.discrete else out.astype(np.float32)
