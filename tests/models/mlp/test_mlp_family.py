"""The ``mlp-wm`` family: registration, config, loss, adapter conformance and a run end to end."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict

import wmenv
from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.core.protocol import ReplayStartStates, WorldModel
from wmenv.models.mlp import MLPImagination, MLPWorldModel, MLPWorldModelConfig, to_world_model
from wmenv.registry import create_model, get_model_spec, list_models
from wmenv.testing import check_world_model_env, random_replay_batch, train_on_batch
from wmenv.train import Schedule, train

CARTPOLE_OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def cartpole_rows(episodes: int = 12, seed: int = 0) -> TensorDict:
    """Rows ``[N]`` in the replay format from random-policy CartPole episodes (final obs included)."""
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("observation", "action", "reward", "terminated", "truncated",
                                             "is_first", "is_last", "episode")}

    def add(obs, action, reward, term, trunc, first, ep):
        for k, v in zip(cols, (obs, action, reward, term, trunc, first, term or trunc, ep)):
            cols[k].append(v)

    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        add(obs, 0, 0.0, False, False, True, ep)
        done = False
        while not done:
            action = int(rng.integers(2))
            obs, reward, term, trunc, _ = env.step(action)
            add(obs, action, float(reward), term, trunc, False, ep)
            done = term or trunc
    env.close()
    dtypes = (torch.float32, torch.int64, torch.float32, torch.bool, torch.bool, torch.bool, torch.bool, torch.int64)
    data = {k: torch.as_tensor(np.asarray(v)).to(d) for (k, v), d in zip(cols.items(), dtypes)}
    return TensorDict(data, batch_size=[len(cols["episode"])])


def windows(rows: TensorDict, t: int) -> TensorDict:
    """Every length-``t`` slice of ``rows`` as a batch ``[B, t]`` (slices may cross episodes: ``is_first`` masks)."""
    n = rows.batch_size[0]
    idx = torch.arange(0, n - t, 3)[:, None] + torch.arange(t)[None]
    return rows[idx.reshape(-1)].reshape(idx.shape[0], t)


def test_registered_under_name_alias_and_family():
    assert "mlp-wm" in list_models()
    spec = get_model_spec("mlp")
    assert spec is get_model_spec("MLP-WM")
    assert (spec.name, spec.family, spec.policy, spec.envs, spec.observations) == (
        "mlp-wm", "mlp", None, (), ("vector",))
    assert spec.can_imagine and not spec.can_act
    assert {"tiny", "small"} <= set(spec.presets)
    assert spec.trainer_overrides("tiny")["seq_len"] > MLPWorldModelConfig.tiny().context


@pytest.mark.parametrize("bad", [{"hidden": 0}, {"layers": 0}, {"context": 0}, {"context": 1.5}, {"lr": 0.0},
                                 {"lr": -1e-3}, {"hidden": True}, {"grad_clip": 0}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        MLPWorldModelConfig(**bad)


def test_config_presets_and_overrides():
    assert MLPWorldModelConfig.tiny().hidden < MLPWorldModelConfig.small().hidden
    config = wmenv.create_config("mlp-wm", "tiny", {"context": "3"})
    assert isinstance(config, MLPWorldModelConfig) and config.context == 3 and config.hidden == 32
    with pytest.raises(ConfigError):
        wmenv.create_config("mlp-wm", "tiny", {"layers": "0"})


def test_unsupported_spaces_raise_at_build():
    disc = gym.spaces.Discrete(2)
    for obs_space in (gym.spaces.Box(0, 255, (8, 8, 3), np.uint8), gym.spaces.Box(-1, 1, (2, 2), np.float32),
                      gym.spaces.Discrete(4), gym.spaces.Dict({"a": CARTPOLE_OBS})):
        with pytest.raises(UnsupportedSpaceError):
            create_model("mlp-wm", observation_space=obs_space, action_space=disc, preset="tiny")
    with pytest.raises(UnsupportedSpaceError):
        create_model("mlp-wm", observation_space=CARTPOLE_OBS, action_space=gym.spaces.MultiDiscrete([2, 2]))


@pytest.mark.parametrize("context", [1, 3])
def test_loss_contract_and_masking(context):
    act = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
    model = create_model("mlp-wm", observation_space=CARTPOLE_OBS, action_space=act, preset="tiny", context=context)
    batch = random_replay_batch(CARTPOLE_OBS, act, b=3, t=8, observation_noise="normal")
    out = model.loss(batch)
    assert {"loss_obs", "loss_reward", "loss_term"} <= set(out.keys())
    assert all(v.shape == () and torch.isfinite(v) for v in out.values())
    # is_first at steps 0 and 4: the transition into step 4 (and, with context K, every window holding
    # step 4 but not as its last element) is masked: 1 of 7 for K=1, 3 of 5 for K=3
    assert out["valid_frac"].item() == pytest.approx({1: 6 / 7, 3: 2 / 5}[context])
    model.eval()  # no statistics updates: the same batch gives the same losses
    base = model.loss(batch)
    masked = batch.clone()
    masked["reward"][:, 4] += 100.0  # the target of a masked transition
    masked["terminated"][:, 4] = True
    for key in ("loss_reward", "loss_term", "loss_obs"):
        assert torch.allclose(model.loss(masked)[key], base[key])
    moved = batch.clone()
    moved["reward"][:, -1] += 100.0  # the target of a valid transition
    assert model.loss(moved)["loss_reward"] > base["loss_reward"] + 1.0
    with pytest.raises(ValueError, match="sequences"):
        model.loss(batch[:, :context])


def test_training_lowers_loss_and_learns_cartpole_dynamics():
    rows = cartpole_rows()
    batch = windows(rows, 8)
    model = create_model("mlp-wm", observation_space=CARTPOLE_OBS, action_space=gym.spaces.Discrete(2),
                         preset="tiny")
    losses = train_on_batch(model, batch, 150)
    assert losses[-1] < 0.3 * losses[0]
    out = model.eval().loss(batch)
    # the learned next observation beats "nothing changes" by a wide margin, and termination is learned
    mask = ~batch["is_first"][:, 1:]
    copy_mae = (batch["observation"][:, 1:] - batch["observation"][:, :-1]).abs().mean(-1)[mask].mean()
    assert out["obs_mae"] < 0.5 * copy_mae
    assert out["term_acc"] > 0.9
    # the normalisation statistics are buffers, so a checkpoint (state dict) holds them
    state = model.state_dict()
    assert {"obs_norm.mean", "obs_norm.var", "delta_norm.mean"} <= set(state)
    assert state["obs_norm.count"] > 0
    clone = create_model("mlp-wm", observation_space=CARTPOLE_OBS, action_space=gym.spaces.Discrete(2),
                         preset="tiny")
    clone.load_state_dict(state)
    assert torch.equal(clone.eval().loss(batch)["loss_obs"], out["loss_obs"])


def test_adapter_protocol_and_batched_step():
    rows = cartpole_rows(episodes=4)
    model = create_model("mlp-wm", observation_space=CARTPOLE_OBS, action_space=gym.spaces.Discrete(2),
                         preset="tiny", context=2).eval()
    wm = to_world_model(model)
    assert isinstance(wm, MLPImagination) and isinstance(wm, WorldModel) and wm.context_length == 2
    gen = torch.Generator().manual_seed(0)
    context = ReplayStartStates(rows, context_length=2).sample(5, generator=gen)
    out = wm.initial_state(context, generator=gen)
    assert torch.equal(out["observation"], context["observation"][:, -1])  # the last real observation
    assert out["state", "history"].shape == (5, 2, 4)
    action = torch.tensor([0, 1, 0, 1, 1])
    nxt = wm.step(out["state"], action, generator=gen)
    assert nxt["reward"].shape == (5,) and nxt["reward"].dtype == torch.float32
    assert nxt["terminated"].dtype == torch.bool and nxt["observation"].shape == (5, 4)
    # one batched pass equals member-by-member passes
    one = wm.step(out["state"][2:3], action[2:3], generator=gen)
    assert torch.allclose(one["observation"], nxt["observation"][2:3], atol=1e-6)
    assert torch.equal(nxt["state", "history"][:, 0], out["state", "history"][:, 1])
    with pytest.raises(ConfigError):
        to_world_model(model, observation_mode="latent")
    with pytest.raises(TypeError):
        to_world_model(torch.nn.Linear(2, 2))


def test_adapter_passes_conformance_on_all_faces():
    rows = cartpole_rows(episodes=6)
    model = create_model("mlp-wm", observation_space=CARTPOLE_OBS, action_space=gym.spaces.Discrete(2),
                         preset="tiny")
    train_on_batch(model, windows(rows, 8), 40)
    report = check_world_model_env(to_world_model(model.eval()), ReplayStartStates(rows), steps=30)
    assert set(report) >= {"gymnasium", "sb3", "vector[next_step]", "vector[same_step]", "torchrl", "sb3_vec"}


def test_adapter_conformance_continuous_actions_sampled_termination():
    obs_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    act = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
    model = create_model("mlp-wm", observation_space=obs_space, action_space=act, preset="tiny", context=2).eval()
    rows = random_replay_batch(obs_space, act, b=4, t=10).reshape(-1)
    wm = to_world_model(model, sample_termination=True)
    check_world_model_env(wm, ReplayStartStates(rows, context_length=2), steps=20, faces=("gymnasium", "torchrl"))


def test_train_and_open_run_end_to_end(tmp_path):
    run_dir = train("mlp-wm", "CartPole-v1", steps=30, preset="tiny", schedule=Schedule(seed_steps=300),
                    run_dir=tmp_path / "run", progress=False)
    run = wmenv.open_run(run_dir)
    assert run.spec.name == "mlp-wm" and isinstance(run.model(), MLPWorldModel)
    assert run.model().obs_norm.count.item() > 0  # statistics came back from the checkpoint
    assert run.horizon() == 500
    env = run.make_env("sb3", num_envs=4, seed=0)
    assert env.core.max_episode_steps == 500
    obs = env.reset()
    assert obs.shape == (4, 4) and obs.dtype == np.float32
    for _ in range(5):
        obs, rew, dones, infos = env.step(np.array([0, 1, 1, 0]))
    assert obs.shape == (4, 4) and rew.shape == (4,) and np.isfinite(obs).all()
    with pytest.raises(Exception, match="no policy"):
        run.policy()
