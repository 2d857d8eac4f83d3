"""CleanRL-style single-file PPO trained inside a world model, judged in the real env.

The world model is an ordinary Gymnasium id: ``gym.make("wmenv/WorldModel-v0", checkpoint=...)``.
By default the script vectorizes it the CleanRL way, ``gym.vector.SyncVectorEnv`` over ``make_env``
thunks (each thunk loads its own copy of the model and steps a batch of one). With ``--batched``
it asks Gymnasium for the batched vector env instead,
``gym.make_vec(..., vectorization_mode="vector_entry_point")``: one model, one forward pass for
all envs. Everything below the env construction is the same PPO.

Both vector envs use same-step autoreset (the semantics CleanRL's PPO assumes); imagination-horizon
truncations bootstrap from the value of ``infos["final_obs"]``.

Usage::

    python -m integrations.cleanrl.ppo_wmenv                  # from the repo root; tiny world model first
    python -m integrations.cleanrl.ppo_wmenv --checkpoint runs/cartpole --batched --num-envs 64

Writes ``--out``: ``results.json``, ``returns.csv``, ``returns.png`` and ``agent.pt``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn, optim
from torch.distributions import Categorical, Normal

import wmenv  # noqa: F401  (registers "wmenv/WorldModel-v0")
from integrations.common import (
    ReturnLog,
    check_observations,
    judge_env,
    limit_threads,
    open_recipe_run,
    real_return,
    settings,
)
from wmenv.core import ConfigError


@dataclass
class Args:
    exp_name: str = "ppo_wmenv"
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    env_id: str = "wmenv/WorldModel-v0"
    """the Gymnasium id of the imagined env"""
    checkpoint: str | None = None
    """run dir of `wmenv train` / `wmenv demo` (default: train a tiny CartPole world model first)"""
    real_env: str | None = None
    """the real env to judge in (default: the one the checkpoint records)"""
    observation_mode: str = "latent"
    """what the policy sees: `latent` model features or `decoded` observations"""
    batched: bool = False
    """one batched env from gym.make_vec(vector_entry_point) instead of SyncVectorEnv over thunks"""
    total_timesteps: int = 60_000
    """total imagined env steps"""
    learning_rate: float = 1e-3
    """the learning rate of the optimizer"""
    num_envs: int = 8
    """the number of imagined envs"""
    num_steps: int = 128
    """the number of steps per env per policy rollout"""
    horizon: int = 64
    """imagined episode length (truncation)"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0"""
    gamma: float = 0.98
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda of generalized advantage estimation"""
    num_minibatches: int = 4
    """the number of mini-batches"""
    update_epochs: int = 4
    """the K epochs to update the policy"""
    norm_adv: bool = True
    """normalize advantages"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """clip the value loss"""
    ent_coef: float = 0.01
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    eval_every: int = 10_000
    """imagined steps between evaluations in the real env"""
    eval_episodes: int = 5
    """real episodes per evaluation"""
    out: str = "results/cleanrl_ppo"
    """output directory"""
    wm_updates: int = 300
    """world-model updates when no checkpoint is given"""
    wm_seed_steps: int = 2000
    """random real env steps for that world model"""

    # filled in at runtime
    batch_size: int = 0
    minibatch_size: int = 0
    num_iterations: int = 0


def parse_args(argv: list[str] | None = None) -> Args:
    """``Args`` from the command line: one flag per field, help from the field's docstring (as tyro does)."""
    tree = ast.parse(inspect.getsource(Args))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {a.target.id: b.value.value for a, b in zip(body, body[1:])  # type: ignore[union-attr]
            if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr)}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        if f.name not in docs:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=f.default, help=docs[f.name])
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default, help=docs[f.name])
    return Args(**vars(parser.parse_args(argv)))


def make_env(env_id: str, seed: int, checkpoint: str, observation_mode: str, horizon: int) -> Any:
    """A thunk for ``SyncVectorEnv``: one imagined env (its own copy of the world model)."""

    def thunk() -> gym.Env:
        env = gym.make(env_id, checkpoint=checkpoint, observation_mode=observation_mode,
                       max_episode_steps=horizon)
        env.action_space.seed(seed)
        return env

    return thunk


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate actor and critic MLPs; categorical (Discrete) or diagonal Gaussian (Box) actions."""

    def __init__(self, obs_dim: int, action_space: gym.Space) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        n_out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, n_out), std=0.01),
        )
        self.actor_logstd = None if self.discrete else nn.Parameter(torch.zeros(1, n_out))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def dist(self, x: torch.Tensor) -> torch.distributions.Distribution:
        out = self.actor(x)
        if self.discrete:
            return Categorical(logits=out)
        return Normal(out, self.actor_logstd.expand_as(out).exp())

    def get_action_and_value(
        self, x: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        probs = self.dist(x)
        if action is None:
            action = probs.sample()
        logprob, entropy = probs.log_prob(action), probs.entropy()
        if not self.discrete:
            logprob, entropy = logprob.sum(1), entropy.sum(1)
        return action, logprob, entropy, self.critic(x)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Greedy action for one observation (real-env evaluation)."""
        out = self.actor(torch.as_tensor(obs, dtype=torch.float32)[None])[0]
        return out.argmax().numpy() if self.discrete else out.numpy()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.batch_size = int(args.num_envs * args.num_steps)
    args.minibatch_size = int(args.batch_size // args.num_minibatches)
    args.num_iterations = max(1, args.total_timesteps // args.batch_size)
    if args.eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    limit_threads(1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = True

    run = open_recipe_run(args.checkpoint, args.out, env_id=args.real_env or "CartPole-v1",
                          updates=args.wm_updates, seed_steps=args.wm_seed_steps, seed=args.seed)
    checkpoint = str(run.path)
    real = judge_env(run, args.observation_mode, args.real_env)  # a wrong real env fails before training

    # env setup: the only lines that differ between the two paths
    if args.batched:
        envs = gym.make_vec(args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point",
                            checkpoint=checkpoint, observation_mode=args.observation_mode,
                            max_episode_steps=args.horizon, autoreset_mode="same_step")
    else:
        envs = gym.vector.SyncVectorEnv(
            [make_env(args.env_id, args.seed + i, checkpoint, args.observation_mode, args.horizon)
             for i in range(args.num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
    check_observations(envs.single_observation_space, "vector", who=f"{args.exp_name}'s MLP agent",
                       observation_mode=args.observation_mode, source=checkpoint)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    if isinstance(envs.single_action_space, gym.spaces.Box):
        envs = gym.wrappers.vector.ClipAction(envs)

    agent = Agent(int(np.prod(envs.single_observation_space.shape)), envs.single_action_space)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    log = ReturnLog(args.out, f"cleanrl-ppo ({'batched make_vec' if args.batched else 'SyncVectorEnv'})",
                    settings(run, dataclasses.asdict(args), args.observation_mode, args.real_env))

    # ALGO Logic: Storage setup
    obs = torch.zeros((args.num_steps, args.num_envs) + envs.single_observation_space.shape)
    actions = torch.zeros((args.num_steps, args.num_envs) + envs.single_action_space.shape)
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    dones = torch.zeros((args.num_steps, args.num_envs))
    values = torch.zeros((args.num_steps, args.num_envs))

    global_step, next_eval, imagined_returns = 0, args.eval_every, []
    start_time = time.time()
    next_obs, _ = envs.reset(seed=args.seed)
    next_obs, next_done = torch.Tensor(next_obs), torch.zeros(args.num_envs)

    for iteration in range(1, args.num_iterations + 1):
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(0, args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            next_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
            reward = torch.tensor(reward, dtype=torch.float32)
            cut = truncations & ~terminations  # horizon cut: bootstrap from the final observation
            if cut.any():
                final = torch.as_tensor(np.stack(infos["final_obs"][cut]), dtype=torch.float32)
                with torch.no_grad():
                    reward[torch.as_tensor(cut)] += args.gamma * agent.get_value(final).flatten()
            rewards[step] = reward
            next_obs = torch.Tensor(next_obs)
            next_done = torch.Tensor(np.logical_or(terminations, truncations).astype(np.float32))
            if "episode" in infos:
                imagined_returns.extend(infos["episode"]["r"][infos["_episode"]].tolist())

        # bootstrap value if not done
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                advantages[t] = lastgaelam
            returns = advantages + values

        # flatten the batch
        b_obs = obs.reshape((-1,) + envs.single_observation_space.shape)
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape((-1,) + envs.single_action_space.shape)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        # Optimizing the policy and value network
        b_inds = np.arange(args.batch_size)
        for _epoch in range(args.update_epochs):
            np.random.shuffle(b_inds)
            for start in range(0, args.batch_size, args.minibatch_size):
                mb_inds = b_inds[start : start + args.minibatch_size]
                mb_actions = b_actions[mb_inds].long() if agent.discrete else b_actions[mb_inds]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], mb_actions)
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                newvalue = newvalue.view(-1)
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                loss = pg_loss - args.ent_coef * entropy.mean() + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        if global_step >= next_eval or iteration == args.num_iterations:
            real_mean, real_std = real_return(real, agent.act, args.eval_episodes)
            imagined = float(np.mean(imagined_returns[-100:])) if imagined_returns else float("nan")
            log.add(global_step, imagined, real_mean, real_std)
            print(f"SPS: {int(global_step / (time.time() - start_time))}", flush=True)
            next_eval = (global_step // args.eval_every + 1) * args.eval_every

    envs.close()
    real.close()
    torch.save(agent.state_dict(), Path(args.out) / "agent.pt")
    return log.write(agent=str(Path(args.out) / "agent.pt"),
                     steps_per_second=round(global_step / (time.time() - start_time), 1))


if __name__ == "__main__":
    main()
