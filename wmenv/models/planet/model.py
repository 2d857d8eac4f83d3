"""PlaNet world model: encoder, Gaussian RSSM, decoder, reward (and optional continue) head.

Batch format (TensorDict ``[B, T]``, rows of :mod:`wmenv.train.replay`):

``observation``  ``(B, T, D)`` float32 vectors or ``(B, T, 64, 64, 3)`` uint8 images
``action``       action taken at ``t - 1`` that led to observation ``t`` (zeros at the first step):
                 ``(B, T)`` int64 for ``Discrete``, ``(B, T, A)`` float32 for ``Box``
``reward``       ``(B, T)`` float32 received on arriving at ``t``
``terminated``   ``(B, T)`` bool
``is_first``     ``(B, T)`` bool, first step of an episode

Model state (TensorDict ``[B]``): ``"deter"`` ``(B, D)`` GRU state, ``"stoch"`` ``(B, S)`` Gaussian
latent; ``features = concat(deter, stoch)`` feeds the decoder and heads.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.models.planet.config import PlanetConfig
from wmenv.models.planet.loss import gaussian_nll, masked_mean, overshooting_kl
from wmenv.nn import MLP, RSSM, ConvDecoder, ConvEncoder, bernoulli_loss, kl_loss
from wmenv.nn.codecs import ActionCodec, ObservationCodec

__all__ = ["PlanetWorldModel"]


class PlanetWorldModel(nn.Module):
    """Encoder + Gaussian RSSM + decoder + reward head (+ continue head), trained on the variational bound.

    Args:
        config: :class:`PlanetConfig`.
        observation_space: ``Box`` float vectors (MLP encoder/decoder) or 64x64x3 uint8 images (conv).
        action_space: ``Discrete(n)`` or 1-D ``Box``.

    Raises:
        UnsupportedSpaceError: any other observation or action space.
    """

    def __init__(self, config: PlanetConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config = cfg = config
        self.observation_space, self.action_space = observation_space, action_space
        self.obs = ObservationCodec(observation_space, "PlaNet")
        self.actions = ActionCodec(action_space, "PlaNet")
        kw = {"norm": cfg.norm, "act": cfg.act}
        if self.obs.kind == "image":
            self.encoder: nn.Module = ConvEncoder(3, cfg.cnn_depth, 64, **kw)
        else:
            self.encoder = MLP(self.obs.dim, None, cfg.mlp_units, cfg.mlp_layers, **kw)
        r = cfg.rssm
        self.rssm = RSSM(
            self.actions.dim, self.encoder.out_dim, deter=r.deter, stoch=r.stoch, classes=0, hidden=r.hidden,
            min_std=r.min_std, learned_initial=False, **kw,
        )
        feat = self.rssm.feature_dim
        if self.obs.kind == "image":
            self.decoder: nn.Module = ConvDecoder(feat, 3, cfg.cnn_depth, 64, **kw)
        else:
            self.decoder = MLP(feat, self.obs.dim, cfg.mlp_units, cfg.mlp_layers, **kw)
        self.reward_head = MLP(feat, 1, cfg.mlp_units, cfg.mlp_layers, **kw)
        self.cont_head = MLP(feat, 1, cfg.mlp_units, cfg.mlp_layers, **kw) if cfg.predict_termination else None

    # ------------------------------------------------------------------ pieces
    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(..., E)`` of env observations ``(..., *obs_shape)``."""
        return self.encoder(self.obs.encode(obs))

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder mean in the env's observation space (uint8 images, float32 vectors)."""
        return self.obs.decode(self.decoder(features))

    def reward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted reward ``(...)``."""
        return self.reward_head(features).squeeze(-1)

    def cont_prob(self, features: torch.Tensor) -> torch.Tensor | None:
        """Probability ``(...)`` that the episode continues (``None`` without a continue head)."""
        if self.cont_head is None:
            return None
        return torch.sigmoid(self.cont_head(features).squeeze(-1))

    def observe(
        self, batch: TensorDictBase, state: TensorDictBase | None = None, *, sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[TensorDictBase, TensorDictBase]:
        """Posterior and prior ``[B, T]`` over a batch with ``observation``, ``action``, ``is_first``."""
        embed = self.embed(batch["observation"])
        action = self.actions.encode(batch["action"])
        return self.rssm.observe(embed, action, batch["is_first"], state, sample=sample, generator=generator)

    # ------------------------------------------------------------------ planning interface
    @torch.no_grad()
    def filter(
        self,
        state: TensorDictBase | None,
        action: torch.Tensor | None,
        observation: torch.Tensor,
        is_first: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """Posterior update on one real observation per member.

        Args:
            state: ``[B]`` previous posterior (``None`` at the start of every member's episode).
            action: ``(B, *action_shape)`` env action taken before ``observation`` (``None`` at start).
            observation: ``(B, *obs_shape)`` real observation.
            is_first: ``(B,)`` bool, members starting a new episode (their state is reset).
            generator: randomness for sampled latents.

        Returns:
            Posterior state ``[B]`` with ``deter`` and ``stoch``.
        """
        b = observation.shape[0]
        if state is None or action is None:
            vec = torch.zeros(b, self.actions.dim, device=observation.device)
            is_first = torch.ones(b, dtype=torch.bool, device=observation.device)
            state = None
        else:
            vec = self.actions.encode(action.reshape(b, *self.action_space.shape))
        post, _ = self.rssm.observe(
            self.embed(observation.unsqueeze(1)), vec.unsqueeze(1), is_first.reshape(b, 1), state,
            sample=self.config.plan_sample, generator=generator,
        )
        return post[:, -1].select("deter", "stoch")

    def plan_step(
        self, state: TensorDictBase, action: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[TensorDictBase, torch.Tensor, torch.Tensor | None]:
        """One batched prior step for the planner: ``(next state [M], reward (M,), continue (M,) | None)``.

        Args:
            state: ``[M]`` with ``deter`` and ``stoch``.
            action: ``(M, A)`` model action vectors.
            generator: randomness when ``config.plan_sample``.
        """
        nxt = self.rssm.img_step(
            state.select("deter", "stoch"), action, sample=self.config.plan_sample, generator=generator
        ).select("deter", "stoch")
        feat = self.rssm.features(nxt)
        return nxt, self.reward(feat), self.cont_prob(feat)

    # ------------------------------------------------------------------ training
    def loss(self, batch: TensorDictBase) -> TensorDictBase:
        """Negative variational bound: ``loss_obs``, ``loss_reward``, ``loss_kl`` (+ ``loss_cont``,
        ``loss_overshooting``) as scalars, plus detached metrics.

        Args:
            batch: TensorDict ``[B, T]`` (see the module docstring).
        """
        cfg = self.config
        post, prior = self.observe(batch)
        feat = self.rssm.features(post)
        obs_nll = gaussian_nll(self.decoder(feat), self.obs.encode(batch["observation"]), self.obs.event_dims())
        not_first = ~batch["is_first"].bool()
        reward_pred = self.reward(feat)
        reward_nll = gaussian_nll(reward_pred, batch["reward"].float())
        kl, kl_metrics = kl_loss(self.rssm, post, prior, dyn_scale=cfg.kl_scale, rep_scale=0.0,
                                 free_bits=cfg.free_nats, balanced=False)
        out = {
            "loss_obs": cfg.obs_scale * obs_nll.mean(),
            "loss_reward": cfg.reward_scale * masked_mean(reward_nll, not_first),
            "loss_kl": kl.mean(),
            "obs_nll": obs_nll.detach().mean(),
            "reward_mae": masked_mean((reward_pred.detach() - batch["reward"]).abs(), not_first),
            **kl_metrics,
        }
        if self.cont_head is not None:
            logits = self.cont_head(feat).squeeze(-1)
            cont = (~batch["terminated"].bool()).float()
            out["loss_cont"] = bernoulli_loss(logits, cont).mean()
            out["cont_acc"] = ((logits.detach() > 0).float() == cont).float().mean()
        if cfg.overshooting >= 2:
            action = self.actions.encode(batch["action"])
            over, over_kl = overshooting_kl(self.rssm, post, action, batch["is_first"].bool(),
                                            cfg.overshooting, cfg.free_nats)
            out["loss_overshooting"] = cfg.overshooting_scale / cfg.overshooting * over
            out["overshooting_kl"] = over_kl
        return TensorDict(out, batch_size=[])

    def optim_groups(self) -> dict[str, dict]:
        """One Adam group ``"model"`` with the config's lr, eps and grad clip."""
        c = self.config
        params = [p for p in self.parameters() if p.requires_grad]
        return {"model": {"params": params, "lr": c.lr, "eps": c.eps, "grad_clip": c.grad_clip}}
