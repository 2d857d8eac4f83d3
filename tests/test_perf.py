"""`wmenv perf` (faces, --compare torchrl|naive, --train): behaviour only, never wall-clock time.

The compared envs must do the same work: where they should, they produce the same trajectories
under the same actions; the commands write their tables and JSON with the expected keys; usage
errors exit 2 with one clear line.
"""

import json

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from wmenv.cli import main


def test_perf_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "perf.json"
    assert main(["perf", "--sizes", "1,4", "--steps", "5", "--repeats", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())["results"]
    assert set(data) == {"1", "4"}
    assert {"raw", "single", "vector", "torchrl", "sb3", "vector_ratio"} <= set(data["1"])
    assert "single" not in data["4"] and data["4"]["sb3_ratio"] > 0
    assert "| N | raw steps/s |" in capsys.readouterr().out


def test_perf_leaves_autograd_on():
    main(["perf", "--sizes", "1", "--steps", "2", "--repeats", "1"])
    assert torch.is_grad_enabled()


def test_perf_threads_option_is_reported_and_restored(tmp_path):
    before = torch.get_num_threads()
    out = tmp_path / "perf.json"
    assert main(["perf", "--compare", "naive", "--sizes", "1", "--steps", "2", "--repeats", "1", "--threads", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["torch_threads"] == data["machine"]["torch_threads"] == 1
    assert torch.get_num_threads() == before


def test_perf_device_option(tmp_path, capsys):
    out = tmp_path / "perf.json"
    assert main(["perf", "--sizes", "2", "--steps", "3", "--repeats", "1", "--device", "cpu", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["device"] == "cpu"
    if not torch.cuda.is_available():
        assert main(["perf", "--sizes", "2", "--device", "cuda"]) == 2
        assert "device 'cuda' is not usable here" in capsys.readouterr().err
    assert main(["perf", "--sizes", "2", "--device", "nonsense"]) == 2


# ------------------------------------------------------------------ same trajectories


def _model(**kw):
    from wmenv.testing import FakeWorldModel

    kw.setdefault("terminate_at", 0.7)
    return FakeWorldModel("vector", "discrete", latent_dim=8, hidden=32, noise=kw.pop("noise", 0.05), **kw)


def _callables_envs(model, start_states, horizon):
    from wmenv.benchmarks.perf_compare import (
        NaiveCallablesEnv,
        PerfCallablesModel,
        callables_spaces,
        perf_reset_fn,
        perf_transition_fn,
    )
    from wmenv.envs import WorldModelEnv

    obs_space, act_space = callables_spaces(model)
    naive = NaiveCallablesEnv(PerfCallablesModel(model, start_states), obs_space, act_space, perf_reset_fn,
                              perf_transition_fn, max_episode_steps=horizon)
    ours = WorldModelEnv(PerfCallablesModel(model, start_states), observation_space=obs_space,
                         action_space=act_space, reset_fn=perf_reset_fn, transition_fn=perf_transition_fn,
                         max_episode_steps=horizon)
    return naive, ours


def test_naive_env_and_our_single_env_give_identical_trajectories():
    from wmenv.testing import fake_start_states

    model = _model()
    naive, ours = _callables_envs(model, fake_start_states(model, n=32), horizon=9)
    obs_n, _ = naive.reset(seed=3)
    obs_o, _ = ours.reset(seed=3)
    assert np.array_equal(obs_n, obs_o) and obs_n.dtype == obs_o.dtype == np.float32
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(200):
        a = int(rng.integers(2))
        step_n, step_o = naive.step(a), ours.step(a)
        assert np.array_equal(step_n[0], step_o[0])
        assert step_n[1:4] == step_o[1:4]  # reward, terminated, truncated
        assert type(step_n[1]) is type(step_o[1]) is float
        if step_n[2] or step_n[3]:
            ends["terminated" if step_n[2] else "truncated"] += 1
            assert np.array_equal(naive.reset()[0], ours.reset()[0])
    assert ends["terminated"] > 0 and ends["truncated"] > 0  # both kinds of episode end were compared


def test_naive_sync_vector_env_and_our_vector_env_agree_on_deterministic_model():
    """One start state and no noise: every member is the same deterministic env, so a
    SyncVectorEnv of naive envs (N generators) and our vector env (one) must agree, autoresets
    (next-step mode in both) included: rewards and episode ends exactly, observations up to float
    rounding (a batch of N and N batches of one take different matmul kernels)."""
    import gymnasium as gym

    from wmenv.benchmarks.perf_compare import (
        NaiveCallablesEnv,
        PerfCallablesModel,
        callables_spaces,
        perf_reset_fn,
        perf_transition_fn,
    )
    from wmenv.core import TensorDictStartStates
    from wmenv.envs import WorldModelVectorEnv

    model = _model(noise=0.0)
    start = TensorDictStartStates(TensorDict({"x": torch.full((1, 8), 0.3)}, batch_size=[1]))
    obs_space, act_space = callables_spaces(model)
    n = 3
    naive = gym.vector.SyncVectorEnv([
        lambda i=i: NaiveCallablesEnv(PerfCallablesModel(model, start, i), obs_space, act_space, perf_reset_fn,
                                      perf_transition_fn, max_episode_steps=7)
        for i in range(n)
    ])
    ours = WorldModelVectorEnv(model, start, n, max_episode_steps=7)
    assert np.array_equal(naive.reset(seed=0)[0], ours.reset(seed=0)[0])
    rng = np.random.default_rng(1)
    resets = 0
    for _ in range(40):
        a = rng.integers(2, size=n)
        out_n, out_o = naive.step(a), ours.step(a)
        np.testing.assert_allclose(out_n[0], out_o[0], rtol=0, atol=1e-5)
        for x, y in zip(out_n[1:4], out_o[1:4]):
            assert np.array_equal(x, y) and x.dtype == y.dtype
        resets += int((out_n[2] | out_n[3]).sum())
    assert resets > 0
    naive.close()


def _torchrl_pair(n, horizon, seed=3):
    from wmenv.benchmarks.perf_compare import make_torchrl_env
    from wmenv.envs import WorldModelTorchRLEnv
    from wmenv.testing import fake_start_states

    model = _model()
    start = fake_start_states(model, n=64)
    return (WorldModelTorchRLEnv(model, start, n, max_episode_steps=horizon, seed=seed),
            make_torchrl_env(model, start, n, horizon=horizon, seed=seed))


def test_our_torchrl_face_and_torchrl_world_model_env_give_the_same_steps():
    ours, theirs = _torchrl_pair(n=5, horizon=7)
    a, b = ours.reset(), theirs.reset()
    assert torch.equal(a["observation"], b["observation"])
    g = torch.Generator().manual_seed(1)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(60):
        act = torch.randint(0, 2, (5,), generator=g)
        a.set("action", act)
        b.set("action", act.clone())
        step_a, a = ours.step_and_maybe_reset(a)
        step_b, b = theirs.step_and_maybe_reset(b)
        for key in ("observation", "reward", "terminated", "done"):
            assert torch.equal(step_a["next", key], step_b["next", key]), key
        # A member terminating on its last step: our core reports terminated only, TorchRL's
        # StepCounter also sets truncated. Everywhere else truncated is the same.
        live = ~step_a["next", "terminated"]
        assert torch.equal(step_a["next", "truncated"][live], step_b["next", "truncated"][live])
        assert torch.equal(a["observation"], b["observation"])  # after the partial resets
        for key in ends:
            ends[key] += int(step_a["next", key].sum())
    assert ends["terminated"] > 0 and ends["truncated"] > 0


def test_torchrl_rollouts_and_specs_match():
    from torchrl.envs.utils import check_env_specs

    from wmenv.benchmarks.perf_compare import _ReplayPolicy

    ours, theirs = _torchrl_pair(n=4, horizon=6)
    check_env_specs(theirs, seed=0)
    assert theirs.reward_spec.shape == ours.reward_spec.shape == (4, 1)
    acts = torch.randint(0, 2, (40, 4), generator=torch.Generator().manual_seed(0))
    ours.set_seed(5)
    theirs.set_seed(5)
    ra = ours.rollout(30, policy=_ReplayPolicy(acts), break_when_any_done=False)
    rb = theirs.rollout(30, policy=_ReplayPolicy(acts), break_when_any_done=False)
    for key in ("observation", ("next", "observation"), ("next", "reward"), ("next", "done"), ("next", "terminated")):
        assert torch.equal(ra[key], rb[key]), key


def test_plain_torchrl_world_model_env_needs_caller_latents():
    """What the comparison gives TorchRL's env: without start latents its reset raises."""
    from torchrl.envs.model_based import WorldModelEnv

    from wmenv.benchmarks.perf_compare import make_torchrl_world_model
    from wmenv.envs import WorldModelTorchRLEnv
    from wmenv.testing import fake_start_states

    model = _model()
    spec_env = WorldModelTorchRLEnv(model, fake_start_states(model), 2)
    env = WorldModelEnv(make_torchrl_world_model(model, torch.Generator()), spec_env, latent_key="observation")
    with pytest.raises(RuntimeError, match="initial latent"):
        env.reset()


# ------------------------------------------------------------------ the commands


def test_compare_torchrl_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "torchrl.json"
    assert main(["perf", "--compare", "torchrl", "--sizes", "1,2", "--steps", "3", "--repeats", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["mode"] == "compare-torchrl" and {"torch_threads", "machine", "notes"} <= set(data)
    assert set(data["results"]) == {"1", "2"}
    for r in data["results"].values():
        for what in ("step", "rollout", "collector"):
            assert r[f"ours_{what}"] > 0 and r[f"torchrl_{what}"] > 0
            assert r[f"{what}_ratio"] == pytest.approx(r[f"ours_{what}"] / r[f"torchrl_{what}"])
        assert r["raw"] > 0 and r["ours_step_vs_raw"] > 0
    text = capsys.readouterr().out
    assert "| N | raw | step: ours | step: TorchRL | step: ours/TorchRL |" in text
    assert "real start latents" in text and "StepCounter(max_steps=100)" in text  # says what TorchRL's env was given


def test_compare_naive_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "naive.json"
    assert main(["perf", "--compare", "naive", "--sizes", "1,2", "--steps", "3", "--repeats", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())["results"]
    assert {"raw", "naive_single", "ours_single", "ours_single_protocol", "naive_vector", "ours_vector",
            "single_ratio", "single_protocol_ratio", "vector_ratio"} <= set(data["1"])
    assert "naive_single" not in data["2"] and data["2"]["vector_ratio"] > 0
    assert "| N | raw | naive single |" in capsys.readouterr().out


def test_train_writes_tables_and_json(tmp_path, capsys):
    out = tmp_path / "train.json"
    assert main(["perf", "--train", "--models", "mlp-wm", "--presets", "tiny", "--batch-size", "2",
                 "--seq-len", "4", "--steps", "1", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["mode"] == "train" and data["batch"]["batch_size"] == 2
    assert set(data["families"]) == {"mlp-wm/tiny"}
    assert data["families"]["mlp-wm/tiny"]["updates_per_s"] > 0 and data["families"]["mlp-wm/tiny"]["params"] > 0
    pair = data["dreamer_vs_torchrl"]["tiny"]
    assert {"ours_params", "torchrl_params", "ours_updates_per_s", "torchrl_updates_per_s", "ratio", "sizes"} <= set(pair)
    text = capsys.readouterr().out
    assert f"{pair['ours_params']:,}" in text and f"{pair['torchrl_params']:,}" in text  # both counts printed


def test_train_pixel_families_on_images_and_missing_presets_listed():
    from wmenv.benchmarks.perf_compare import measure_training
    from wmenv.registry import get_model_spec, list_models

    pixel_only = [n for n in list_models() if "vector" not in get_model_spec(n).observations]
    models = ["mlp-wm", *pixel_only[:1]]
    result = measure_training(models, ("tiny", "no-such-preset"), batch_size=2, seq_len=4, updates=1, repeats=1,
                              torchrl_dreamer=False)
    assert result["families"]["mlp-wm/tiny"]["observation"] == "16-d vector"
    if pixel_only:
        assert result["families"][f"{pixel_only[0]}/tiny"]["observation"].endswith("uint8")
    assert any(s.startswith("mlp-wm/no-such-preset (no such preset") for s in result["skipped"])
    assert result["dreamer_vs_torchrl"] == {}


def test_default_train_models_one_per_family():
    from wmenv.benchmarks.perf_compare import default_train_models
    from wmenv.registry import get_model_spec, list_models

    chosen = default_train_models()
    families = {get_model_spec(n).family for n in list_models()}
    assert sorted(get_model_spec(n).family for n in chosen) == sorted(families)
    assert "dreamer-wm" in chosen  # the world model, not the agent


def test_torchrl_dreamer_is_the_same_size():
    import gymnasium as gym

    from wmenv.benchmarks.perf_compare import DREAMER_IMAGE, count_params, make_torchrl_dreamer
    from wmenv.registry import create_config, create_model

    for preset in ("tiny", "small"):
        config = create_config("dreamerv1-wm", preset)
        ours = create_model("dreamerv1-wm", config=config,
                            observation_space=gym.spaces.Box(0, 255, DREAMER_IMAGE, np.uint8),
                            action_space=gym.spaces.Box(-1.0, 1.0, (6,), np.float32))
        theirs, _ = make_torchrl_dreamer(config, 6)
        assert 0.8 < count_params(theirs) / count_params(ours) < 1.2, preset


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "abc"], "--sizes takes batch sizes"),
    (["--sizes", "0"], "--sizes takes batch sizes >= 1"),
    (["--compare", "torchrl", "--sizes", "1,x"], "--sizes takes batch sizes"),
    (["--train", "--sizes", "1"], "--sizes sets env batch sizes"),
    (["--train", "--compare", "naive"], "--train and --compare"),
    (["--train", "--models", "no-such-model"], "no-such-model"),
    (["--train", "--presets", ","], "--presets"),
    (["--threads", "0"], "--threads must be >= 1"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(["perf", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wmenv perf: error:") and message in err
