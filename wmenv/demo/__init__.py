"""``wmenv demo``: the whole loop on a laptop CPU.

Real data → world model → a policy trained *only* in imagination → judged in the real env.

Each round: train the world model on the replay; train an SB3 policy entirely inside the
batched imagination env (the SB3 ``VecEnv`` face, episodes starting from real replay slices);
then let that policy collect a little more real data (which also measures it). The best
round's policy — by the returns of the collection episodes it played from their first step
(the real env is not reset between rounds, so a round's first episode usually began under the
previous policy), i.e. without extra real steps — is evaluated in the real env over
``eval_episodes`` episodes by the benchmark harness.

Writes ``runs/<timestamp>_demo/`` with ``checkpoint.pt`` (+ replay snapshot), ``policy.zip``,
``report.md``, TensorBoard logs, ``metrics.csv`` and PNG plots.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmenv.demo.config import DemoConfig, demo_config_for

__all__ = ["run_demo", "DemoConfig", "demo_config_for"]


class _LatentPolicy:
    """An imagination-trained SB3 policy acting on real observations through the model's filter."""

    def __init__(self, agent: Any, imagination: Any, deterministic: bool = False) -> None:
        self.agent, self.imagination, self.deterministic = agent, imagination, deterministic
        self.state: Any = None
        self.prev_action: np.ndarray | None = None

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None or self.state is None or bool(np.all(mask)):
            self.state, self.prev_action = None, None
        elif np.any(mask):
            self.state, self.prev_action = None, None  # batch of one in the demo

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        out = self.imagination.observe(self.state, self.prev_action, obs)
        self.state = out["state"]
        action, _ = self.agent.predict(out["observation"].cpu().numpy(), deterministic=self.deterministic)
        self.prev_action = action
        return action


class _EpsilonPolicy:
    """With probability ``epsilon`` a uniformly random action instead of the policy's (exploration)."""

    def __init__(self, policy: Any, action_space: Any, epsilon: float, seed: int) -> None:
        self.policy, self.space, self.epsilon = policy, action_space, epsilon
        self.rng = np.random.default_rng(seed)
        self.space.seed(seed)

    def reset(self, mask: np.ndarray | None = None) -> None:
        if hasattr(self.policy, "reset"):
            self.policy.reset(mask)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        action = np.asarray(self.policy(obs))
        explore = self.rng.random(action.shape[0]) < self.epsilon
        for i in np.flatnonzero(explore):  # at most a few members per step
            action[i] = self.space.sample()
        return action


def _make_algo(config: DemoConfig, venv: Any, seed: int, device: str) -> Any:
    from stable_baselines3 import PPO, SAC

    policy = "CnnPolicy" if config.observation_mode == "decoded" and config.pixels else "MlpPolicy"
    if config.algo == "ppo":
        return PPO(policy, venv, seed=seed, device=device, verbose=0, **dict(config.algo_kwargs))
    return SAC(policy, venv, seed=seed, device=device, verbose=0, **dict(config.algo_kwargs))


def run_demo(
    config: DemoConfig | None = None,
    *,
    seed: int = 0,
    out_root: str | Path = "runs",
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo loop and write its run directory.

    Args:
        config: what to run (default: the CartPole-v1 preset).
        seed: seed of data collection, model and policy training.
        out_root: where ``<timestamp>_demo/`` is created.
        device: torch device for the world model and the policy.
        progress: show progress bars.

    Returns:
        Summary dict (also written as ``summary.json``).
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from wmenv.benchmarks.runner import run_benchmark
    from wmenv.core.protocol import ReplayStartStates
    from wmenv.envs.make import make_env
    from wmenv.envs.sb3 import WorldModelSB3VecEnv
    from wmenv.train import TrainerConfig, replay_as_tensordict
    from wmenv.train.runinfo import new_run_dir
    from wmenv.train.session import Schedule, TrainingRun

    config = config or demo_config_for("CartPole-v1")
    t_start = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    run_dir = new_run_dir(out_root, "demo")
    print(f"wmenv demo: {config.env_id}, run dir {run_dir}", flush=True)
    env_kwargs = dict(config.env_kwargs)
    tconf = TrainerConfig(batch_size=config.batch_size, seq_len=config.seq_len, lr=config.lr, log_every=25,
                          checkpoint_every=0, device=device, seed=seed, progress=progress)
    session = TrainingRun.start(
        config.model, config.env_id, preset=config.preset, overrides=dict(config.model_overrides),
        env_kwargs=env_kwargs, seed=seed, schedule=Schedule(seed_steps=config.seed_steps), trainer=tconf,
        run_dir=run_dir, capacity=config.real_step_budget * 2 + 1000, slice_len=config.seq_len, device=device,
        progress=progress, producer="wmenv demo",
    )
    trainer, replay, model = session.trainer, session.replay, session.model
    env = make_env(config.env_id, **env_kwargs)
    first = session.collect(config.seed_steps)
    real_steps = first.steps
    if len(replay) == 0:  # rows reach the replay when their episode ends
        import shutil

        from wmenv.core.errors import ConfigError

        session.close(plot=False)
        shutil.rmtree(run_dir, ignore_errors=True)  # it holds nothing but the empty replay
        raise ConfigError(
            f"seed_steps={config.seed_steps} did not finish one episode of {config.env_id}, so the world model "
            "would have no data (episodes are written to the replay when they end); raise seed_steps above "
            "one episode's length"
        )
    to_world_model = session.spec.to_world_model
    algo = None
    rounds: list[dict[str, Any]] = []
    policies = run_dir / "policies"
    policies.mkdir()
    for rnd in range(config.rounds):
        t0 = time.perf_counter()
        trainer.train(config.wm_updates_first if rnd == 0 else config.wm_updates)
        t_wm = time.perf_counter() - t0
        model.eval()
        imagination = to_world_model(model, observation_mode=config.observation_mode,
                                     sample_termination=config.sample_termination)
        start = ReplayStartStates(replay_as_tensordict(replay).clone(), context_length=config.context_length,
                                  end_bias=config.start_near_end, end_window=config.start_end_window)
        venv = VecMonitor(WorldModelSB3VecEnv(imagination, start, config.num_envs,
                                              max_episode_steps=config.horizon, seed=seed + rnd, device=device))
        if algo is None:
            algo = _make_algo(config, venv, seed, device)
        else:
            algo.set_env(venv)
        t0 = time.perf_counter()
        algo.learn(config.policy_steps, reset_num_timesteps=False, progress_bar=False)
        t_policy = time.perf_counter() - t0
        imagined = [float(e["r"]) for e in algo.ep_info_buffer]
        algo.save(policies / f"round{rnd}.zip")
        model.train()
        budget_left = config.real_step_budget - real_steps
        steps = min(config.collect_steps, budget_left)
        real_returns: list[float] = []
        own: list[float] = []
        if steps > 0:
            if config.observation_mode == "latent":
                policy = _LatentPolicy(algo, imagination, deterministic=config.collect_deterministic)
            else:
                def policy(obs: np.ndarray, _algo: Any = algo) -> np.ndarray:
                    return _algo.predict(obs, deterministic=config.collect_deterministic)[0]
            if config.collect_epsilon > 0:
                policy = _EpsilonPolicy(policy, env.action_space, config.collect_epsilon, seed + rnd)
            continued = bool(session.collector.episodes_in_progress[0])
            stats = session.collect(steps, policy)
            real_steps += stats.steps
            real_returns = [float(r) for r in stats.episode_returns]
            # The first episode to end usually began under the previous round's policy: judge this
            # round's policy by the episodes it played from their start, when it finished any.
            own = real_returns[1:] if continued and len(real_returns) > 1 else real_returns
        rounds.append({
            "round": rnd,
            "world_model_updates": trainer.step,
            "imagined_return": float(np.mean(imagined)) if imagined else None,
            "real_returns": real_returns,
            "real_return": float(np.mean(real_returns)) if real_returns else None,
            "own_return": float(np.mean(own)) if own else None,
            "real_steps": real_steps,
            "seconds_world_model": round(t_wm, 1),
            "seconds_policy": round(t_policy, 1),
        })
        print(f"round {rnd}: imagined return {rounds[-1]['imagined_return']}, real return of its collection "
              f"episodes {rounds[-1]['real_return']}, real steps {real_steps}", flush=True)
        if real_steps >= config.real_step_budget:
            break
    best = _pick_round(rounds)
    policy_path = run_dir / "policy.zip"
    policy_path.write_bytes((policies / f"round{best}.zip").read_bytes())
    model.eval()
    session.save()
    session.close(plot=False)
    agent_kwargs = {"world_model": str(run_dir / "checkpoint.pt")} if config.observation_mode == "latent" else {}
    bench = run_benchmark(
        "sb3", config.env_id, [seed], config.eval_episodes, run_dir / "benchmark", checkpoint=policy_path,
        device=device, env_kwargs=env_kwargs, agent_kwargs=agent_kwargs, progress=progress,
        bootstrap_reps=1000,
    )
    returns = [float(r) for r in bench["per_seed"][0]["episode_returns"]]
    summary = {
        "env_id": config.env_id,
        "seed": seed,
        "real_env_return_mean": float(np.mean(returns)),
        "real_env_return_std": float(np.std(returns)),
        "eval_episodes": len(returns),
        "real_env_steps_used": int(real_steps),
        "chosen_round": best,
        "rounds": rounds,
        "seconds": round(time.perf_counter() - t_start, 1),
        "run_dir": str(run_dir),
        "config": config.to_dict(),
    }
    from wmenv.demo.report import write_report

    write_report(run_dir, summary, model, replay, config)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    minutes, secs = divmod(int(summary["seconds"]), 60)
    print(
        f"wmenv demo: {config.env_id} real-env return {summary['real_env_return_mean']:.1f} ± "
        f"{summary['real_env_return_std']:.1f} over {len(returns)} episodes, using {real_steps} real env steps "
        f"(seed {seed}, {minutes}m{secs:02d}s) -> {run_dir}",
        flush=True,
    )
    return summary


def _pick_round(rounds: list[dict[str, Any]]) -> int:
    """The round whose policy did best on its own real collection episodes (later wins ties)."""
    best, best_value = len(rounds) - 1, -np.inf
    for r in rounds:
        if r["own_return"] is not None and r["own_return"] >= best_value:
            best, best_value = r["round"], r["own_return"]
    return best
