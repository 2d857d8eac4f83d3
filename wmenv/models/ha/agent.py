"""``WorldModelsAgent``: V + M + C with an explicit training stage, trainable by :class:`wmenv.train.Trainer`.

Stages run in order: ``vae`` (gradient), ``mdnrnn`` (gradient, VAE frozen), ``controller``
(CMA-ES, no gradients). The current stage and the set of trained stages are buffers, so they
travel with every checkpoint; asking for a stage before its prerequisites raises
:class:`StageOrderError` naming the stage to run first.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError, WMEnvError
from wmenv.models.ha.config import WorldModelsConfig
from wmenv.models.ha.model import MDNRNN, MLPVAE, LinearController, build_vae, observation_kind

__all__ = ["STAGES", "StageOrderError", "WorldModelsAgent", "WorldModelsPolicy"]

#: Training stages in the order they must run.
STAGES = ("vae", "mdnrnn", "controller")


class StageOrderError(WMEnvError, RuntimeError):
    """A stage was requested before the stages it builds on were trained."""


class WorldModelsAgent(nn.Module):
    """The V (VAE) + M (MDN-RNN) + C (linear controller) agent.

    ``loss(batch)`` trains the current gradient stage (``vae`` or ``mdnrnn``); ``optim_groups()``
    hands the :class:`~wmenv.train.Trainer` only that stage's parameters, and ``after_update``
    records the stage as trained.

    Args:
        config: :class:`WorldModelsConfig`.
        observation_space: 64x64x3 uint8 images or 1-D float vectors.
        action_space: ``Discrete(n)`` or a 1-D ``Box``.
    """

    def __init__(self, config: WorldModelsConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config = config
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_kind = observation_kind(observation_space)
        self.vae = build_vae(config.vae.kind, observation_space, config.z_dim, config.vae)
        self.mdnrnn = MDNRNN(config.z_dim, action_space, config.rnn)
        self.controller = LinearController(config.z_dim, config.rnn.hidden, action_space,
                                           use_hidden=config.controller.use_hidden)
        if config.controller.init_std > 0:
            g = torch.Generator().manual_seed(config.cma.seed)
            self.controller.set_flat(torch.randn(self.controller.num_params, generator=g) * config.controller.init_std)
        self.register_buffer("stage_index", torch.zeros((), dtype=torch.int64))
        self.register_buffer("trained", torch.zeros(len(STAGES), dtype=torch.bool))

    # ------------------------------------------------------------------ stages
    @property
    def stage(self) -> str:
        """The current stage (``"vae"``, ``"mdnrnn"`` or ``"controller"``)."""
        return STAGES[int(self.stage_index)]

    @property
    def trained_stages(self) -> tuple[str, ...]:
        """Stages that have been trained, in order."""
        return tuple(s for s, done in zip(STAGES, self.trained.tolist()) if done)

    def require_trained(self, stage: str) -> None:
        """Raise :class:`StageOrderError` unless every stage before ``stage`` was trained."""
        self._check_name(stage)
        for before in STAGES[: STAGES.index(stage)]:
            if before not in self.trained_stages:
                raise StageOrderError(
                    f"stage {stage!r} needs a trained {before!r} first (trained so far: "
                    f"{list(self.trained_stages) or 'none'}); run --stage {before} first (or --stage all)"
                )

    def set_stage(self, stage: str) -> None:
        """Switch to ``stage`` after checking its prerequisites (build a new Trainer afterwards)."""
        self.require_trained(stage)
        self.stage_index.fill_(STAGES.index(stage))

    def mark_trained(self, stage: str) -> None:
        """Record ``stage`` as trained."""
        self._check_name(stage)
        self.trained[STAGES.index(stage)] = True

    @staticmethod
    def _check_name(stage: str) -> None:
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; expected one of {list(STAGES)} (or 'all' in the driver)")

    # ------------------------------------------------------------------ trainer contract
    def encode_batch(self, batch: TensorDictBase, sample: bool) -> torch.Tensor:
        """Latents ``(B, T, Z)`` of the batch's observations with the (frozen) VAE."""
        obs = batch["observation"]
        lead = batch.batch_size
        with torch.no_grad():
            mean, log_var = self.vae.encode(obs.reshape(-1, *obs.shape[len(lead):]))
            z = self.vae.sample(mean, log_var) if sample else mean
        return z.reshape(*lead, -1)

    def loss(self, batch: TensorDictBase) -> TensorDict:
        """Loss of the current stage on a replay batch ``[B, T]`` (see :mod:`wmenv.models.ha.model`)."""
        if self.stage == "vae":
            return self.vae.loss(batch)
        if self.stage == "mdnrnn":
            with_z = batch.clone(recurse=False)
            with_z.set("z", self.encode_batch(batch, self.config.rnn.sample_z_targets))
            return self.mdnrnn.loss(with_z)
        raise ConfigError(
            "the controller stage is trained by CMA-ES, not by gradient updates; run "
            "`python -m wmenv.models.ha.train --stage controller --run-dir RUN`"
        )

    def optim_groups(self) -> dict[str, dict[str, Any]]:
        """One Adam group holding only the current stage's parameters."""
        if self.stage == "vae":
            return {"vae": {"params": list(self.vae.parameters()), "lr": self.config.vae.lr,
                            "grad_clip": self.config.vae.grad_clip}}
        if self.stage == "mdnrnn":
            return {"mdnrnn": {"params": list(self.mdnrnn.parameters()), "lr": self.config.rnn.lr,
                               "grad_clip": self.config.rnn.grad_clip}}
        raise ConfigError("the controller stage has no gradient parameters; it is trained by CMA-ES")

    def after_update(self, step: int) -> None:
        """Record the current gradient stage as trained (called by the Trainer after each update)."""
        self.mark_trained(self.stage)

    def fit_normalizer(self, observations: torch.Tensor) -> None:
        """Fit the vector VAE's input normaliser on ``(N, D)`` observations (no-op for images)."""
        if isinstance(self.vae, MLPVAE):
            self.vae.fit_normalizer(observations)

    # ------------------------------------------------------------------ acting
    def policy(self, epsilon: float = 0.0, seed: int = 0) -> WorldModelsPolicy:
        """A batched real-env policy (the Collector's ``policy(obs) -> actions`` with ``reset(mask)``)."""
        return WorldModelsPolicy(self, epsilon=epsilon, seed=seed)


class WorldModelsPolicy:
    """Acts in real envs: VAE mean ``z_t`` of each observation, ``a_t = C([z_t, h_t])``, then
    ``h_{t+1} = LSTM([z_t, a_t], h_t)``. Deterministic (the posterior mean is used).

    Args:
        agent: a trained :class:`WorldModelsAgent`.
        params: optional ``(P, num_params)`` controller parameters; the batch of observations is
            then ``P * E`` long, member ``i`` acting with ``params[i // E]``. ``None``: the agent's
            own controller for every member.
        epsilon: probability of replacing an action by a uniformly random one (exploration while
            collecting data); the LSTM sees the action actually taken.
        seed: seed of the exploration generator.
    """

    def __init__(
        self, agent: WorldModelsAgent, params: torch.Tensor | None = None, *, epsilon: float = 0.0, seed: int = 0
    ) -> None:
        if not 0 <= epsilon <= 1:
            raise ConfigError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.agent = agent
        self.params = params
        self.epsilon = float(epsilon)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.device = next(agent.parameters()).device
        self.h: torch.Tensor | None = None
        self.c: torch.Tensor | None = None

    def reset(self, mask: Any = None) -> None:
        """Start new episodes for members in ``mask`` ``(N,)`` (``None``: all, on the next call)."""
        if mask is None or self.h is None:
            self.h = self.c = None
            return
        m = torch.as_tensor(np.asarray(mask), dtype=torch.bool, device=self.device)
        self.h = self.h.masked_fill(m[:, None], 0.0)
        self.c = self.c.masked_fill(m[:, None], 0.0)

    @torch.no_grad()
    def __call__(self, observation: Any) -> np.ndarray:
        """Actions ``(N, ...)`` (NumPy) for observations ``(N, *obs_shape)``."""
        return self.act(torch.as_tensor(np.asarray(observation), device=self.device)).cpu().numpy()

    @torch.no_grad()
    def act(self, observation: torch.Tensor) -> torch.Tensor:
        """Torch version of ``__call__``: ``(N, *obs_shape)`` -> env actions ``(N, ...)``."""
        agent = self.agent
        z, _ = agent.vae.encode(observation)
        n = z.shape[0]
        if self.h is None or self.h.shape[0] != n:
            self.h, self.c = agent.mdnrnn.initial(n, z.device)
        latent = torch.cat([z, self.h], -1)
        if self.params is None:
            action = agent.controller(latent)
        else:
            p = self.params.shape[0]
            if n % p:
                raise ValueError(f"{n} observations cannot be split among {p} candidates")
            flat = agent.controller.population_act(self.params.to(z.device), latent.reshape(p, n // p, -1))
            action = flat.reshape(n, *flat.shape[2:])
        if self.epsilon > 0:
            action = self._explore(action)
        self.h, self.c = agent.mdnrnn.step(z, action, self.h, self.c)
        return action

    def _explore(self, action: torch.Tensor) -> torch.Tensor:
        codec = self.agent.controller.actions
        n = action.shape[0]
        flip = torch.rand(n, generator=self.generator) < self.epsilon
        if codec.discrete:
            rand = torch.randint(codec.dim, (n,), generator=self.generator)
        else:
            u = torch.rand(n, codec.dim, generator=self.generator).to(action.device)
            rand = torch.where(codec.bounded, codec.low + u * (codec.high - codec.low), action)
        flip = flip.to(action.device).reshape(n, *([1] * (action.dim() - 1)))
        return torch.where(flip, rand.to(action.device, action.dtype), action)
