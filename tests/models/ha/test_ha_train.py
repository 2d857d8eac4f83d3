import gymnasium as gym
import pytest
import torch
from tensordict import TensorDict

from tests.models.ha.conftest import DISCRETE, VECTOR, micro
from wmenv.core import TensorDictStartStates
from wmenv.core.errors import CheckpointError, ConfigError
from wmenv.models.ha import CMAConfig, StageOrderError, WorldModelsAgent
from wmenv.models.ha.evolution import dream_returns, real_returns, train_controller
from wmenv.models.ha.train import main, run_stages
from wmenv.train.checkpoint import load_checkpoint, load_model, save_checkpoint

TINY_RUN = {"schedule.random_steps": 200, "schedule.vae_steps": 5, "schedule.rnn_steps": 5, "cma.generations": 2,
            "cma.dream_horizon": 10, "cma.real_max_steps": 10}


def test_stage_order_errors() -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE)
    assert agent.stage == "vae" and agent.trained_stages == ()
    with pytest.raises(StageOrderError, match=r"stage 'mdnrnn' needs a trained 'vae' first.*run --stage vae first"):
        agent.set_stage("mdnrnn")
    agent.mark_trained("vae")
    with pytest.raises(StageOrderError, match=r"needs a trained 'mdnrnn' first.*run --stage mdnrnn first"):
        agent.set_stage("controller")
    with pytest.raises(StageOrderError, match="run --stage mdnrnn first"):
        train_controller(agent, CMAConfig(popsize=2, generations=1), temperature=1.0)
    with pytest.raises(ConfigError, match="unknown stage 'policy'"):
        agent.set_stage("policy")


def test_stage_order_error_from_the_driver(tmp_path) -> None:
    with pytest.raises(StageOrderError, match="run --stage vae"):
        run_stages("controller", tmp_path / "run", env_id="CartPole-v1")
    assert main(["--run-dir", str(tmp_path / "run2"), "--stage", "mdnrnn", "--env", "CartPole-v1"]) == 2


def test_cma_package_needs_two_candidates() -> None:
    import cma

    with pytest.raises(ValueError, match=">=2"):  # why CMAConfig refuses popsize < 2 up front
        cma.CMAEvolutionStrategy([0.0, 0.0], 0.1, {"popsize": 1, "verbose": -9})
    with pytest.raises(ConfigError, match="at least 2 candidates"):
        micro(cma=CMAConfig(popsize=1))


def test_checkpoint_roundtrip(tmp_path) -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE)
    agent.vae.fit_normalizer(torch.randn(50, 4) * 3 + 1)
    agent.controller.set_flat(torch.randn(agent.controller.num_params))
    agent.mark_trained("vae")
    agent.set_stage("mdnrnn")
    path = save_checkpoint(tmp_path / "ck.pt", model_name="world-models", family="world-models", config=agent.config,
                           model=agent, step=7, observation_space=VECTOR, action_space=DISCRETE)
    loaded, meta = load_model(path, expected_family="world-models")
    assert isinstance(loaded, WorldModelsAgent) and meta["step"] == 7 and meta["config_obj"] == agent.config
    assert loaded.stage == "mdnrnn" and loaded.trained_stages == ("vae",)
    for (k, a), (_, b) in zip(agent.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(CheckpointError, match="expected 'dreamer'"):
        load_checkpoint(path, expected_family="dreamer")


def test_dream_and_real_returns_are_batched_and_seeded() -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE).eval()
    starts = TensorDictStartStates(TensorDict({"observation": torch.randn(6, 4) * 0.05}, [6]))
    params = torch.randn(3, agent.controller.num_params)
    a = dream_returns(agent, params, 2, starts, horizon=8, temperature=1.2, seed=5)
    b = dream_returns(agent, params, 2, starts, horizon=8, temperature=1.2, seed=5)
    assert a.shape == (3, 2) and torch.equal(a, b)
    r = real_returns(agent, params[:2], 2, lambda: gym.make("CartPole-v1"), seed=0, max_steps=15)
    assert r.shape == (2, 2) and bool((r >= 1).all()) and bool((r <= 15).all())


def test_tiny_run_stage_by_stage_with_resume_and_benchmark(tmp_path) -> None:
    from wmenv.benchmarks.adapters import get_agent

    run = tmp_path / "run"
    kw = {"env_id": "CartPole-v1", "preset": "tiny", "progress": False, "eval_episodes": 2}
    out = run_stages("vae", run, overrides=TINY_RUN, **kw)
    assert out["trained_stages"] == ["vae"]
    bench = get_agent("ha", env_id="CartPole-v1")
    with pytest.raises(CheckpointError, match="controller stage never ran"):
        bench.load_checkpoint(run)
    with pytest.raises(ConfigError, match="cannot change \\['z_dim'\\]"):
        run_stages("mdnrnn", run, overrides={"z_dim": 3}, **kw)
    out = run_stages("all", run, overrides={"cma.popsize": 3, "schedule.iterations": 1,
                                            "schedule.iteration_steps": 30, "schedule.iteration_vae_steps": 2,
                                            "schedule.iteration_rnn_steps": 3}, **kw)
    assert out["trained_stages"] == ["vae", "mdnrnn", "controller"]
    assert len(out["controller"]["eval_returns"]) == 2 and set(out["rounds"]) == {"0", "1"}
    meta = load_checkpoint(run / "checkpoint.pt")
    assert meta["step"] == 15 and meta["config"]["cma"]["popsize"] == 3
    assert meta["extra"]["user_state"]["done"] == ["vae@0", "mdnrnn@0", "controller@0", "collect@1", "vae@1",
                                                   "mdnrnn@1", "controller@1"]
    assert meta["extra"]["user_state"]["env_steps"] >= 230
    bench.load_checkpoint(run / "checkpoint.pt")
    result = bench.evaluate(2, seed=0)
    assert len(result["episode_returns"]) == 2 and all(n >= 1 for n in result["episode_lengths"])
    assert result == bench.evaluate(2, seed=0)  # deterministic given the seed


def test_exploring_policy_feeds_the_taken_action_to_the_lstm() -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE).eval()
    obs = torch.randn(64, 4)
    greedy = agent.policy()(obs.numpy())
    explore = agent.policy(epsilon=1.0, seed=3)
    random_actions = explore(obs.numpy())
    assert (greedy == 0).all() and 10 < random_actions.sum() < 54  # zero controller: argmax picks 0
    assert (agent.policy(epsilon=1.0, seed=3)(obs.numpy()) == random_actions).all()
    z, _ = agent.vae.encode(obs)
    h, _ = agent.mdnrnn.step(z, torch.as_tensor(random_actions), *agent.mdnrnn.initial(64))
    torch.testing.assert_close(explore.h, h)
    with pytest.raises(ConfigError, match="epsilon must be in"):
        agent.policy(epsilon=2.0)


def test_generic_cli_run_continues_with_the_stage_driver(tmp_path) -> None:
    from wmenv.cli.train import main as wmenv_train

    run = tmp_path / "run"
    code = wmenv_train(["train", "world-models", "--env", "CartPole-v1", "--preset", "tiny", "--steps", "4",
                        "--seed-steps", "200", "--run-dir", str(run), "--no-progress"])
    assert code == 0
    assert load_model(run / "checkpoint.pt")[0].trained_stages == ("vae",)  # the generic CLI trains the VAE stage
    out = run_stages("mdnrnn", run, overrides={"schedule.rnn_steps": 3}, progress=False)
    assert out["trained_stages"] == ["vae", "mdnrnn"]
    with pytest.raises(ConfigError, match="is a run on 'CartPole-v1', not 'Pendulum-v1'"):
        run_stages("controller", run, env_id="Pendulum-v1", progress=False)


@pytest.mark.parametrize("where", ["dream", "real"])
def test_train_controller_in_dream_or_real_env(where: str) -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE)
    agent.mark_trained("vae")
    agent.mark_trained("mdnrnn")
    starts = TensorDictStartStates(TensorDict({"observation": torch.randn(6, 4) * 0.05}, [6]))
    cfg = CMAConfig(popsize=3, generations=2, episodes_per_candidate=2, where=where, dream_horizon=6,
                    real_max_steps=6, eval_every=2, eval_episodes=1)
    rows = []
    history = train_controller(agent, cfg, temperature=1.1, start_states=starts,
                               env_fn=lambda: gym.make("CartPole-v1"), log=rows.append)
    assert len(history) == 2 and rows == history and "real_return" in history[1]
    assert "controller" in agent.trained_stages
    assert not torch.equal(agent.controller.get_flat(), torch.zeros(agent.controller.num_params))
    if where == "dream":
        with pytest.raises(ValueError, match="needs start_states"):
            train_controller(agent, cfg, temperature=1.0)
