"""``wmenv register RUN --id wmenv/CartPoleDream-v0``: bind a Gymnasium id to a run, for every later process.

After it, ``gym.make("wmenv:wmenv/CartPoleDream-v0")`` works in any script (the ``wmenv:`` prefix makes
Gymnasium import wmenv, which registers the bound ids), and ``gym.make("wmenv/CartPoleDream-v0")``
after ``import wmenv``. The binding lives in :func:`wmenv.envs.registration.user_registry_path`.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``wmenv register`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "register", help="bind a Gymnasium id (wmenv/Name-v0) to a run directory, persistently",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", nargs="?", help="run directory (or its checkpoint.pt)")
    p.add_argument("--id", dest="env_id", help="the id, e.g. wmenv/CartPoleDream-v0")
    p.add_argument("--observation-mode", default=None, help="default observation_mode (latent or decoded)")
    p.add_argument("--max-episode-steps", type=int, default=None,
                   help="default imagination horizon (default: the run's real env time limit)")
    p.add_argument("--replace", action="store_true", help="rebind an id that is bound to another run")
    p.add_argument("--list", action="store_true", help="list the bound ids")
    p.add_argument("--remove", metavar="ID", default=None, help="unbind an id")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from wmenv.core.errors import ConfigError
    from wmenv.envs.registration import bound_envs, register_env, unregister_env, user_registry_path
    from wmenv.runs import open_run

    if args.list:
        for env_id, kwargs in sorted(bound_envs().items()):
            print(f"{env_id}: {kwargs}")
        return 0
    if args.remove:
        unregister_env(args.remove)
        print(f"unbound {args.remove}")
        return 0
    if not args.run or not args.env_id:
        raise ConfigError("wmenv register needs RUN and --id ID (or --list / --remove ID)")
    run = open_run(args.run)  # refuses a missing, corrupt or hostile run before anything is written
    run.world_model(args.observation_mode)  # and a run that cannot be imagined in
    defaults = {k: v for k, v in (("observation_mode", args.observation_mode),
                                  ("max_episode_steps", args.max_episode_steps)) if v is not None}
    full = register_env(args.env_id, run.path, persist=True, replace=args.replace, **defaults)
    print(f"registered {full} -> {run.path} (in {user_registry_path()}); "
          f"gym.make('wmenv:{full}') now works in any script")
    return 0
