"""The IRIS module: tokenizer + world model + actor-critic, trainable by :class:`wmenv.train.Trainer`.

``loss(batch)`` depends on the module's **mode** (a buffer, so it travels with checkpoints):

- ``"joint"`` (a freshly built model; what ``wmenv train iris`` without ``--stage`` trains): the three
  losses of one batch summed, each reaching only its own component (tokens for the world model are
  computed without gradient, imagination runs without gradient through the world model);
- ``"tokenizer"``, ``"world_model"``, ``"actor_critic"``: that component's loss alone (the staged loop
  of :mod:`wmenv.models.iris.train`, as the paper trains them).

``optim_groups()`` always returns the three groups (``tokenizer``, ``world_model``, ``actor_critic``),
so one :class:`~wmenv.train.Trainer` and its three Adam states serve the whole staged run (a group
whose parameters got no gradient is skipped by its optimizer). ``after_update`` records which
components have been trained; asking for a stage before its prerequisites raises
:class:`StageOrderError`.

Replay batches ``[B, T]``: ``T`` should be ``world_model.context_steps`` (the trainer default); the world
model loss uses the first ``context_steps`` rows, the actor-critic the last ``actor_critic_context`` rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError, UnsupportedSpaceError, WMEnvError
from wmenv.models.iris.agent import ActorCritic, IRISPolicy, actor_critic_loss
from wmenv.models.iris.config import IRISConfig
from wmenv.models.iris.imagination import IRISImagination
from wmenv.models.iris.tokenizer import Tokenizer, check_frame_space
from wmenv.models.iris.world_model import IRISWorldModel
from wmenv.nn.codecs import ActionCodec

__all__ = ["IRIS", "STAGES", "MODES", "StageOrderError"]

#: gradient stages, in the order they must first be trained
STAGES = ("tokenizer", "world_model", "actor_critic")
#: ``loss`` modes: all three together, or one stage
MODES = ("joint", *STAGES)


class StageOrderError(WMEnvError, RuntimeError):
    """A stage was asked for before the stages it builds on were trained."""


class IRIS(nn.Module):
    """Tokenizer + world model + actor-critic (see the module docstring).

    Args:
        config: :class:`IRISConfig`.
        observation_space: ``uint8`` frames ``Box(H, W, C)`` or ``Box(H, W)``.
        action_space: ``Discrete(n)`` or a 1-D ``Box``.

    Raises:
        UnsupportedSpaceError: vector, float or dict observations; other action spaces.
    """

    def __init__(self, config: IRISConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        if not isinstance(config, IRISConfig):
            raise ConfigError(f"IRIS needs an IRISConfig, got {type(config).__name__}")
        if config.world_model.context_steps < 2:
            raise ConfigError("IRIS: world_model.context_steps must be >= 2 (a frame, its action and the next frame)")
        check_frame_space(observation_space)
        self.config = config
        self.observation_space, self.action_space = observation_space, action_space
        self.actions = ActionCodec(action_space, "IRIS")  # raises UnsupportedSpaceError for other spaces
        self.tokenizer = Tokenizer(config.tokenizer, observation_space)
        self.world_model = IRISWorldModel(config, self.actions.dim)
        try:
            self.actor_critic = ActorCritic(config.actor_critic, observation_space, action_space)
        except ConfigError as err:
            raise UnsupportedSpaceError(str(err)) from err
        self.register_buffer("mode_index", torch.zeros((), dtype=torch.int64))
        self.register_buffer("trained", torch.zeros(len(STAGES), dtype=torch.bool))

    # ------------------------------------------------------------------ modes and stages
    @property
    def mode(self) -> str:
        """``"joint"`` or the stage ``loss`` trains."""
        return MODES[int(self.mode_index)]

    @property
    def trained_stages(self) -> tuple[str, ...]:
        """Components trained at least once, in stage order."""
        return tuple(s for s, done in zip(STAGES, self.trained.tolist()) if done)

    def require_trained(self, stage: str) -> None:
        """Raise :class:`StageOrderError` unless every stage before ``stage`` was trained."""
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; expected one of {list(STAGES)}")
        for before in STAGES[: STAGES.index(stage)]:
            if before not in self.trained_stages:
                raise StageOrderError(
                    f"stage {stage!r} needs a trained {before!r} first (trained so far: "
                    f"{list(self.trained_stages) or 'none'}); run --stage {before} first (or --stage all)"
                )

    def set_mode(self, mode: str) -> None:
        """Switch what ``loss`` trains (a stage is checked against its prerequisites)."""
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; expected one of {list(MODES)}")
        if mode != "joint":
            self.require_trained(mode)
        self.mode_index.fill_(MODES.index(mode))

    def mark_trained(self, stage: str) -> None:
        """Record ``stage`` as trained."""
        self.trained[STAGES.index(stage)] = True

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Tokenizer and world model in ``eval()`` mode inside the block (no dropout while imagining)."""
        modes = [(m, m.training) for m in (self.tokenizer, self.world_model)]
        for m, _ in modes:
            m.eval()
        try:
            yield
        finally:
            for m, was in modes:
                m.train(was)

    # ------------------------------------------------------------------ losses
    def tokenizer_loss(self, batch: TensorDictBase) -> TensorDict:
        """Reconstruction + commitment of every frame of the batch (updates the codebook)."""
        return self.tokenizer.loss(batch["observation"], update=True)

    def world_model_loss(self, batch: TensorDictBase) -> TensorDict:
        """Next-token, reward and termination cross-entropies on the first ``context_steps`` rows."""
        batch = batch[:, : self.config.world_model.context_steps]
        b, t = batch.batch_size
        if t < 2:
            raise ValueError(f"IRIS world model loss needs sequences of >= 2 rows, got {t}")
        with torch.no_grad(), self.evaluating():
            tokens = self.tokenizer.tokenize(batch["observation"])
        actions = torch.zeros(b, t, self.actions.dim, device=tokens.device)
        actions[:, :-1] = self.actions.encode(batch["action"][:, 1:]).float()
        return self.world_model.loss(tokens, actions, batch["reward"], batch["terminated"], batch["is_first"])

    def actor_critic_loss(self, batch: TensorDictBase) -> TensorDict:
        """Policy, entropy and value losses from imagined rollouts (see :mod:`wmenv.models.iris.agent`)."""
        return actor_critic_loss(self, batch)

    def loss(self, batch: TensorDictBase) -> TensorDict:
        """The losses of the current mode on replay sequences ``[B, T]`` (see the module docstring)."""
        mode = self.mode
        parts: dict[str, TensorDictBase] = {}
        if mode in ("joint", "tokenizer"):
            parts["tokenizer"] = self.tokenizer_loss(batch)
        if mode in ("joint", "world_model"):
            parts["world_model"] = self.world_model_loss(batch)
        if mode in ("joint", "actor_critic"):
            parts["actor_critic"] = self.actor_critic_loss(batch)
        out = TensorDict({}, batch_size=[])
        for name, td in parts.items():
            for key, value in td.items():
                out[key if key.startswith("loss_") else (name, key)] = value
        return out

    def optim_groups(self) -> dict[str, dict[str, Any]]:
        """One AdamW group per component (learning rate, clip and decay from the config)."""
        c = self.config
        return {
            "tokenizer": {"params": list(self.tokenizer.parameters()), "lr": c.tokenizer.lr, "eps": 1e-8,
                          "grad_clip": c.tokenizer.grad_clip, "weight_decay": 0.0},
            "world_model": {"params": list(self.world_model.parameters()), "lr": c.world_model.lr, "eps": 1e-8,
                            "grad_clip": c.world_model.grad_clip, "weight_decay": c.world_model.weight_decay},
            "actor_critic": {"params": list(self.actor_critic.parameters()), "lr": c.actor_critic.lr, "eps": 1e-8,
                             "grad_clip": c.actor_critic.grad_clip, "weight_decay": 0.0},
        }

    def after_update(self, step: int) -> None:
        """Record the component(s) just trained."""
        for stage in STAGES if self.mode == "joint" else (self.mode,):
            self.mark_trained(stage)

    # ------------------------------------------------------------------ using the model
    def imagination(self, **kwargs: Any) -> IRISImagination:
        """The model as a batched world model (:class:`~wmenv.models.iris.imagination.IRISImagination`)."""
        return IRISImagination(self, **kwargs)

    def make_policy(self, explore: bool = False, seed: int | None = None) -> IRISPolicy:
        """The actor-critic acting in the real env (see :class:`~wmenv.models.iris.agent.IRISPolicy`)."""
        return IRISPolicy(self, explore=explore, seed=seed)
