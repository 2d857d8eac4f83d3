"""The run layer: one schema, old layouts, bound ids, default horizons, hostile run directories."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import wmenv
from wmenv.cli import main
from wmenv.core.errors import CheckpointError, ConfigError, UnsupportedSpaceError, WMEnvError
from wmenv.runs import FACES
from wmenv.train import Schedule
from wmenv.train.runinfo import RUN_SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny mlp-wm run on CartPole (seconds)."""
    path = tmp_path_factory.mktemp("runs") / "cartpole"
    return wmenv.train.train("mlp-wm", "CartPole-v1", steps=12, preset="tiny", seed=3,
                             schedule=Schedule(seed_steps=200), run_dir=path, progress=False,
                             trainer={"batch_size": 4, "seq_len": 4, "tensorboard": False})


def _copy(run_dir: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run_dir, target)
    return target


def test_run_record_is_written_once_and_read_through_open_run(run_dir: Path) -> None:
    run = wmenv.open_run(run_dir)
    assert run.info.schema_version == RUN_SCHEMA_VERSION
    assert (run.info.model, run.info.family, run.info.env_id, run.info.seed) == ("mlp-wm", "mlp", "CartPole-v1", 3)
    assert run.info.max_episode_steps == 500 and run.info.producer == "wmenv.train"
    mirror = json.loads((run_dir / "run.json").read_text())
    assert mirror["model"] == "mlp-wm" and mirror["config"]["hidden"] == run.config.hidden
    assert run.meta["extra"]["run"] == run.info.to_dict()


def test_every_face_from_a_run_and_its_real_env(run_dir: Path) -> None:
    run = wmenv.open_run(run_dir)
    for face in FACES:
        env = run.make_env(face, num_envs=3, seed=0)
        if face == "gymnasium":
            obs, _ = env.reset(seed=0)
            assert obs.shape == (4,)
            assert env.spec is None or True
            assert env.unwrapped.max_episode_steps == 500 if hasattr(env.unwrapped, "max_episode_steps") else True
        env.close()
    real = run.real_env()
    assert real.observation_space.shape == (4,)
    real.close()
    with pytest.raises(CheckpointError, match="no policy of its own"):
        run.policy()


def test_default_horizon_is_the_real_envs_time_limit(run_dir: Path) -> None:
    env = gym.make("wmenv/WorldModel-v0", checkpoint=str(run_dir))
    env.reset(seed=0)
    steps, done = 0, False
    while not done and steps < 600:
        _, _, terminated, truncated, _ = env.step(0)
        steps += 1
        done = terminated or truncated
    assert done, "an imagined episode of a CartPole run must end by CartPole's 500-step limit"
    assert steps <= 500
    env.close()
    short = gym.make("wmenv/WorldModel-v0", checkpoint=str(run_dir), max_episode_steps=7)
    short.reset(seed=0)
    for _ in range(7):
        *_, terminated, truncated, _ = short.step(0)
        if terminated:
            break
    assert terminated or truncated


def _old_layout(run_dir: Path, tmp_path: Path, user_state: dict, name: str) -> Path:
    """A run directory as wmenv wrote it before run schema 2 (no extra['run'], no run.json)."""
    old = _copy(run_dir, tmp_path, name)
    data = torch.load(old / "checkpoint.pt", weights_only=True)
    data["extra"].pop("run")
    data["extra"]["user_state"] = user_state
    torch.save(data, old / "checkpoint.pt")
    (old / "run.json").unlink()
    return old


def test_old_layouts_open_and_convert(run_dir: Path, tmp_path: Path) -> None:
    train_cli = {"args": {"model": "mlp-wm", "env": "CartPole-v1", "preset": "tiny", "seed_steps": 200,
                          "collect_every": 0, "collect_steps": 0, "num_envs": 1, "seed": 5, "overrides": {},
                          "env_kwargs": {}}, "env_steps": 200}
    old = _old_layout(run_dir, tmp_path, train_cli, "old_train")
    run = wmenv.open_run(old)
    assert (run.info.env_id, run.info.seed, run.info.schedule["seed_steps"]) == ("CartPole-v1", 5, 200)
    assert run.horizon() == 500  # read from the env id when the old record lacks it
    run.make_env("vector", num_envs=2).close()
    run.convert()
    assert wmenv.open_run(old).meta["extra"]["run"]["env_id"] == "CartPole-v1"
    assert (old / "run.json").is_file()

    stages = _old_layout(run_dir, tmp_path, {"env_id": "CartPole-v1", "env_kwargs": {}, "seed": 2}, "old_stages")
    assert wmenv.open_run(stages).info.env_id == "CartPole-v1"

    demo = _old_layout(run_dir, tmp_path, {}, "old_demo")
    (demo / "summary.json").write_text(json.dumps({"env_id": "CartPole-v1", "seed": 1, "config": {}}))
    assert wmenv.open_run(demo).info.seed == 1

    bare = _old_layout(run_dir, tmp_path, {}, "old_bare")
    run = wmenv.open_run(bare)  # the model still opens; what needs the env says how to proceed
    assert run.info.env_id is None
    run.make_env("gymnasium", max_episode_steps=5).close()
    with pytest.raises(ConfigError, match="does not record the env"):
        run.real_env()


def test_a_broken_run_record_is_a_typed_error(run_dir: Path, tmp_path: Path) -> None:
    broken = _copy(run_dir, tmp_path, "broken")
    data = torch.load(broken / "checkpoint.pt", weights_only=True)
    data["extra"]["run"]["schema_version"] = 99
    torch.save(data, broken / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="schema_version 99"):
        wmenv.open_run(broken)
    data["extra"]["run"] = {"schema_version": RUN_SCHEMA_VERSION, "model": 5, "family": "mlp"}
    torch.save(data, broken / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="field 'model'"):
        wmenv.open_run(broken)


def test_real_env_of_another_space_is_refused(run_dir: Path) -> None:
    run = wmenv.open_run(run_dir)
    with pytest.raises(UnsupportedSpaceError, match="observation space"):
        run.check_spaces(gym.make("Pendulum-v1"), "Pendulum-v1")


class _Payload:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_copies(run_dir: Path, tmp_path: Path, marker: Path) -> list[tuple[str, Path]]:
    """One copy of the run per file, that file replaced by a pickle whose loading runs code."""
    _Payload.marker = str(marker)
    blob = pickle.dumps(_Payload())
    copies = []
    files = [p for p in run_dir.rglob("*") if p.is_file() and p.suffix not in (".csv", ".png")
             and "tb" not in p.relative_to(run_dir).parts]
    assert any(p.suffix == ".npy" for p in files) and (run_dir / "checkpoint.pt") in files
    for i, path in enumerate(files):
        copy = _copy(run_dir, tmp_path, f"hostile{i}")
        (copy / path.relative_to(run_dir)).write_bytes(blob)
        copies.append((str(path.relative_to(run_dir)), copy))
    evil_ckpt = _copy(run_dir, tmp_path, "hostile_ckpt_object")
    data = torch.load(evil_ckpt / "checkpoint.pt", weights_only=True)
    data["extra"]["user_state"]["payload"] = _Payload()
    torch.save(data, evil_ckpt / "checkpoint.pt")
    copies.append(("checkpoint.pt with an object inside", evil_ckpt))
    return copies


def test_hostile_run_directories_never_run_code(run_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    copies = _hostile_copies(run_dir, tmp_path, marker)
    refused = 0
    unread = ("run.json", "replay_scratch")  # a mirror for people, and scratch that --resume deletes
    read = [c for c in copies if not c[0].startswith(unread)]
    for what, copy in copies:
        for face in FACES:
            try:
                wmenv.make_imagination_env(copy, face, num_envs=2, max_episode_steps=5).close()
            except WMEnvError:
                refused += 1
            assert not marker.exists(), f"opening a run whose {what} is a pickle ran its code"
        code = main(["train", "--resume", str(copy), "--steps", "14", "--no-progress"])
        assert not marker.exists(), f"wmenv train --resume with a hostile {what} ran its code"
        if not what.startswith(unread):
            assert code == 2, what
        code = main(["benchmark", "-a", "dreamer", "-g", "CartPole-v1", "-c", str(copy), "--seeds", "1",
                     "-n", "1", "--out-dir", str(tmp_path / f"bench_{refused}")])
        assert code == 2 and not marker.exists()
    assert refused >= 4 * len(read)  # every face refused every hostile file it reads
    _Payload.marker = str(marker)
    pickle.loads(pickle.dumps(_Payload()))  # the payload is real: unpickling it does run code
    assert marker.exists()


def test_bound_id_for_scripts_that_take_only_an_env_id(run_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    env = {**os.environ, "WMENV_CONFIG_DIR": str(config)}
    wmenv_cli = [sys.executable, "-m", "wmenv.cli"]
    out = subprocess.run([*wmenv_cli, "register", str(run_dir), "--id", "wmenv/CartPoleDream-v0"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads((config / "envs.json").read_text())["wmenv/CartPoleDream-v0"]["checkpoint"] == str(run_dir)
    # a CleanRL-shaped script: argparse --env-id, gym.make thunks, SyncVectorEnv, no wmenv import of its own
    script = tmp_path / "cleanrl_like.py"
    script.write_text(
        "import argparse\nimport gymnasium as gym\nimport numpy as np\n"
        "p = argparse.ArgumentParser(); p.add_argument('--env-id'); p.add_argument('--num-envs', type=int)\n"
        "args = p.parse_args()\n"
        "def make_env(i):\n"
        "    def thunk():\n"
        "        env = gym.make(args.env_id)\n"
        "        env = gym.wrappers.RecordEpisodeStatistics(env)\n"
        "        env.action_space.seed(i)\n"
        "        return env\n"
        "    return thunk\n"
        "envs = gym.vector.SyncVectorEnv([make_env(i) for i in range(args.num_envs)],\n"
        "                                autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)\n"
        "obs, _ = envs.reset(seed=1)\n"
        "finished = 0\n"
        "for _ in range(600):\n"
        "    obs, r, term, trunc, info = envs.step(envs.action_space.sample())\n"
        "    finished += int(np.sum(term | trunc))\n"
        "print('obs', obs.shape, 'finished', finished)\n"
    )
    res = subprocess.run([sys.executable, str(script), "--env-id", "wmenv:wmenv/CartPoleDream-v0", "--num-envs", "2"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "obs (2, 4)" in res.stdout
    assert int(res.stdout.split("finished")[1]) >= 2  # episodes end: the run's 500-step horizon applies
    listed = subprocess.run([*wmenv_cli, "register", "--list"], capture_output=True, text=True, env=env, timeout=120)
    assert "wmenv/CartPoleDream-v0" in listed.stdout


def test_register_env_in_process_and_bad_ids(run_dir: Path) -> None:
    full = wmenv.register_env("MyDream-v0", checkpoint=run_dir, max_episode_steps=9)
    env = gym.make(full)
    env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(2)
    env.close()
    with pytest.raises(ConfigError, match="env id must look like"):
        wmenv.register_env("no version", checkpoint=run_dir)
    with pytest.raises(ConfigError, match="does not exist"):
        wmenv.register_env("Missing-v0", checkpoint=run_dir / "nope")
    assert np.isfinite(0.0)


def test_torchwm_style_calls() -> None:
    config = wmenv.create_config("dreamer", env="walker-walk", seed=7, rssm__deter=32)
    assert config.rssm.deter == 32
    model = wmenv.create_model("mlp-wm", env="CartPole-v1", hidden=16)
    assert model.config.hidden == 16
    assert type(wmenv.create_model("mlp-wm", wmenv.create_config("mlp-wm"), env="CartPole-v1")) is type(model)
    assert "CartPole-v1" in wmenv.list_envs() and "walker-walk" in wmenv.list_envs("dmc")
    with pytest.raises(TypeError, match="must be a"):
        wmenv.create_model("mlp-wm", 3.5)
    assert {"open_run", "make_imagination_env", "WorldModelSB3VecEnv", "run_benchmark"} <= set(dir(wmenv))
