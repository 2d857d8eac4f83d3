"""TorchRL PPO inside a world model (``WorldModelTorchRLEnv``), judged in the real env via ``GymWrapper``.

The pieces are TorchRL's own: a ``ProbabilisticActor`` and a ``ValueOperator``, ``ClipPPOLoss`` with
``GAE``, a ``Collector`` (``--workers N``: a ``MultiSyncCollector`` over env constructors, one world
model per worker process) and a TensorDict replay buffer (``LazyTensorStorage`` +
``SamplerWithoutReplacement``) for the PPO epochs. Imagined returns come from a ``RewardSum``
transform; real returns from ``GymWrapper`` over the real Gymnasium env, seen through the model's
posterior filter when observations are latent.

Usage::

    python -m integrations.torchrl.ppo_torchrl                 # from the repo root; tiny world model first
    python -m integrations.torchrl.ppo_torchrl --checkpoint runs/cartpole --total-steps 100000 --workers 2

Writes ``--out``: ``results.json``, ``returns.csv``, ``returns.png`` and ``policy.pt``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn
from torchrl.collectors import Collector, MultiSyncCollector
from torchrl.data import Categorical, LazyTensorStorage, ReplayBuffer
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
from torchrl.envs import EnvBase, GymWrapper, RewardSum, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

import wmenv
from integrations.common import (
    EVAL_SEED,
    ReturnLog,
    check_observations,
    judge_env,
    prepare,
    recipe_parser,
    settings,
)
from wmenv.core import spec_to_space


def imagined_env(checkpoint: str, num_envs: int, horizon: int, seed: int, observation_mode: str) -> EnvBase:
    """Env constructor for the multi-process collector: each worker loads its own world model."""
    torch.set_num_threads(1)
    env = wmenv.make_imagination_env(
        checkpoint,
        "torchrl",
        num_envs=num_envs,
        max_episode_steps=horizon,
        observation_mode=observation_mode,
        seed=seed,
    )
    return TransformedEnv(env, RewardSum())


def make_modules(env: EnvBase, hidden: int = 64) -> tuple[ProbabilisticActor, ValueOperator]:
    """Actor (categorical or tanh-normal, from the action spec) and critic reading ``"observation"``."""
    obs_dim = env.observation_spec["observation"].shape[-1]
    spec = env.action_spec_unbatched
    if isinstance(spec, Categorical):
        net = MLP(
            in_features=obs_dim,
            out_features=int(spec.space.n),
            num_cells=[hidden, hidden],
            activation_class=nn.Tanh,
        )
        module = TensorDictModule(net, in_keys=["observation"], out_keys=["logits"])
        actor = ProbabilisticActor(
            module,
            in_keys=["logits"],
            spec=spec,
            return_log_prob=True,
            distribution_class=torch.distributions.Categorical,
        )
    else:
        net = nn.Sequential(
            MLP(
                in_features=obs_dim,
                out_features=2 * spec.shape[-1],
                num_cells=[hidden, hidden],
                activation_class=nn.Tanh,
            ),
            NormalParamExtractor(),
        )
        module = TensorDictModule(net, in_keys=["observation"], out_keys=["loc", "scale"])
        actor = ProbabilisticActor(
            module,
            in_keys=["loc", "scale"],
            spec=spec,
            return_log_prob=True,
            distribution_class=TanhNormal,
            distribution_kwargs={"low": spec.space.low, "high": spec.space.high},
        )
    value = MLP(in_features=obs_dim, out_features=1, num_cells=[hidden, hidden], activation_class=nn.Tanh)
    return actor, ValueOperator(value, in_keys=["observation"])


def real_env(run: Any, observation_mode: str, env_id: str | None) -> GymWrapper:
    """The real Gymnasium env (checked, latent-filtered if need be) as a TorchRL env, integer actions."""
    return GymWrapper(
        judge_env(run, observation_mode, env_id), categorical_action_encoding=True, device="cpu"
    )


@torch.no_grad()
def real_returns(real: GymWrapper, actor: ProbabilisticActor, episodes: int, seed: int) -> torch.Tensor:
    """Returns of greedy episodes in the real env (the same reset seeds at every call)."""
    real.set_seed(seed)
    returns = []
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        for _ in range(episodes):
            episode = real.rollout(100_000, policy=actor, break_when_any_done=True)
            returns.append(float(episode["next", "reward"].sum()))
    return torch.tensor(returns)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe; returns the results written to ``results.json``."""
    parser = recipe_parser(
        "TorchRL PPO in imagination, judged in the real env",
        total_steps=60_000,
        num_envs=64,
        horizon=64,
        eval_every=10_000,
        out="results/torchrl_ppo",
    )
    parser.add_argument("--observation-mode", default="latent", choices=("latent", "decoded"))
    parser.add_argument("--frames-per-batch", type=int, default=2048, help="imagined steps per PPO iteration")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--minibatch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--workers", type=int, default=0, help="> 0: MultiSyncCollector with this many processes"
    )
    args = parser.parse_args(argv)

    run = prepare(args)  # wmenv.open_run(--checkpoint), or a tiny world model trained first
    world_model = run.world_model(observation_mode=args.observation_mode)
    check_observations(
        spec_to_space(world_model.observation_spec),
        "vector",
        who="this MLP actor",
        observation_mode=args.observation_mode,
        source=run.path,
    )
    env = TransformedEnv(
        run.make_env(
            "torchrl",
            num_envs=args.num_envs,
            max_episode_steps=args.horizon,
            seed=args.seed,
            world_model=world_model,
        ),
        RewardSum(),
    )
    actor, critic = make_modules(env)
    real = real_env(run, args.observation_mode, args.env)  # built first: a misfit fails before training
    if args.workers > 0:
        make_env = functools.partial(
            imagined_env,
            str(run.path),
            args.num_envs,
            args.horizon,
            observation_mode=args.observation_mode,
        )
        collector: Any = MultiSyncCollector(
            [functools.partial(make_env, seed=args.seed + 1000 * i) for i in range(args.workers)],
            actor,
            frames_per_batch=args.frames_per_batch,
            total_frames=args.total_steps,
            auto_register_policy_transforms=False,
        )
    else:
        collector = Collector(
            env,
            actor,
            frames_per_batch=args.frames_per_batch,
            total_frames=args.total_steps,
            auto_register_policy_transforms=False,
        )
    advantage = GAE(gamma=0.98, lmbda=0.95, value_network=critic, average_gae=True)
    loss_module = ClipPPOLoss(
        actor, critic, clip_epsilon=0.2, entropy_coeff=0.01, critic_coeff=0.5, loss_critic_type="smooth_l1"
    )
    optim = torch.optim.Adam(loss_module.parameters(), lr=args.lr)
    buffer = ReplayBuffer(
        storage=LazyTensorStorage(args.frames_per_batch),
        sampler=SamplerWithoutReplacement(),
        batch_size=min(args.minibatch, args.frames_per_batch),
    )

    log = ReturnLog(args.out, "torchrl-ppo", settings(run, vars(args), args.observation_mode, args.env))
    frames, next_eval, imagined = 0, args.eval_every, float("nan")
    try:
        for data in collector:
            data = data.reshape(-1, data.shape[-1])  # [envs (x workers), time]: GAE runs along the last dim
            frames += data.numel()
            done = data["next", "done"].squeeze(-1)
            if done.any():
                imagined = float(data["next", "episode_reward"].squeeze(-1)[done].mean())
            for _ in range(args.epochs):
                with torch.no_grad():
                    advantage(data)
                buffer.extend(data.reshape(-1))
                for _ in range(max(1, data.numel() // buffer.batch_size)):
                    losses = loss_module(buffer.sample())
                    loss = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
                    optim.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(loss_module.parameters(), 1.0)
                    optim.step()
            collector.update_policy_weights_()
            if frames >= next_eval or frames >= args.total_steps:
                returns = real_returns(real, actor, args.eval_episodes, seed=EVAL_SEED)
                log.add(frames, imagined, float(returns.mean()), float(returns.std(correction=0)))
                next_eval = (frames // args.eval_every + 1) * args.eval_every
    finally:
        collector.shutdown()
        real.close()
    torch.save(actor.state_dict(), Path(args.out) / "policy.pt")
    return log.write(policy=str(Path(args.out) / "policy.pt"), collector=type(collector).__name__)


if __name__ == "__main__":
    main()
