"""Dreamer world model: encoder, RSSM, decoder, reward and continue heads.

Batch format (TensorDict ``[B, T]``, from the replay buffer):

``observation``  ``(B, T, D)`` float32 vectors or ``(B, T, 64, 64, 3)`` uint8 images
``action``       action taken at ``t - 1`` that led to observation ``t`` (zeros at the first step):
                 ``(B, T)`` int64 for ``Discrete``, ``(B, T, A)`` float32 for ``Box``
``reward``       ``(B, T)`` float32 received on arriving at ``t``
``terminated``   ``(B, T)`` bool, observation ``t`` is terminal
``is_first``     ``(B, T)`` bool, first step of an episode
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.models.dreamer.config import DreamerConfig
from wmenv.models.dreamer.loss import continue_nll, scalar_head_mean, scalar_head_nll
from wmenv.nn import MLP, RSSM, ConvDecoder, ConvEncoder, RunningNorm, kl_loss, symexp, symlog
from wmenv.nn.codecs import ActionCodec
from wmenv.nn.codecs import observation_kind as _observation_kind

__all__ = ["DreamerWorldModel", "ActionCodec", "open_loop_error", "IMAGE_SHAPE"]

IMAGE_SHAPE = (64, 64, 3)


def observation_kind(space: gym.Space) -> str:
    """``"image"`` (64x64x3 uint8 ``Box``) or ``"vector"`` (1-D float ``Box``); see :func:`wmenv.nn.codecs.observation_kind`."""
    return _observation_kind(space, who="Dreamer")


class DreamerWorldModel(nn.Module):
    """Encoder + RSSM + decoder + reward and continue heads, trainable on its own.

    Args:
        config: :class:`DreamerConfig` (``None`` fields are filled from its ``version``).
        observation_space: ``Box`` vectors or 64x64x3 uint8 images.
        action_space: ``Discrete`` or 1-D ``Box``.
    """

    def __init__(self, config: DreamerConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config = cfg = config.resolved()
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_kind = observation_kind(observation_space)
        self.actions = ActionCodec(action_space, "Dreamer")
        kw = {"norm": cfg.norm, "act": cfg.act}
        if self.obs_kind == "image":
            self.encoder: nn.Module = ConvEncoder(3, cfg.cnn_depth, 64, **kw)
            embed_dim = self.encoder.out_dim
        else:
            obs_dim = int(observation_space.shape[0])
            self.encoder = MLP(obs_dim, None, cfg.mlp_units, cfg.mlp_layers, **kw)
            embed_dim = cfg.mlp_units
        self.obs_norm = RunningNorm(obs_dim) if self.obs_kind == "vector" and cfg.obs_norm else None
        r = cfg.rssm
        self.rssm = RSSM(
            self.actions.dim,
            embed_dim,
            deter=r.deter,
            stoch=r.stoch,
            classes=r.classes if r.discrete else 0,
            hidden=r.hidden,
            unimix=r.unimix,
            min_std=r.min_std,
            learned_initial=cfg.version == "v3",
            **kw,
        )
        feat = self.rssm.feature_dim
        if self.obs_kind == "image":
            self.decoder: nn.Module = ConvDecoder(feat, 3, cfg.cnn_depth, 64, **kw)
        else:
            self.decoder = MLP(feat, obs_dim, cfg.mlp_units, cfg.mlp_layers, **kw)
        twohot = cfg.reward_head == "twohot"
        self.reward_head = MLP(
            feat, cfg.bins if twohot else 1, cfg.mlp_units, cfg.mlp_layers, out_init_zero=twohot, **kw
        )
        self.cont_head = MLP(feat, 1, cfg.mlp_units, cfg.mlp_layers, **kw)

    # ------------------------------------------------------------------ pieces
    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """Env observations -> network inputs: images ``(..., 64, 64, 3)`` uint8 -> ``(..., 3, 64, 64)``
        in [-0.5, 0.5]; vectors symlogged when ``symlog_inputs``, then normalised when ``obs_norm``."""
        if self.obs_kind == "image":
            return obs.movedim(-1, -3).float() / 255.0 - 0.5
        obs = self._symlog_vector(obs)
        return self.obs_norm(obs) if self.obs_norm is not None else obs

    def _symlog_vector(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()
        return symlog(obs) if self.config.symlog_inputs else obs

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(..., E)`` of env observations."""
        return self.encoder(self.preprocess(obs))

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder mean in the env's observation space: images uint8 ``(..., 64, 64, 3)``, vectors float32."""
        out = self.decoder(features)
        if self.obs_kind == "image":
            img = ((out + 0.5) * 255.0).clamp(0, 255).round()
            return img.movedim(-3, -1).to(torch.uint8)
        if self.obs_norm is not None:
            out = self.obs_norm.inverse(out)
        return symexp(out) if self.config.symlog_inputs else out

    def reward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted reward ``(...)``."""
        return scalar_head_mean(self.reward_head(features), self.config.reward_head)

    def cont_prob(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted probability ``(...)`` that the episode continues."""
        return torch.sigmoid(self.cont_head(features).squeeze(-1))

    def observe(
        self,
        batch: TensorDictBase,
        state: TensorDictBase | None = None,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[TensorDictBase, TensorDictBase]:
        """Posterior and prior ``[B, T]`` over a batch with ``observation``, ``action``, ``is_first``."""
        embed = self.embed(batch["observation"])
        action = self.actions.encode(batch["action"])
        return self.rssm.observe(embed, action, batch["is_first"], state, sample=sample, generator=generator)

    # ------------------------------------------------------------------ training
    def compute_loss(self, batch: TensorDictBase) -> tuple[TensorDictBase, TensorDictBase]:
        """World-model losses and the posterior ``[B, T]`` (reused by the agent for imagination)."""
        cfg = self.config
        if self.obs_norm is not None and self.training:
            self.obs_norm.update(self._symlog_vector(batch["observation"]))
        post, prior = self.observe(batch)
        feat = self.rssm.features(post)
        obs = batch["observation"]
        pred = self.decoder(feat)
        if self.obs_kind == "image":
            target = self.preprocess(obs)
            obs_loss = (pred - target).pow(2).sum((-1, -2, -3))
        else:
            target = self.preprocess(obs)
            obs_loss = (pred - target).pow(2).sum(-1)
        not_first = (~batch["is_first"].bool()).float()
        rew_out = self.reward_head(feat)
        rew_loss = scalar_head_nll(rew_out, batch["reward"].float(), cfg.reward_head)
        rew_loss = (rew_loss * not_first).sum() / not_first.sum().clamp(min=1)
        cont_logit = self.cont_head(feat).squeeze(-1)
        term = batch["terminated"].bool()
        cont_loss = continue_nll(cont_logit, term, cfg.terminal_weight).mean()
        kl, kl_metrics = kl_loss(
            self.rssm,
            post,
            prior,
            dyn_scale=cfg.kl.dyn_scale,
            rep_scale=cfg.kl.rep_scale,
            free_bits=cfg.kl.free_bits,
            balanced=cfg.kl.balanced,
        )
        with torch.no_grad():
            rew_err = (scalar_head_mean(rew_out, cfg.reward_head) - batch["reward"]).abs()
            cont_acc = ((cont_logit < 0) == term).float().mean()
            term_acc = ((cont_logit < 0) & term).float().sum() / term.float().sum().clamp(min=1)
        out = TensorDict(
            {
                "loss_obs": cfg.obs_scale * obs_loss.mean(),
                "loss_reward": cfg.reward_scale * rew_loss,
                "loss_cont": cfg.cont_scale * cont_loss,
                "loss_kl": kl.mean(),
                "obs_mse": obs_loss.detach().mean() / float(np.prod(pred.shape[2:])),
                "reward_mae": (rew_err * not_first).sum() / not_first.sum().clamp(min=1),
                "cont_acc": cont_acc,
                "terminal_recall": term_acc,
                **kl_metrics,
            },
            batch_size=[],
        )
        return out, post

    def loss(self, batch: TensorDictBase) -> TensorDictBase:
        """Losses ``loss_obs``, ``loss_reward``, ``loss_cont``, ``loss_kl`` (scalars) plus detached metrics.

        Args:
            batch: TensorDict ``[B, T]`` (see module docstring).
        """
        return self.compute_loss(batch)[0]

    def optim_groups(self) -> dict[str, dict]:
        """One optimizer group ``"model"`` with params, lr, eps, grad_clip, weight_decay."""
        o = self.config.optim
        return {
            "model": {
                "params": [p for p in self.parameters() if p.requires_grad],
                "lr": o.model_lr,
                "eps": o.eps,
                "grad_clip": o.model_grad_clip,
                "weight_decay": o.weight_decay,
            },
        }


@torch.no_grad()
def open_loop_error(
    model: nn.Module, batch: TensorDictBase, horizon: int, context: int = 5, *, sample: bool = False
) -> torch.Tensor:
    """Per-horizon MSE of open-loop predictions (real actions, prior only) against real observations.

    The posterior is burned in on the first ``context`` steps; the prior then rolls out ``horizon``
    steps with the recorded actions. Steps after an episode boundary are left out.

    Args:
        model: :class:`DreamerWorldModel` or :class:`DreamerAgent`.
        batch: TensorDict ``[B, T]`` with ``T >= context + horizon``.
        horizon: steps to predict.
        context: burn-in steps.
        sample: sample latents (else prior modes).

    Returns:
        ``(horizon,)`` mean squared error per step (raw units for vectors, [0, 1] pixels for images);
        NaN where no sequence is valid.
    """
    wm: DreamerWorldModel = getattr(model, "world_model", model)
    if batch.shape[1] < context + horizon:
        raise ValueError(
            f"batch has T={batch.shape[1]} steps; open_loop_error needs >= context + horizon "
            f"= {context + horizon}"
        )
    post, _ = wm.observe(batch[:, :context], sample=sample)
    state = post[:, -1].select("deter", "stoch")
    valid = torch.ones(batch.shape[0], dtype=torch.bool, device=post.device)
    errors = []
    for h in range(horizon):
        step = batch[:, context + h]
        valid = valid & ~step["is_first"].bool()
        state = wm.rssm.img_step(state, wm.actions.encode(step["action"]), sample=sample)
        pred = wm.decode(wm.rssm.features(state)).float()
        real = step["observation"].float()
        if wm.obs_kind == "image":
            pred, real = pred / 255.0, real / 255.0
        err = (pred - real).pow(2).reshape(pred.shape[0], -1).mean(-1)
        errors.append(err[valid].mean() if bool(valid.any()) else torch.tensor(float("nan")))
    return torch.stack(errors)


def __getattr__(name: str) -> object:
    # DreamerAgent lives in agent.py (it builds on this module); exposed here lazily, no import cycle.
    if name == "DreamerAgent":
        from wmenv.models.dreamer.agent import DreamerAgent

        return DreamerAgent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
