"""Configuration of the Ha & Schmidhuber "World Models" family (V: VAE, M: MDN-RNN, C: controller).

Three stages train the three parts in order: the VAE on random-rollout frames, the MDN-RNN on
the VAE's latents, then the linear controller by CMA-ES, either in the real env or entirely
inside the MDN-RNN's dream at temperature ``tau``. Presets: ``tiny()`` (tests), ``small()``
(CPU runs such as CartPole), ``paper()`` (the paper's CarRacing sizes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from wmenv.core.errors import ConfigError

__all__ = [
    "VAEConfig",
    "MDNRNNConfig",
    "ControllerConfig",
    "CMAConfig",
    "ScheduleConfig",
    "WorldModelsConfig",
    "MIN_POPSIZE",
]

#: ``cma`` needs at least two candidates per generation (it computes >= 2 recombination weights).
MIN_POPSIZE = 2


def _check(cond: bool, what: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{what}: expected {expected}, got {value!r}")


def _positive_ints(obj: Any, prefix: str, names: tuple[str, ...]) -> None:
    for name in names:
        v = getattr(obj, name)
        what = f"{prefix}.{name}" if prefix else name
        _check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, what, v, "an int >= 1")


@dataclass(frozen=True)
class VAEConfig:
    """V: the variational auto-encoder that compresses one observation into ``z``."""

    kind: Literal["auto", "conv", "mlp"] = "auto"
    """Encoder type; ``auto`` picks conv for 64x64x3 uint8 images and MLP for vector ``Box`` observations."""
    conv_depth: int = 32
    """Channels of the first conv layer (doubling per stage: 32, 64, 128, 256 in the paper)."""
    mlp_units: int = 64
    """Hidden width of the MLP encoder/decoder (vector observations)."""
    mlp_layers: int = 2
    """Hidden layers of the MLP encoder/decoder."""
    kl_tolerance: float = 0.5
    """Free nats per latent dimension: the KL term is ``max(KL, kl_tolerance * z_dim)`` (paper: 0.5)."""
    kl_weight: float = 1.0
    """Weight of the KL term."""
    vector_recon_std: float = 0.01
    """Std of the Gaussian decoder on normalised vector observations (smaller: sharper reconstructions)."""
    lr: float = 1e-3
    """Adam learning rate of the VAE stage."""
    grad_clip: float | None = 100.0
    """Global grad-norm clip of the VAE stage (``None``: no clipping)."""

    def __post_init__(self) -> None:
        _check(self.kind in ("auto", "conv", "mlp"), "vae.kind", self.kind, "'auto', 'conv' or 'mlp'")
        _positive_ints(self, "vae", ("conv_depth", "mlp_units", "mlp_layers"))
        _check(self.kl_tolerance >= 0, "vae.kl_tolerance", self.kl_tolerance, "a float >= 0")
        _check(self.kl_weight >= 0, "vae.kl_weight", self.kl_weight, "a float >= 0")
        _check(self.vector_recon_std > 0, "vae.vector_recon_std", self.vector_recon_std, "a float > 0")
        _check(self.lr > 0, "vae.lr", self.lr, "a float > 0")
        _check(self.grad_clip is None or self.grad_clip > 0, "vae.grad_clip", self.grad_clip, "> 0 or None")


@dataclass(frozen=True)
class MDNRNNConfig:
    """M: the LSTM over ``[z_t, a_t]`` with a Gaussian-mixture head over ``z_{t+1}``."""

    hidden: int = 256
    """LSTM hidden size (paper: 256 for CarRacing)."""
    n_mixtures: int = 5
    """Gaussians per latent dimension (paper: 5)."""
    head_units: int = 64
    """Hidden width of the reward and termination heads (inputs ``[z_{t+1}, h_{t+1}]``)."""
    reward_weight: float = 1.0
    """Weight of the reward MSE."""
    done_weight: float = 1.0
    """Weight of the termination cross-entropy."""
    done_pos_weight: float = 1.0
    """Extra weight of terminal steps in the termination loss (they are rare)."""
    predict_delta: bool = False
    """Mixture over ``z_{t+1} - z_t`` added to ``z_t`` (a residual; the paper predicts ``z_{t+1}`` itself)."""
    sample_z_targets: bool = True
    """Train on ``z`` sampled from the VAE posterior (the paper's augmentation) instead of its mean."""
    lr: float = 1e-3
    """Adam learning rate of the MDN-RNN stage."""
    grad_clip: float | None = 1.0
    """Global grad-norm clip of the MDN-RNN stage (paper: 1.0)."""

    def __post_init__(self) -> None:
        _positive_ints(self, "rnn", ("hidden", "n_mixtures", "head_units"))
        for name in ("reward_weight", "done_weight"):
            _check(getattr(self, name) >= 0, f"rnn.{name}", getattr(self, name), "a float >= 0")
        _check(self.done_pos_weight > 0, "rnn.done_pos_weight", self.done_pos_weight, "a float > 0")
        _check(self.lr > 0, "rnn.lr", self.lr, "a float > 0")
        _check(self.grad_clip is None or self.grad_clip > 0, "rnn.grad_clip", self.grad_clip, "> 0 or None")


@dataclass(frozen=True)
class ControllerConfig:
    """C: the linear controller ``a = W [z, h] + b``."""

    use_hidden: bool = True
    """Feed ``[z, h]`` (paper) or only ``z`` (the paper's "V model only" ablation)."""
    init_std: float = 0.0
    """Std of the initial weights (0: CMA-ES starts from all zeros)."""

    def __post_init__(self) -> None:
        _check(self.init_std >= 0, "controller.init_std", self.init_std, "a float >= 0")


@dataclass(frozen=True)
class CMAConfig:
    """CMA-ES search over the controller's flat parameters."""

    popsize: int = 64
    """Candidates per generation (paper: 64). ``cma`` needs at least 2."""
    sigma0: float = 0.1
    """Initial step size of CMA-ES."""
    generations: int = 100
    """Generations to run."""
    episodes_per_candidate: int = 16
    """Rollouts averaged into each candidate's fitness (paper: 16)."""
    where: Literal["dream", "real"] = "dream"
    """Evaluate candidates inside the MDN-RNN's dream or in a vector env of the real env."""
    dream_horizon: int = 1000
    """Maximum steps of a dream rollout (episodes are also cut by the termination head)."""
    dream_start: Literal["first", "any"] = "first"
    """Start dreams from real first observations of episodes, or from any stored observation."""
    real_max_steps: int | None = None
    """Cap on the steps of a real-env rollout (``None``: the env's own time limit)."""
    eval_every: int = 10
    """Every this many generations, evaluate the CMA-ES mean in the real env (0: never)."""
    eval_episodes: int = 8
    """Real episodes of that periodic evaluation."""
    seed: int = 0
    """Seed of CMA-ES's sampling and of the dream's generator."""
    init: Literal["current", "zeros"] = "current"
    """Start the search from the current controller (continues earlier rounds) or from all zeros."""

    def __post_init__(self) -> None:
        p = self.popsize
        if isinstance(p, bool) or not isinstance(p, int) or p < MIN_POPSIZE:
            raise ConfigError(
                f"cma.popsize: the cma package needs a population of at least {MIN_POPSIZE} candidates, "
                f"got {p!r}; set cma.popsize={MIN_POPSIZE} or more (paper: 64)"
            )
        _check(self.sigma0 > 0, "cma.sigma0", self.sigma0, "a float > 0")
        _positive_ints(self, "cma", ("generations", "episodes_per_candidate", "dream_horizon", "eval_episodes"))
        _check(self.where in ("dream", "real"), "cma.where", self.where, "'dream' or 'real'")
        _check(self.init in ("current", "zeros"), "cma.init", self.init, "'current' or 'zeros'")
        _check(self.dream_start in ("first", "any"), "cma.dream_start", self.dream_start, "'first' or 'any'")
        _check(self.real_max_steps is None or self.real_max_steps >= 1, "cma.real_max_steps",
               self.real_max_steps, "an int >= 1 or None")
        _check(isinstance(self.eval_every, int) and self.eval_every >= 0, "cma.eval_every", self.eval_every,
               "an int >= 0")


@dataclass(frozen=True)
class ScheduleConfig:
    """How much data and how many updates the stage driver (``python -m wmenv.models.ha.train``) uses."""

    random_steps: int = 10_000
    """Real env steps of random rollouts collected before the VAE stage."""
    num_envs: int = 4
    """Parallel real envs while collecting."""
    vae_steps: int = 2000
    """Gradient updates of the VAE stage."""
    vae_batch_size: int = 32
    """Sequences per VAE batch (each of ``vae_seq_len`` frames)."""
    vae_seq_len: int = 4
    """Frames per VAE sequence (the VAE treats them independently)."""
    rnn_steps: int = 4000
    """Gradient updates of the MDN-RNN stage."""
    rnn_batch_size: int = 32
    """Sequences per MDN-RNN batch."""
    rnn_seq_len: int = 16
    """Rows per MDN-RNN sequence (only episodes at least this long are sampled)."""
    iterations: int = 0
    """Extra rounds of the paper's iterative procedure: collect with C, retrain V and M, re-search C."""
    iteration_steps: int = 5000
    """Real env steps collected with the current controller in each extra round."""
    iteration_vae_steps: int = 1000
    """VAE updates in each extra round (continuing from the previous weights)."""
    iteration_rnn_steps: int = 1000
    """MDN-RNN updates in each extra round."""
    explore_epsilon: float = 0.1
    """Probability of a uniformly random action while collecting with the controller."""

    def __post_init__(self) -> None:
        _positive_ints(self, "schedule", ("random_steps", "num_envs", "vae_steps", "vae_batch_size", "vae_seq_len",
                                          "rnn_steps", "rnn_batch_size", "iteration_steps", "iteration_vae_steps",
                                          "iteration_rnn_steps"))
        _check(isinstance(self.iterations, int) and self.iterations >= 0, "schedule.iterations", self.iterations,
               "an int >= 0")
        _check(0 <= self.explore_epsilon <= 1, "schedule.explore_epsilon", self.explore_epsilon, "a float in [0, 1]")
        _check(isinstance(self.rnn_seq_len, int) and self.rnn_seq_len >= 2, "schedule.rnn_seq_len",
               self.rnn_seq_len, "an int >= 2 (one transition needs two rows)")


@dataclass(frozen=True)
class WorldModelsConfig:
    """The whole V + M + C agent."""

    z_dim: int = 32
    """Size of the VAE latent ``z`` (paper: 32 for CarRacing)."""
    temperature: float = 1.0
    """Temperature ``tau`` of dream sampling (mixture weights ``/ tau``, stds ``* sqrt(tau)``)."""
    done_threshold: float = 0.5
    """A dream step terminates when the termination head's probability exceeds this."""
    vae: VAEConfig = field(default_factory=VAEConfig)
    """V."""
    rnn: MDNRNNConfig = field(default_factory=MDNRNNConfig)
    """M."""
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    """C."""
    cma: CMAConfig = field(default_factory=CMAConfig)
    """CMA-ES."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Data and update budget of each stage."""

    def __post_init__(self) -> None:
        _positive_ints(self, "", ("z_dim",))
        _check(self.temperature > 0, "temperature", self.temperature, "a float > 0 (paper: 1.0 to 1.15)")
        _check(0 < self.done_threshold < 1, "done_threshold", self.done_threshold, "a float in (0, 1)")
        for name, cls in (("vae", VAEConfig), ("rnn", MDNRNNConfig), ("controller", ControllerConfig),
                          ("cma", CMAConfig), ("schedule", ScheduleConfig)):
            _check(isinstance(getattr(self, name), cls), name, type(getattr(self, name)).__name__, cls.__name__)

    def replace(self, **changes: Any) -> WorldModelsConfig:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def tiny(cls) -> WorldModelsConfig:
        """Minute sizes for tests and smoke runs."""
        return cls(
            z_dim=4,
            vae=VAEConfig(conv_depth=4, mlp_units=16, mlp_layers=1),
            rnn=MDNRNNConfig(hidden=16, n_mixtures=2, head_units=16),
            cma=CMAConfig(popsize=4, generations=2, episodes_per_candidate=2, dream_horizon=20, eval_every=0,
                          eval_episodes=2),
            schedule=ScheduleConfig(random_steps=300, num_envs=2, vae_steps=20, vae_batch_size=8, vae_seq_len=2,
                                    rnn_steps=20, rnn_batch_size=4, rnn_seq_len=4),
        )

    @classmethod
    def small(cls) -> WorldModelsConfig:
        """CPU-sized agent (CartPole in minutes; a small CarRacing budget).

        Differs from the paper in one modelling choice: the MDN-RNN predicts ``z_{t+1} - z_t``
        (``rnn.predict_delta``), which kept dream-trained CartPole controllers from exploiting the
        dream (see the family's notes); ``paper()`` predicts ``z_{t+1}`` as the paper does.
        """
        return cls(
            z_dim=8,
            vae=VAEConfig(conv_depth=16, mlp_units=64, mlp_layers=2),
            rnn=MDNRNNConfig(hidden=64, n_mixtures=5, head_units=64, predict_delta=True),
            cma=CMAConfig(popsize=32, generations=30, episodes_per_candidate=8, dream_horizon=500, eval_every=10),
            schedule=ScheduleConfig(random_steps=10_000, num_envs=4, vae_steps=3000, rnn_steps=3000,
                                    rnn_seq_len=16),
        )

    @classmethod
    def paper(cls) -> WorldModelsConfig:
        """The paper's CarRacing sizes: z 32, LSTM 256, 5 mixtures, CMA-ES population 64 x 16 rollouts."""
        return cls(
            z_dim=32,
            vae=VAEConfig(conv_depth=32),
            rnn=MDNRNNConfig(hidden=256, n_mixtures=5),
            cma=CMAConfig(popsize=64, sigma0=0.1, generations=300, episodes_per_candidate=16, dream_horizon=1000),
            schedule=ScheduleConfig(random_steps=1_000_000, num_envs=8, vae_steps=50_000, vae_batch_size=100,
                                    vae_seq_len=1, rnn_steps=20_000, rnn_batch_size=100, rnn_seq_len=100),
        )
