"""Modular RSSM world model: encoder x backbone x decoder from config, reward and continue heads.

Batch format: the replay rows of :mod:`wmenv.train.replay` as a TensorDict ``[B, T]`` (``observation``
``(B, T, D)`` float or ``(B, T, 64, 64, 3)`` uint8, ``action`` taken before each observation,
``reward``, ``terminated``, ``is_first``).

State (TensorDict ``[B]``): ``"deter"`` ``(B, D)``, ``"stoch"`` ``(B, S, C)`` (or ``(B, S)``), and the
backbone ``"carry"`` (see :mod:`wmenv.nn.backbones`).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from tensordict import TensorDictBase
from torch import nn

from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.modular_rssm.config import ModularRSSMConfig
from wmenv.models.modular_rssm.loss import world_model_loss
from wmenv.nn import MLP, ConvDecoder, ConvEncoder
from wmenv.nn.attention import ViTEncoder
from wmenv.nn.backbone_rssm import STATE_KEYS, BackboneRSSM
from wmenv.nn.backbones import make_backbone
from wmenv.nn.codecs import ActionCodec, ObservationCodec, observation_kind
from wmenv.nn.planning import CEMConfig, CEMPlanner, PlanningPolicy

__all__ = ["ModularRSSMWorldModel", "resolve_components"]

_ENCODERS = {"vector": ("mlp",), "image": ("conv", "vit")}
_DECODERS = {"vector": ("mlp",), "image": ("conv",)}


def resolve_components(config: ModularRSSMConfig, observation_space: gym.Space) -> tuple[str, str]:
    """The concrete ``(encoder, decoder)`` for a space (``auto`` resolved), checked for validity.

    Raises:
        UnsupportedSpaceError: an encoder/decoder that does not fit the observations, naming the fix.
    """
    kind = observation_kind(observation_space, "the Modular RSSM")
    encoder = config.encoder if config.encoder != "auto" else _ENCODERS[kind][0]
    decoder = config.decoder if config.decoder != "auto" else _DECODERS[kind][0]
    what = "vector observations" if kind == "vector" else "64x64x3 image observations"
    if encoder not in _ENCODERS[kind]:
        why = "needs a pixel grid" if kind == "vector" else "would flatten 12288 raw pixels and lose the grid"
        raise UnsupportedSpaceError(
            f"encoder={encoder!r} does not fit {what} ({observation_space}): it {why}; "
            f"set encoder to one of {list(_ENCODERS[kind])} (or 'auto')"
        )
    if decoder not in _DECODERS[kind]:
        why = ("needs a pixel grid to deconvolve into" if kind == "vector"
               else "would emit 12288 independent pixels from one linear layer")
        raise UnsupportedSpaceError(
            f"decoder={decoder!r} does not fit {what} ({observation_space}): it {why}; "
            f"set decoder={_DECODERS[kind][0]!r} (or 'auto')"
        )
    return encoder, decoder


class ModularRSSMWorldModel(nn.Module):
    """Encoder + backbone RSSM + decoder + reward and continue heads.

    Args:
        config: :class:`ModularRSSMConfig`.
        observation_space: ``Box`` float vectors or 64x64x3 uint8 images.
        action_space: ``Discrete(n)`` or 1-D ``Box``.

    Raises:
        UnsupportedSpaceError: a space or encoder/decoder choice that does not fit (see the config docs).
    """

    def __init__(self, config: ModularRSSMConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config = cfg = config
        self.observation_space, self.action_space = observation_space, action_space
        self.encoder_kind, self.decoder_kind = resolve_components(config, observation_space)
        self.obs = ObservationCodec(observation_space, "the Modular RSSM")
        self.actions = ActionCodec(action_space, "the Modular RSSM")
        kw = {"norm": cfg.norm, "act": cfg.act}
        if self.encoder_kind == "conv":
            self.encoder: nn.Module = ConvEncoder(3, cfg.cnn_depth, 64, **kw)
        elif self.encoder_kind == "vit":
            v = cfg.vit
            self.encoder = ViTEncoder(3, 64, v.patch, v.width, v.layers, v.heads, act=cfg.act)
        else:
            self.encoder = MLP(self.obs.dim, None, cfg.mlp_units, cfg.mlp_layers, **kw)
        t = cfg.transformer
        backbone = make_backbone(cfg.backbone, cfg.hidden, cfg.deter, norm=cfg.norm, depth=t.layers, heads=t.heads,
                                 window=t.window, mlp_ratio=t.mlp_ratio, act=cfg.act)
        self.rssm = BackboneRSSM(
            backbone, self.actions.dim, self.encoder.out_dim, stoch=cfg.stoch, classes=cfg.classes,
            hidden=cfg.hidden, unimix=cfg.unimix, min_std=cfg.min_std, **kw,
        )
        feat = self.rssm.feature_dim
        if self.decoder_kind == "conv":
            self.decoder: nn.Module = ConvDecoder(feat, 3, cfg.cnn_depth, 64, **kw)
        else:
            self.decoder = MLP(feat, self.obs.dim, cfg.mlp_units, cfg.mlp_layers, **kw)
        self.reward_head = MLP(feat, 1, cfg.mlp_units, cfg.mlp_layers, **kw)
        self.cont_head = MLP(feat, 1, cfg.mlp_units, cfg.mlp_layers, **kw)

    # ------------------------------------------------------------------ pieces
    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(..., E)`` of env observations."""
        return self.encoder(self.obs.encode(obs))

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder mean in the env's observation space (uint8 images, float32 vectors)."""
        return self.obs.decode(self.decoder(features))

    def reward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted reward ``(...)``."""
        return self.reward_head(features).squeeze(-1)

    def cont_prob(self, features: torch.Tensor) -> torch.Tensor:
        """Probability ``(...)`` that the episode continues."""
        return torch.sigmoid(self.cont_head(features).squeeze(-1))

    def observe(
        self, batch: TensorDictBase, state: TensorDictBase | None = None, *, sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[TensorDictBase, TensorDictBase, TensorDictBase]:
        """``(posterior [B, T], prior [B, T], last state [B])`` over a batch of replay rows."""
        embed = self.embed(batch["observation"])
        return self.rssm.observe(embed, self.actions.encode(batch["action"]), batch["is_first"], state,
                                 sample=sample, generator=generator)

    # ------------------------------------------------------------------ training
    def loss(self, batch: TensorDictBase) -> TensorDictBase:
        """Losses and metrics of :func:`~wmenv.models.modular_rssm.loss.world_model_loss` for a batch ``[B, T]``."""
        return world_model_loss(self, batch)

    def optim_groups(self) -> dict[str, dict]:
        """One Adam group ``"model"`` with the config's lr, eps and grad clip."""
        c = self.config
        params = [p for p in self.parameters() if p.requires_grad]
        return {"model": {"params": params, "lr": c.lr, "eps": c.eps, "grad_clip": c.grad_clip}}

    # ------------------------------------------------------------------ planning (PlaNet-style MPC)
    @torch.no_grad()
    def filter(
        self, state: TensorDictBase | None, action: torch.Tensor | None, observation: torch.Tensor,
        is_first: torch.Tensor, *, generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """Posterior update on one real observation per member (``state=None``: episode start) -> state ``[B]``."""
        b = observation.shape[0]
        if state is None or action is None:
            vec = torch.zeros(b, self.actions.dim, device=observation.device)
            is_first, state = torch.ones(b, dtype=torch.bool, device=observation.device), None
        else:
            vec = self.actions.encode(action.reshape(b, *self.action_space.shape))
        _, _, last = self.rssm.observe(self.embed(observation.unsqueeze(1)), vec.unsqueeze(1),
                                       is_first.reshape(b, 1), state, sample=False, generator=generator)
        return last

    def plan_step(
        self, state: TensorDictBase, action: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[TensorDictBase, torch.Tensor, torch.Tensor]:
        """One batched prior step (latent modes): ``(next state [M], reward (M,), continue (M,))``."""
        nxt = self.rssm.img_step(state.select(*STATE_KEYS), action, sample=False).select(*STATE_KEYS)
        feat = self.rssm.features(nxt)
        return nxt, self.reward(feat), self.cont_prob(feat)

    def make_policy(
        self, explore: bool = True, seed: int | None = None, planner: CEMConfig | None = None
    ) -> PlanningPolicy:
        """NumPy-in / NumPy-out MPC policy (posterior filter + CEM, as in PlaNet) for real envs.

        Args:
            explore: exploration noise and ``config.collect_planner`` (collection), else greedy with
                ``config.planner``.
            seed: seed of the policy's generator.
            planner: CEM sizes overriding the config's.
        """
        sizes = planner or (self.config.collect_planner if explore else self.config.planner)
        cem = CEMPlanner(sizes, self.actions.dim, discrete=self.actions.discrete)
        return PlanningPolicy(self, cem, explore=explore, explore_noise=self.config.explore_noise, seed=seed)
