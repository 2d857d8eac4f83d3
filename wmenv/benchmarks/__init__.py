"""Benchmark harness: judge agents in the REAL env over seeds x episodes, with rliable statistics.

- :mod:`~wmenv.benchmarks.metrics`: IQM / mean / median / optimality gap, stratified bootstrap CIs,
  Atari human-normalised scores (pure NumPy).
- :mod:`~wmenv.benchmarks.adapters`: the :class:`AgentAdapter` protocol, the agent registry and
  :class:`RealEnvEvaluator`; built-in agents ``random`` and ``sb3``.
- :mod:`~wmenv.benchmarks.families`: :class:`RegistryAgent`, one agent per registered model that
  can act (``dreamer``, ``dreamerv1``, ...), registered lazily on the first agent lookup.
- :mod:`~wmenv.benchmarks.fidelity`: world-model fidelity (``wmenv evaluate-model``).
- :mod:`~wmenv.benchmarks.runner`: :func:`run_benchmark`, :func:`run_multi_agent`.
- :mod:`~wmenv.benchmarks.reporting`: JSON / CSV / Markdown / LaTeX / PNG writers.
- :mod:`~wmenv.benchmarks.imagine`: the model next to the real env on the same actions; the imagination gap.
- :mod:`~wmenv.benchmarks.perf`: imagined steps/s of each face vs the raw model (``wmenv perf``).
- ``wmenv benchmark`` and the other commands: :mod:`wmenv.cli`.
- :mod:`~wmenv.benchmarks.atari_100k`: the 26-game Atari 100k protocol.

Families get an agent by declaring ``policy=`` in their ``ModelSpec`` (the generic
:class:`RegistryAgent`) or an agent class of their own as ``benchmark_agent=``; other code registers
one with :func:`register_agent`. An agent class looks like this::

    from wmenv.envs.evaluate import RealEnvEvaluator

    class DreamerAgent:
        name = "dreamerv3"
        requires_checkpoint = True  # optional: cannot be meaningfully evaluated untrained

        def __init__(self, env_id, device="cpu", env_kwargs=None, preset=None):
            self._eval = RealEnvEvaluator(env_id, env_kwargs)
            ...

        def load_checkpoint(self, path): ...  # raise CheckpointError on a bad file

        def train(self, *, steps=None, epochs=None, seed=0, log_dir=None): ...  # optional

        def evaluate(self, num_episodes, render=False, seed=None, progress=None):
            return self._eval.run(self._act, num_episodes, seed=seed, render=render,
                                  on_episode_start=self._reset_state, progress=progress)

The factory is called as ``factory(env_id=..., device=..., env_kwargs=..., [preset=...], **extra)``;
``evaluate`` returns ``{"episode_returns": [...], "episode_lengths": [...]}`` and resets episode
``i`` with ``seed + i``. ``progress`` (called with 1 per finished episode) is optional.
"""

from wmenv.benchmarks.adapters import (
    AgentAdapter,
    RealEnvEvaluator,
    TrainableAgent,
    get_agent,
    list_agents,
    register_agent,
)
from wmenv.benchmarks.families import RegistryAgent, register_family_agents
from wmenv.benchmarks.metrics import aggregate, human_normalized, iqm, stratified_bootstrap_ci
from wmenv.benchmarks.runner import run_benchmark, run_multi_agent

__all__ = [
    "AgentAdapter",
    "RealEnvEvaluator",
    "RegistryAgent",
    "TrainableAgent",
    "aggregate",
    "get_agent",
    "human_normalized",
    "iqm",
    "list_agents",
    "register_agent",
    "register_family_agents",
    "run_benchmark",
    "run_multi_agent",
    "stratified_bootstrap_ci",
]
