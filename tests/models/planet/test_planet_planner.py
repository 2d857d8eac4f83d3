"""CEM planner (wmenv/nn/planning.py): optimum of known objectives, one batched call per step and iteration."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict, TensorDictBase

from wmenv.core.errors import ConfigError
from wmenv.nn.planning import CEMConfig, CEMPlanner


class CountingQuadratic:
    """``reward_t = -||a_t - target||^2`` with the target carried in the state; counts calls and batch sizes."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(
        self, state: TensorDictBase, action: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[TensorDictBase, torch.Tensor, None]:
        self.calls.append(action.shape[0])
        reward = -(action - state["target"]).pow(2).sum(-1)
        return state, reward, None


def test_continuous_cem_finds_the_quadratic_optimum_with_one_call_per_step_and_iteration() -> None:
    cfg = CEMConfig(horizon=5, candidates=200, iterations=6, top_k=20)
    planner = CEMPlanner(cfg, 2, discrete=False)
    target = torch.tensor([[0.3, -0.6], [-0.8, 0.1], [0.5, 0.5]])
    fn = CountingQuadratic()
    out = planner.plan(TensorDict({"target": target}, batch_size=[3]), fn, generator=torch.Generator().manual_seed(0))
    assert out["action"].shape == (3, 2) and out["plan"].shape == (3, 5, 2) and out["return"].shape == (3,)
    torch.testing.assert_close(out["action"], target, atol=0.05, rtol=0)
    torch.testing.assert_close(out["plan"], target[:, None].expand(3, 5, 2), atol=0.08, rtol=0)
    assert fn.calls == [3 * 200] * (6 * 5)  # ONE batched call per imagined step per iteration


def test_continuous_cem_respects_bounds_and_is_seeded() -> None:
    planner = CEMPlanner(CEMConfig(horizon=2, candidates=64, iterations=3, top_k=8), 1, discrete=False)
    state = TensorDict({"target": torch.tensor([[3.0]])}, batch_size=[1])  # optimum outside [-1, 1]
    a = planner.plan(state, CountingQuadratic(), generator=torch.Generator().manual_seed(1))["action"]
    b = planner.plan(state, CountingQuadratic(), generator=torch.Generator().manual_seed(1))["action"]
    assert torch.equal(a, b)
    assert 0.95 < float(a) <= 1.0


def test_categorical_cem_finds_the_best_discrete_sequence() -> None:
    cfg = CEMConfig(horizon=4, candidates=100, iterations=4, top_k=10)
    planner = CEMPlanner(cfg, 5, discrete=True)
    best = torch.tensor([[3, 0, 4, 1], [2, 2, 0, 4]])  # per member and time step
    calls: list[int] = []

    def step_fn(state: TensorDictBase, action: torch.Tensor, generator: torch.Generator | None = None):
        calls.append(action.shape[0])
        t = state["t"]
        want = state["best"].gather(1, t[:, None]).squeeze(1)
        reward = (action.argmax(-1) == want).float() - 0.1 * action.argmax(-1).float()
        return TensorDict({"best": state["best"], "t": t + 1}, batch_size=state.batch_size), reward, None

    state = TensorDict({"best": best, "t": torch.zeros(2, dtype=torch.long)}, batch_size=[2])
    out = planner.plan(state, step_fn, generator=torch.Generator().manual_seed(0))
    assert out["index"].tolist() == [3, 2]
    assert torch.equal(out["plan"].argmax(-1), best)
    assert out["action"].shape == (2, 5) and torch.equal(out["action"].argmax(-1), out["index"])
    assert calls == [2 * 100] * (4 * 4)


def test_continue_probability_discounts_later_rewards() -> None:
    planner = CEMPlanner(CEMConfig(horizon=3, candidates=4, iterations=1, top_k=1), 1, discrete=False)

    def step_fn(state, action, generator=None):
        return state, torch.ones(action.shape[0]), torch.full((action.shape[0],), 0.5)

    state = TensorDict({}, batch_size=[1])
    returns = planner.evaluate(state, torch.zeros(1, 4, 3, 1), step_fn)
    torch.testing.assert_close(returns, torch.full((1, 4), 1 + 0.5 + 0.25))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"top_k": 200, "candidates": 100}, r"planner.top_k=200 exceeds planner.candidates=100"),
        ({"horizon": 0}, r"planner.horizon: expected an int >= 1"),
        ({"discount": 1.5}, r"planner.discount: expected a float in \(0, 1\]"),
    ],
)
def test_invalid_planner_configs_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        CEMConfig(**kwargs)
