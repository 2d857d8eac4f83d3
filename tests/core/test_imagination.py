"""The batched imagination core: resets, stepping, truncation, validation, determinism."""

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from wmenv.core import (
    CallableStartStates,
    ImaginationCore,
    InvalidActionError,
    ModelOutputError,
    ReplayStartStates,
    ResetNeededError,
    TensorDictStartStates,
)
from wmenv.testing import FakeWorldModel, fake_start_states


def make_core(n=8, horizon=5, **kw):
    model = FakeWorldModel(terminate_at=None, **kw)
    return ImaginationCore(model, fake_start_states(model), n, max_episode_steps=horizon)


def test_step_before_reset_is_refused():
    core = make_core()
    with pytest.raises(ResetNeededError, match="before reset"):
        core.step(torch.zeros(8, dtype=torch.long))


def test_horizon_truncation_and_partial_reset():
    core = make_core(n=4, horizon=3)
    core.reset(seed=0)
    for _t in range(3):
        out = core.step(torch.zeros(4, dtype=torch.long))
    assert out.truncated.all() and not out.terminated.any()
    before = core.observation.clone()
    mask = torch.tensor([True, False, True, False])
    obs = core.reset(mask)
    assert torch.equal(obs[~mask], before[~mask])
    assert core.elapsed.tolist() == [0, 3, 0, 3]
    # the observation handed out before the partial reset did not change under the caller
    assert torch.equal(before, out.observation)


def test_same_step_autoreset_reports_final_observation():
    core = make_core(n=4, horizon=2)
    core.reset(seed=1)
    core.step(torch.ones(4, dtype=torch.long))
    out = core.step(torch.ones(4, dtype=torch.long), autoreset="same_step")
    assert out.reset_mask.all()
    assert out.final_observation is not None
    assert not torch.equal(out.final_observation, out.observation)
    assert core.elapsed.tolist() == [0, 0, 0, 0]


def test_next_step_reset_mask_emits_reset_observation_with_zero_reward():
    core = make_core(n=3, horizon=50)
    core.reset(seed=2)
    mask = torch.tensor([False, True, False])
    out = core.step(torch.ones(3, dtype=torch.long), reset_mask=mask)
    assert out.reward[1] == 0 and not out.terminated[1] and not out.truncated[1]
    assert core.elapsed.tolist() == [1, 0, 1]


def test_same_seed_same_trajectory():
    trajs = []
    for _ in range(2):
        core = make_core(n=5)
        obs = [core.reset(seed=123)]
        for _ in range(4):
            obs.append(core.step(torch.tensor([0, 1, 0, 1, 1])).observation)
        trajs.append(torch.stack(obs))
    assert torch.equal(trajs[0], trajs[1])
    core = make_core(n=5)
    core.reset(seed=124)
    assert not torch.equal(core.observation, trajs[0][0])


@pytest.mark.parametrize(
    "action, match",
    [
        (torch.zeros(8, 1, dtype=torch.long), r"shape \(8,\)"),
        (torch.zeros(8), "integer actions"),
        (torch.full((8,), 5), r"integers in \[0, 1\]"),
        ([[1, 2]], r"shape \(8,\)"),
    ],
)
def test_bad_discrete_actions(action, match):
    core = make_core()
    core.reset(seed=0)
    with pytest.raises(InvalidActionError, match=match):
        core.step(action)


@pytest.mark.parametrize("n", [3, 40])  # small batches take a pure-Python range check
@pytest.mark.parametrize(
    "action, match",
    [
        (lambda n: np.zeros((n, 1), dtype=np.int64), r"shape \(\d+,\)"),
        (lambda n: np.zeros(n, dtype=np.float32), "integer actions"),
        (lambda n: np.r_[np.zeros(n - 1, dtype=np.int64), 5], r"env \d+ got 5"),
        (lambda n: np.r_[-1, np.zeros(n - 1, dtype=np.int64)], r"env 0 got -1"),
        (lambda n: np.array(["a"] * n), "numeric array"),
        (lambda n: np.r_[np.zeros(n - 1), -1].astype(">i4"), r"env \d+ got -1"),  # non-native byte order
        (lambda n: np.r_[np.zeros(n - 1), 9].astype(np.uint8), r"env \d+ got 9"),
    ],
)
def test_bad_numpy_discrete_actions(n, action, match):
    core = make_core(n=n)
    core.reset(seed=0)
    with pytest.raises(InvalidActionError, match=match):
        core.step(action(n))


def test_numpy_and_torch_actions_drive_identical_trajectories():
    for kind, draw in [("discrete", lambda g: g.integers(0, 2, 6)), ("continuous", lambda g: g.uniform(-1, 1, (6, 2)))]:
        cores = [make_core(n=6, action=kind) for _ in range(2)]
        for core in cores:
            core.reset(seed=3)
        rng = np.random.default_rng(0)
        for _ in range(4):
            a = draw(rng)
            a_np = a if kind == "discrete" else a.astype(np.float64)  # float64 NumPy is cast like torch input
            out_np = cores[0].step(a_np)
            out_t = cores[1].step(torch.as_tensor(a).to(torch.int64 if kind == "discrete" else torch.float32))
            assert torch.equal(out_np.observation, out_t.observation)
            assert torch.equal(out_np.reward, out_t.reward)


def test_numpy_actions_are_copied_not_shared():
    core = make_core(n=2, action="continuous")
    core.reset(seed=0)
    a = np.full((2, 2), 0.5, dtype=np.float32)
    assert not np.shares_memory(core.check_action(a).numpy(), a)


def test_bad_continuous_actions():
    core = make_core(action="continuous")
    core.reset(seed=0)
    with pytest.raises(InvalidActionError, match="out of range or NaN"):
        core.step(torch.full((8, 2), float("nan")))
    with pytest.raises(InvalidActionError, match=r"finite values in \["):
        core.step(torch.full((8, 2), 3.0))
    with pytest.raises(InvalidActionError, match="real-valued"):
        core.step(torch.ones(8, 2, dtype=torch.bool))
    assert core.step(torch.full((8, 2), 0.5)).observation.shape == (8, 4)
    # the same checks on NumPy input (what the Gymnasium and SB3 faces pass)
    with pytest.raises(InvalidActionError, match="out of range or NaN"):
        core.step(np.full((8, 2), np.nan, dtype=np.float32))
    with pytest.raises(InvalidActionError, match=r"finite values in \["):
        core.step(np.full((8, 2), 3.0))
    with pytest.raises(InvalidActionError, match="real-valued"):
        core.step(np.ones((8, 2), dtype=bool))
    # float noise just outside the bounds is clamped, not refused
    clamped = core.check_action(np.full((8, 2), 1.0 + 1e-7, dtype=np.float64))
    assert clamped.dtype == torch.float32 and float(clamped.max()) <= 1.0


class BrokenModel(FakeWorldModel):
    def __init__(self, fault, **kw):
        super().__init__(**kw)
        self.fault = fault

    def step(self, state, action, *, generator):
        out = super().step(state, action, generator=generator)
        if self.fault == "nan_obs":
            out["observation"] = out["observation"] * float("nan")
        elif self.fault == "inf_reward":
            out["reward"] = out["reward"] + float("inf")
        elif self.fault == "shape":
            out["observation"] = out["observation"][:, :2]
        elif self.fault == "missing":
            del out["terminated"]
        return out


@pytest.mark.parametrize(
    "fault, match",
    [
        ("nan_obs", "NaN/inf for batch members"),
        ("inf_reward", "reward: model returned NaN/inf"),
        ("shape", r"expected shape \(4, 4\)"),
        ("missing", r"missing \['terminated'\]"),
    ],
)
def test_model_output_errors(fault, match):
    model = BrokenModel(fault)
    core = ImaginationCore(model, fake_start_states(model), 4)
    core.reset(seed=0)
    with pytest.raises(ModelOutputError, match=match):
        core.step(torch.zeros(4, dtype=torch.long))


def test_decoded_observations_are_clamped_into_the_spec():
    class Loud(FakeWorldModel):
        def step(self, state, action, *, generator):
            out = super().step(state, action, generator=generator)
            out["observation"] = out["observation"] * 10.0
            return out

    model = Loud("image")
    core = ImaginationCore(model, fake_start_states(model), 2)
    core.reset(seed=0)
    obs = core.step(torch.zeros(2, dtype=torch.long)).observation
    assert obs.dtype == torch.uint8 and obs.shape == (2, 16, 16, 3)
    model = Loud("vector")
    core = ImaginationCore(model, fake_start_states(model), 2)
    core.reset(seed=0)
    obs = core.step(torch.zeros(2, dtype=torch.long)).observation
    assert obs.abs().max() <= 1.0


def test_replay_start_states_respect_episode_boundaries():
    episode = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    td = TensorDict({"episode": episode, "observation": torch.arange(9.0)[:, None]}, batch_size=[9])
    src = ReplayStartStates(td, context_length=3)
    ctx = src.sample(64, generator=torch.Generator().manual_seed(0))
    assert ctx.batch_size == torch.Size([64, 3])
    assert (ctx["episode"] == ctx["episode"][:, :1]).all()
    with pytest.raises(ValueError, match="at least 5 steps"):
        ReplayStartStates(td, context_length=5)


def test_start_state_sources_validate():
    with pytest.raises(ValueError, match="at least one row"):
        TensorDictStartStates(TensorDict({"x": torch.zeros(0, 2)}, batch_size=[0]))
    bad = CallableStartStates(lambda n, g: {"x": torch.zeros(n, 2)})
    with pytest.raises(TypeError, match="batch size"):
        bad.sample(3, generator=torch.Generator())


def test_non_protocol_model_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="reset_fn"):
        ImaginationCore(object(), None, 1)
