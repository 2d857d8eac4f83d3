"""The diffusion family: registration of diamond / ddpm / dit, config validation, spaces, losses, checkpoints."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmenv.config import apply_overrides, list_presets, make_preset
from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.models.diamond import DiamondAgent, DiamondConfig, FrameCodec
from wmenv.nn.diffusion import DDPM, EDM
from wmenv.nn.dit import FrameDenoiserDiT
from wmenv.nn.unet import FrameDenoiserUNet
from wmenv.registry import create_config, create_model, get_model_spec, list_models, make_policy
from wmenv.testing import random_replay_batch, train_on_batch

MINATAR = gym.spaces.Box(0, 1, (10, 10, 4), np.uint8)
ATARI = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
ACTIONS = gym.spaces.Discrete(3)


def binary_batch(b: int = 3, t: int = 6, seed: int = 0):
    batch = random_replay_batch(MINATAR, ACTIONS, b, t, seed=seed)
    batch["observation"] = batch["observation"] % 2
    return batch


def test_three_models_registered_from_one_config():
    assert {"diamond", "ddpm", "dit"} <= set(list_models())
    parts = {}
    for name in ("diamond", "ddpm", "dit"):
        spec = get_model_spec(name)
        assert spec.family == "diamond" and spec.config_cls is DiamondConfig
        assert spec.policy is make_policy and spec.can_act and spec.can_imagine
        assert spec.stages == ("collect", "world_model", "actor_critic") and spec.run_stages is not None
        assert spec.observations == ("image",) and spec.default_preset == "tiny"
        cfg = create_config(name)
        parts[name] = (cfg.objective, cfg.denoiser)
    assert parts == {"diamond": ("edm", "unet"), "ddpm": ("ddpm", "unet"), "dit": ("edm", "dit")}
    assert get_model_spec("diamond-ddpm") is get_model_spec("ddpm")
    assert set(list_presets(DiamondConfig)) >= {"tiny", "minatar", "atari100k"}


def test_atari100k_preset_has_the_paper_sizes():
    c = make_preset(DiamondConfig, "atari100k")
    assert (c.objective, c.denoiser, c.context_frames, c.sampling_steps) == ("edm", "unet", 4, 3)
    assert (c.unet.channels, c.unet.depths, c.unet.cond_dim) == ((64,) * 4, (2,) * 4, 256)
    assert (c.edm.sigma_data, c.edm.sigma_offset_noise, c.edm.train_loc, c.edm.train_scale) == (0.5, 0.3, -0.4, 1.2)
    assert (c.edm.sigma_min, c.edm.sigma_max, c.edm.rho, c.edm.order) == (2e-3, 5.0, 7.0, 1)
    assert (c.reward_end.channels, c.reward_end.lstm_dim, c.actor_critic.lstm_dim) == ((32,) * 4, 512, 512)
    ac = c.actor_critic
    assert (ac.horizon, ac.gamma, ac.lam, ac.entropy) == (15, 0.985, 0.95, 0.001)
    assert c.schedule.total_env_steps == 100_000 and c.schedule.seq_len == 19


@pytest.mark.parametrize(
    "overrides",
    [{"objective": "flow"}, {"denoiser": "mlp"}, {"sampling_steps": 0}, {"context_frames": 0},
     {"unet.channels": "16,16", "unet.depths": "1"}, {"dit.dim": 30}, {"edm.order": 3},
     {"ddpm.schedule": "quadratic"}, {"schedule.seq_len": 2}, {"actor_critic.gamma": 1.5},
     {"reward_end.reward": "twohot"}, {"edm.sigma_min": 10.0}],
)
def test_config_validation_names_the_field(overrides):
    with pytest.raises(ConfigError):
        apply_overrides(DiamondConfig.tiny(), overrides)


def test_overrides_reach_the_built_model():
    m = create_model("dit", observation_space=MINATAR, action_space=ACTIONS, preset="tiny", dit__depth=1)
    assert isinstance(m.world_model.denoiser, FrameDenoiserDiT) and len(m.world_model.denoiser.blocks) == 1
    assert isinstance(m.world_model.diffusion, EDM)
    m = create_model("ddpm", observation_space=MINATAR, action_space=ACTIONS, preset="tiny")
    assert isinstance(m.world_model.denoiser, FrameDenoiserUNet) and isinstance(m.world_model.diffusion, DDPM)


@pytest.mark.parametrize(
    "space",
    [gym.spaces.Box(-1, 1, (8,), np.float32), gym.spaces.Box(0, 255, (64, 64), np.uint8),
     gym.spaces.Box(0.0, 1.0, (10, 10, 4), np.float32), gym.spaces.Dict({"a": MINATAR})],
)
def test_vector_and_other_spaces_are_refused(space):
    with pytest.raises(UnsupportedSpaceError, match="frames"):
        create_model("diamond", observation_space=space, action_space=ACTIONS)


def test_frame_codec_binarises_binary_frames_and_rounds_pixels():
    binary, pixels = FrameCodec(1), FrameCodec(255)
    frames = torch.randint(0, 2, (2, 10, 10, 4), dtype=torch.uint8)
    x = binary.encode(frames)
    assert x.shape == (2, 4, 10, 10) and set(x.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(binary.decode(x), frames)
    noisy = x + 0.9 * torch.rand(x.shape) * -x.sign()  # pushed towards 0 but not across it
    assert torch.equal(binary.decode(noisy), frames)
    assert torch.equal(binary.decode(torch.full((1, 4, 2, 2), 3.0)), torch.ones(1, 2, 2, 4, dtype=torch.uint8))
    img = torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8)
    assert torch.equal(pixels.decode(pixels.encode(img)), img)


@pytest.mark.parametrize("name", ["diamond", "ddpm", "dit"])
@pytest.mark.parametrize("space", [MINATAR, ATARI], ids=["10x10x4", "64x64x3"])
def test_loss_terms_on_replay_batches(name, space):
    model = create_model(name, observation_space=space, action_space=ACTIONS, preset="tiny",
                         actor_critic__horizon=2)
    batch = random_replay_batch(space, ACTIONS, 2, 5)
    if space is MINATAR:
        batch["observation"] = batch["observation"] % 2
    out = model.loss(batch)
    for key in ("loss_denoiser", "loss_reward", "loss_end", "loss_actor", "loss_value", "loss_entropy"):
        assert torch.isfinite(out[key]) and out[key].dim() == 0, key
    model.set_phase("world_model")
    assert not any(k.startswith("loss_actor") for k in model.loss(batch).keys())
    model.set_phase("actor_critic")
    assert set(k for k in model.loss(batch).keys() if k.startswith("loss_")) == {"loss_actor", "loss_value",
                                                                                 "loss_entropy"}
    with pytest.raises(ConfigError):
        model.set_phase("controller")


def test_each_phase_reaches_only_its_parts():
    model = create_model("diamond", observation_space=MINATAR, action_space=ACTIONS, preset="tiny",
                         actor_critic__horizon=2)
    batch = binary_batch()
    for phase, trained in (("world_model", {"denoiser", "reward_end"}), ("actor_critic", {"actor_critic"})):
        model.zero_grad(set_to_none=True)
        model.set_phase(phase)
        out = model.loss(batch)
        sum(v for k, v in out.items() if k.startswith("loss_")).backward()
        for group, g in model.optim_groups().items():
            has_grad = any(p.grad is not None and p.grad.abs().sum() > 0 for p in g["params"])
            assert has_grad == (group in trained), (phase, group)


def test_denoiser_loss_ignores_frames_of_another_episode():
    """A frame before an episode start inside a context window is padding: changing it (or the action
    taken at it) leaves the loss unchanged; changing a frame of the target's episode does not."""
    model = create_model("diamond", observation_space=MINATAR, action_space=ACTIONS, preset="tiny",
                         schedule__denoiser_windows=0)  # every window: no random window choice
    wm = model.world_model
    batch = binary_batch(2, 8)[:, 3:]  # frame 0 ends the first episode, the second starts at frame 1
    assert batch["is_first"][:, 1].all() and not batch["is_first"][:, 0].any()

    def loss(b):
        torch.manual_seed(0)
        return wm.denoiser_loss(b)[0]

    other = batch.clone()
    other["observation"][:, 0] = 1 - other["observation"][:, 0]
    other["action"][:, 1] = (other["action"][:, 1] + 1) % 3  # the action taken at frame 0
    assert torch.equal(loss(batch), loss(other))
    same = batch.clone()
    same["observation"][:, 2] = 1 - same["observation"][:, 2]
    assert not torch.equal(loss(batch), loss(same))


def test_state_dict_round_trip_and_fixed_fourier_frequencies():
    a = create_model("diamond", observation_space=MINATAR, action_space=ACTIONS, preset="tiny")
    b = create_model("diamond", observation_space=MINATAR, action_space=ACTIONS, preset="tiny")
    b.load_state_dict(a.state_dict(), strict=True)
    assert "world_model.denoiser.embed.noise.weight" in a.state_dict()
    batch = binary_batch()
    torch.manual_seed(1)
    la = a.world_model.denoiser_loss(batch)[0]
    torch.manual_seed(1)
    lb = b.world_model.denoiser_loss(batch)[0]
    assert torch.equal(la, lb)


def test_world_model_losses_fall_on_a_fixed_batch():
    model = create_model("diamond", observation_space=MINATAR, action_space=ACTIONS, preset="tiny")
    model.set_phase("world_model")
    batch = binary_batch(4, 6)
    torch.manual_seed(0)
    losses = train_on_batch(model, batch, 40)
    assert np.mean(losses[-8:]) < 0.85 * np.mean(losses[:8])


def test_agent_is_its_own_class():
    m = create_model("diamond", observation_space=MINATAR, action_space=ACTIONS)
    assert isinstance(m, DiamondAgent) and m.observation_space == MINATAR and m.action_space == ACTIONS
