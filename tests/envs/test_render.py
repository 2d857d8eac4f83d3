"""``render_mode="rgb_array"`` on every face: frames, the field's video recorders, checkers.

Gymnasium's ``RecordVideo`` and SB3's ``VecVideoRecorder`` write MP4s through MoviePy. When
MoviePy is not installed (it is not in this project's environment), the ``moviepy`` fixture puts a
small stand-in module in ``sys.modules`` whose ``ImageSequenceClip`` writes the same frames with
imageio-ffmpeg, so the recorders' own code paths (trigger, ``render()`` calls, frame capture,
saving) run unchanged and the test still checks a real, readable video file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
import warnings

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from wmenv.core.errors import InvalidArgumentError, ModelOutputError, ResetNeededError
from wmenv.envs import ENV_ID, WorldModelEnv, WorldModelSB3VecEnv, WorldModelTorchRLEnv, WorldModelVectorEnv
from wmenv.envs.boundary import PLOT_SIZE
from wmenv.testing import FakeWorldModel, fake_start_states

MOVIEPY_INSTALLED = importlib.util.find_spec("moviepy") is not None


class _ImageioClip:
    """The part of ``moviepy...ImageSequenceClip`` the recorders use, written with imageio-ffmpeg."""

    def __init__(self, frames, fps):
        self.frames, self.fps = list(frames), fps

    def write_videofile(self, path, logger=None, **kwargs):
        with imageio.get_writer(path, fps=self.fps, codec="libx264", macro_block_size=16) as writer:
            for frame in self.frames:
                writer.append_data(np.asarray(frame))


@pytest.fixture
def moviepy(monkeypatch):
    """Real MoviePy when installed, else the imageio stand-in (see the module docstring)."""
    if MOVIEPY_INSTALLED:
        yield "moviepy"
        return
    clip_module = types.ModuleType("moviepy.video.io.ImageSequenceClip")
    clip_module.ImageSequenceClip = _ImageioClip
    names = ["moviepy", "moviepy.video", "moviepy.video.io"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "moviepy.video.io.ImageSequenceClip", clip_module)
    yield "imageio stand-in"


def _read_video(path) -> np.ndarray:
    assert os.path.getsize(path) > 0
    with imageio.get_reader(path) as reader:  # iterate: list(reader) trusts an infinite length hint
        return np.stack([frame for frame in reader])


def _model(observation="vector", **kw):
    model = FakeWorldModel(observation, **kw)
    return model, fake_start_states(model)


@pytest.mark.timeout(60)
def test_record_video_of_a_vector_observation_env(tmp_path, moviepy):
    from gymnasium.wrappers import RecordVideo

    model, start = _model("vector", terminate_at=None)
    env = WorldModelEnv(model, start, max_episode_steps=12, render_mode="rgb_array")
    env = RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda e: True, disable_logger=True)
    for episode in range(2):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
    env.close()
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["rl-video-episode-0.mp4", "rl-video-episode-1.mp4"]
    frames = _read_video(videos[0])
    assert frames.shape == (13, *PLOT_SIZE, 3)  # the reset frame and 12 steps
    assert frames.std() > 0  # bars, not a blank canvas


@pytest.mark.timeout(60)
def test_sb3_vec_video_recorder_over_the_pixel_face(tmp_path, moviepy):
    from stable_baselines3.common.vec_env import VecVideoRecorder

    model, start = _model("image", image_size=16)
    venv = WorldModelSB3VecEnv(model, start, 4, max_episode_steps=8, seed=0, render_mode="rgb_array")
    assert venv.metadata["render_fps"] > 0
    rec = VecVideoRecorder(venv, str(tmp_path), record_video_trigger=lambda step: step == 0, video_length=10)
    rec.reset()
    for _ in range(12):
        rec.step(np.stack([venv.action_space.sample() for _ in range(4)]))
    rec.close()
    (video,) = tmp_path.glob("*.mp4")
    frames = _read_video(video)
    assert frames.shape == (11, 32, 32, 3)  # 2x2 tiles of 16x16 frames
    images = venv.get_images()
    assert len(images) == 4 and all(i.shape == (16, 16, 3) and i.dtype == np.uint8 for i in images)
    np.testing.assert_array_equal(images[0], venv.core.observation[0].numpy())


@pytest.mark.parametrize(
    "observation, shape",
    [("vector", (*PLOT_SIZE, 3)), ("image", (16, 16, 3)), ("dict", (16, 16, 3))],
)
def test_single_env_render_is_an_rgb_frame(observation, shape):
    model, start = _model(observation)
    env = WorldModelEnv(model, start, max_episode_steps=5, render_mode="rgb_array")
    with pytest.raises(ResetNeededError, match="reset"):
        env.render()
    env.reset(seed=0)
    first = env.render()
    assert first.shape == shape and first.dtype == np.uint8
    env.step(env.action_space.sample())
    assert env.render().shape == shape
    assert WorldModelEnv(model, start).render() is None  # render_mode=None


def test_image_frame_is_the_observation():
    model, start = _model("image")
    env = WorldModelEnv(model, start, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs)


def test_gymnasium_play_runs_on_a_world_model(monkeypatch):
    """``gymnasium.utils.play.play`` (pygame, headless) shows the frames of an imagined episode."""
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    import pygame
    from gymnasium.utils.play import play

    model, start = _model("vector")
    env = WorldModelEnv(model, start, max_episode_steps=4, render_mode="rgb_array")
    seen = []

    def callback(obs, next_obs, action, reward, terminated, truncated, info):
        seen.append(env.render().shape)
        if len(seen) == 10:  # across at least two episodes: play() resets ended ones itself
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    play(env, fps=1000, keys_to_action={"a": 0, "d": 1}, noop=0, seed=0, callback=callback)
    assert seen == [(*PLOT_SIZE, 3)] * 10


def test_check_env_passes_without_render_warnings():
    from gymnasium.utils.env_checker import check_env

    model, start = _model("vector")
    env = gym.make(ENV_ID, model=model, start_states=start, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # render checks included, and every declared mode via env.spec
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "render" in m.lower()], messages


def test_vector_face_renders_one_frame_per_member():
    model, start = _model("vector")
    venv = WorldModelVectorEnv(model, start, 3, render_mode="rgb_array")
    assert venv.metadata["render_modes"] == ["rgb_array"] and venv.metadata["render_fps"] > 0
    venv.reset(seed=0)
    frames = venv.render()
    assert isinstance(frames, tuple) and len(frames) == 3
    assert all(f.shape == (*PLOT_SIZE, 3) and f.dtype == np.uint8 for f in frames)
    assert WorldModelVectorEnv(model, start, 3).render() is None


def test_torchrl_face_render_and_pixel_render_transform():
    from torchrl.record.recorder import PixelRenderTransform

    model, start = _model("image")
    env = WorldModelTorchRLEnv(model, start, 3, max_episode_steps=10, render_mode="rgb_array")
    env.reset()
    frames = env.render()
    assert frames.shape == (3, 16, 16, 3) and frames.dtype == np.uint8
    rollout = env.append_transform(PixelRenderTransform()).rollout(4)
    assert rollout["next", "pixels"].shape == (3, 4, 16, 16, 3)
    assert rollout["next", "pixels"].dtype == torch.uint8


class DrawsItsState(FakeWorldModel):
    """A model with the optional ``render_state`` hook (e.g. a decoder + the real env's renderer)."""

    def render_state(self, state):
        level = ((state["x"][:, 0] + 1) * 127).to(torch.uint8)
        return level[:, None, None, None].expand(-1, 8, 8, 3).numpy()


def test_render_state_hook_is_used_by_every_face():
    model = DrawsItsState()
    start = fake_start_states(model)
    env = WorldModelEnv(model, start, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (8, 8, 3)
    venv = WorldModelVectorEnv(model, start, 2, render_mode="rgb_array")
    venv.reset(seed=0)
    assert [f.shape for f in venv.render()] == [(8, 8, 3)] * 2
    sb3 = WorldModelSB3VecEnv(model, start, 2, render_mode="rgb_array")
    sb3.reset()
    assert [i.shape for i in sb3.get_images()] == [(8, 8, 3)] * 2


def test_callables_api_render_state_hook():
    class Toy:
        def render_state(self, state):
            return np.full((4, 6, 3), int(state), dtype=np.uint8)

    env = WorldModelEnv(
        Toy(), observation_space=gym.spaces.Box(-1, 1, (2,), np.float32), action_space=gym.spaces.Discrete(2),
        reset_fn=lambda model, seed=None, options=None: {"state": 7, "observation": np.zeros(2, np.float32)},
        transition_fn=lambda model, state, action: {
            "state": state + 1, "observation": np.zeros(2, np.float32), "reward": 0.0, "terminated": False,
        },
        render_mode="rgb_array",
    )
    env.reset()
    assert env.render()[0, 0, 0] == 7
    env.step(1)
    assert env.render()[0, 0, 0] == 8


def test_bad_render_state_output_is_a_model_output_error():
    class Bad(FakeWorldModel):
        def render_state(self, state):
            return np.zeros((state.batch_size[0], 8, 8), dtype=np.float32)

    model = Bad()
    env = WorldModelEnv(model, fake_start_states(model), render_mode="rgb_array")
    env.reset(seed=0)
    with pytest.raises(ModelOutputError, match=r"render_state.*uint8.*\(1, H, W, 3\)"):
        env.render()


@pytest.mark.parametrize("face", ["single", "vector", "torchrl", "sb3"])
@pytest.mark.parametrize("mode", ["human", "ansi", "rgb_array_list"])
def test_unknown_render_modes_are_refused_at_construction(face, mode):
    model, start = _model("vector")
    cls = {"single": WorldModelEnv, "vector": WorldModelVectorEnv, "torchrl": WorldModelTorchRLEnv,
           "sb3": WorldModelSB3VecEnv}[face]
    args = (model, start) if face == "single" else (model, start, 2)
    with pytest.raises(InvalidArgumentError, match=rf"render_mode must be one of \['rgb_array'\] or None.*{mode!r}"):
        cls(*args, render_mode=mode)
