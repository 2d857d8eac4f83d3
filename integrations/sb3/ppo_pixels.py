"""Stable-Baselines3 PPO (``CnnPolicy``) on decoded pixel observations, judged in the real env.

The world model imagines 64x64 RGB frames (its decoder in ``observation_mode="decoded"``), so the
policy trained in imagination reads the real env's rendered frames unchanged: no filter needed.
Without ``--checkpoint`` a tiny pixel world model of dm_control's ``cartpole-swingup`` is trained
first (about a minute on a CPU). That model has not learned the reward yet, so at the default budget
the imagined return stays flat and the real return is noise: the run checks the pixel plumbing end
to end. Learning something needs a pixel model trained for thousands of updates (a GPU run).

Usage::

    python -m integrations.sb3.ppo_pixels                    # from the repo root; tiny pixel world model first
    python -m integrations.sb3.ppo_pixels --checkpoint runs/cartpole_pixels --total-steps 200000

Writes ``--out``: ``results.json``, ``returns.csv``, ``returns.png`` and ``policy.zip``.
"""

from __future__ import annotations

import json
from typing import Any

from stable_baselines3 import PPO

from integrations.common import prepare, recipe_parser, sb3_imagined_vec_env, sb3_learn_judged

PIXEL_ENV = "cartpole-swingup"
#: ``make_env`` arguments of the real pixel env (64x64 frames, as Dreamer's conv encoder expects).
PIXEL_ENV_KWARGS: dict[str, Any] = {"pixels": True, "image_size": 64, "action_repeat": 4}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe; returns the results written to ``results.json``."""
    parser = recipe_parser(
        "SB3 PPO CnnPolicy on decoded pixels, judged in the real env",
        total_steps=20_000,
        num_envs=16,
        horizon=50,
        eval_every=5_000,
        out="results/sb3_ppo_pixels",
    )
    parser.add_argument("--n-steps", type=int, default=64, help="PPO rollout length per imagined env")
    parser.add_argument(
        "--env-kwargs",
        type=json.loads,
        default=None,
        help=f"real env make_env arguments as JSON (default {json.dumps(PIXEL_ENV_KWARGS)})",
    )
    parser.set_defaults(wm_updates=150, wm_seed_steps=1000, eval_episodes=2)
    args = parser.parse_args(argv)

    run = prepare(args, env_id=PIXEL_ENV, env_kwargs=PIXEL_ENV_KWARGS, batch_size=4, seq_len=16)
    venv = sb3_imagined_vec_env(run, args, "image", "CnnPolicy", "decoded")
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=args.n_steps,
        batch_size=256,
        n_epochs=4,
        learning_rate=3e-4,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )

    return sb3_learn_judged(model, run, args, "sb3-ppo-pixels (CnnPolicy)", "decoded")


if __name__ == "__main__":
    main()
