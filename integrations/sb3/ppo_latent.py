"""Stable-Baselines3 PPO (``MlpPolicy``) on a world model's latent features, judged in the real env.

The policy never sees the real env while it trains: ``WorldModelSB3VecEnv`` steps ``--num-envs``
imagined CartPoles in one forward pass of the world model, starting from real replay data. Every
``--eval-every`` imagined steps the policy plays the REAL env, which it sees through the same model
(``LatentObservationWrapper`` filters real observations into latent features), and the imagined and
real returns are logged side by side.

Usage::

    python -m integrations.sb3.ppo_latent                      # from the repo root; tiny world model first
    python -m integrations.sb3.ppo_latent --checkpoint runs/cartpole --total-steps 100000

Writes ``--out``: ``results.json``, ``returns.csv``, ``returns.png`` and ``policy.zip``.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3 import PPO

from integrations.common import prepare, recipe_parser, sb3_imagined_vec_env, sb3_learn_judged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe; returns the results written to ``results.json``."""
    parser = recipe_parser(
        "SB3 PPO MlpPolicy on latent observations, judged in the real env",
        total_steps=60_000,
        num_envs=64,
        horizon=64,
        eval_every=10_000,
        out="results/sb3_ppo_latent",
    )
    parser.add_argument("--n-steps", type=int, default=32, help="PPO rollout length per imagined env")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)

    run = prepare(args)  # wmenv.open_run(--checkpoint), or a tiny world model trained first
    venv = sb3_imagined_vec_env(run, args, "vector", "MlpPolicy", "latent")
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=args.n_steps,
        batch_size=min(512, args.n_steps * args.num_envs),
        n_epochs=4,
        learning_rate=args.lr,
        gamma=0.98,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )

    return sb3_learn_judged(model, run, args, "sb3-ppo-latent (MlpPolicy)", "latent")


if __name__ == "__main__":
    main()
