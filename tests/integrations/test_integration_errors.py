"""Bad input fails early with typed errors that name the mode or policy to use instead."""

from __future__ import annotations

import importlib
import json
import shutil

import gymnasium as gym
import numpy as np
import pytest

import wmenv
from integrations.common import check_observations, judge_env, open_recipe_run
from wmenv.core import CheckpointError, ConfigError, UnsupportedSpaceError

LATENT = gym.spaces.Box(-np.inf, np.inf, (72,), np.float32)
IMAGE = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
DICT = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (4,), np.float32)})


def test_cnn_policy_on_latent_vectors_names_mlp_policy_and_the_pixel_fix():
    with pytest.raises(
        UnsupportedSpaceError, match=r"CnnPolicy needs \(H, W, C\) uint8 image observations"
    ) as err:
        check_observations(
            LATENT, "image", who="CnnPolicy", observation_mode="latent", source="runs/cartpole"
        )
    msg = str(err.value)
    assert "runs/cartpole with observation_mode='latent'" in msg
    assert "use MlpPolicy (integrations/sb3/ppo_latent.py) for these" in msg
    assert "pixel world model" in msg and "observation_mode='decoded'" in msg


def test_mlp_policy_on_images_and_dicts_names_cnn_and_multi_input_policies():
    with pytest.raises(UnsupportedSpaceError, match=r"use CnnPolicy \(integrations/sb3/ppo_pixels.py\)"):
        check_observations(IMAGE, "vector", who="MlpPolicy", observation_mode="decoded", source="run")
    with pytest.raises(UnsupportedSpaceError, match=r"use MultiInputPolicy \(integrations/sb3/ppo_dict.py\)"):
        check_observations(DICT, "vector", who="MlpPolicy", observation_mode="decoded", source="run")
    with pytest.raises(UnsupportedSpaceError, match="MultiInputPolicy needs Dict observations"):
        check_observations(LATENT, "dict", who="MultiInputPolicy", observation_mode="latent", source="run")
    check_observations(LATENT, "vector", who="MlpPolicy", observation_mode="latent", source="run")  # fits


def test_cnn_recipe_on_a_vector_checkpoint_fails_before_training(tiny_checkpoint, tmp_path):
    recipe = importlib.import_module("integrations.sb3.ppo_pixels")
    with pytest.raises(UnsupportedSpaceError, match="CnnPolicy needs .* use MlpPolicy"):
        recipe.main(["--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path), "--total-steps", "64"])
    assert not (tmp_path / "results.json").exists()


def test_real_env_with_other_spaces_names_both_spaces_and_the_trained_env(tiny_checkpoint):
    run = wmenv.open_run(tiny_checkpoint)
    with pytest.raises(
        UnsupportedSpaceError, match=r"real env 'Pendulum-v1' has observation space Box.*\(3,\)"
    ) as err:
        judge_env(run, "latent", "Pendulum-v1")
    assert "trained on Box" in str(err.value) and "(CartPole-v1)" in str(err.value)


def test_recipe_with_a_mismatched_real_env_fails_before_training(tiny_checkpoint, tmp_path):
    recipe = importlib.import_module("integrations.cleanrl.ppo_wmenv")
    with pytest.raises(UnsupportedSpaceError, match="real env 'Acrobot-v1'"):
        recipe.main(
            ["--checkpoint", str(tiny_checkpoint), "--real-env", "Acrobot-v1", "--out", str(tmp_path)]
        )


def test_run_without_a_recorded_env_asks_for_env(tiny_checkpoint, tmp_path):
    import torch

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_checkpoint, run_dir)
    data = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    del data["extra"]["run"]  # a run written before the run schema, recording no env
    data["extra"]["user_state"] = {}
    torch.save(data, run_dir / "checkpoint.pt")
    with pytest.raises(ConfigError, match="does not record the env it was trained on; pass --env ID"):
        judge_env(wmenv.open_run(run_dir), "latent")
    judge_env(wmenv.open_run(run_dir), "latent", "CartPole-v1").close()  # --env
    (run_dir / "summary.json").write_text(json.dumps({"env_id": "CartPole-v1"}))  # as `wmenv demo` wrote
    assert judge_env(wmenv.open_run(run_dir), "latent").observation_space.shape == (128,)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        open_recipe_run(tmp_path / "nowhere", tmp_path)


def test_zero_eval_episodes_is_a_config_error(tiny_checkpoint, tmp_path):
    recipe = importlib.import_module("integrations.sb3.ppo_latent")
    with pytest.raises(ConfigError, match="--eval-episodes must be >= 1, got 0"):
        recipe.main(["--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path), "--eval-episodes", "0"])
