"""Configuration of the Modular RSSM: swappable encoder, backbone and decoder.

Components and where they apply (checked when the model is built for a space):

==========  =====================  ======================================================
encoder     ``mlp``                vector observations ``Box((D,), float)``
            ``conv``, ``vit``      64x64x3 uint8 images
            ``auto``               ``mlp`` for vectors, ``conv`` for images
backbone    ``gru``, ``lstm``,     any observations; ``transformer.heads`` must divide ``deter``
            ``transformer``
decoder     ``mlp``                vector observations
            ``conv``               64x64x3 uint8 images
            ``auto``               ``mlp`` for vectors, ``conv`` for images
==========  =====================  ======================================================

So every backbone combines with ``mlp``/``mlp`` on vectors and with ``conv``/``conv`` or
``vit``/``conv`` on images. A conv/ViT encoder needs a pixel grid; an MLP decoder would emit
12288 independent pixels from one linear layer, and an MLP encoder on raw pixels discards the grid,
so those raise :class:`UnsupportedSpaceError` naming the component to use instead. Space-independent
mistakes (heads not dividing widths, a ViT patch not dividing 64) raise :class:`ConfigError` at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from wmenv.config import apply_overrides
from wmenv.core.errors import ConfigError
from wmenv.nn.planning import CEMConfig

__all__ = ["ModularRSSMConfig", "TransformerConfig", "ViTConfig", "KLConfig"]

Encoder = Literal["auto", "mlp", "conv", "vit"]
Backbone = Literal["gru", "lstm", "transformer"]
Decoder = Literal["auto", "mlp", "conv"]


def _check(cond: bool, what: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{what}: expected {expected}, got {value!r}")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 16) + 1) if n % d == 0]


@dataclass(frozen=True)
class TransformerConfig:
    """Windowed causal transformer backbone (used when ``backbone="transformer"``)."""

    layers: int = 2
    """Transformer blocks."""
    heads: int = 4
    """Attention heads; must divide ``deter`` (the token width)."""
    window: int = 16
    """Past steps attended to (sliding window carried in the state)."""
    mlp_ratio: float = 2.0
    """Hidden width of each block's MLP relative to ``deter``."""

    def __post_init__(self) -> None:
        for name in ("layers", "heads", "window"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 1, f"transformer.{name}", v, "an int >= 1")
        _check(self.mlp_ratio > 0, "transformer.mlp_ratio", self.mlp_ratio, "a float > 0")


@dataclass(frozen=True)
class ViTConfig:
    """Vision-transformer encoder (used when ``encoder="vit"``)."""

    patch: int = 8
    """Patch side; must divide 64."""
    width: int = 64
    """Token width."""
    layers: int = 2
    """Transformer blocks."""
    heads: int = 4
    """Attention heads; must divide ``width``."""

    def __post_init__(self) -> None:
        for name in ("patch", "width", "layers", "heads"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 1, f"vit.{name}", v, "an int >= 1")
        _check(64 % self.patch == 0, "vit.patch", self.patch, "a divisor of the image size 64 (e.g. 8 or 16)")
        _check(self.width % self.heads == 0, "vit.heads", self.heads,
               f"a divisor of vit.width={self.width} (one of {_divisors(self.width)}), or change vit.width")


@dataclass(frozen=True)
class KLConfig:
    """Balanced KL regulariser with free bits (DreamerV2/V3 form)."""

    dyn_scale: float = 0.5
    """Weight of KL(sg(post) || prior), which trains the prior."""
    rep_scale: float = 0.1
    """Weight of KL(post || sg(prior)), which trains the posterior."""
    free_bits: float = 1.0
    """Nats per step below which the KL is not penalised."""

    def __post_init__(self) -> None:
        for name in ("dyn_scale", "rep_scale", "free_bits"):
            _check(getattr(self, name) >= 0, f"kl.{name}", getattr(self, name), "a float >= 0")


@dataclass(frozen=True)
class ModularRSSMConfig:
    """RSSM world model assembled from an encoder, a deterministic backbone and a decoder."""

    encoder: Encoder = "auto"
    """Observation encoder: ``mlp`` (vectors), ``conv`` or ``vit`` (images), ``auto`` picks by space."""
    backbone: Backbone = "gru"
    """Deterministic path: ``gru``, ``lstm`` or ``transformer`` (sliding window)."""
    decoder: Decoder = "auto"
    """Observation decoder: ``mlp`` (vectors), ``conv`` (images), ``auto`` picks by space."""
    deter: int = 256
    """Backbone width (GRU/LSTM state size, transformer token width)."""
    stoch: int = 16
    """Latent variables."""
    classes: int = 16
    """Classes per categorical latent; 0 for a diagonal Gaussian latent."""
    hidden: int = 256
    """Width of the RSSM's input/prior/posterior layers."""
    unimix: float = 0.01
    """Uniform mixture of categorical latents."""
    min_std: float = 0.1
    """Minimum std of Gaussian latents."""
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    """Transformer backbone settings."""
    vit: ViTConfig = field(default_factory=ViTConfig)
    """ViT encoder settings."""
    kl: KLConfig = field(default_factory=KLConfig)
    """KL regulariser."""
    mlp_units: int = 256
    """Width of the MLP encoder/decoder and heads."""
    mlp_layers: int = 2
    """Hidden layers of those MLPs."""
    cnn_depth: int = 32
    """Channel multiplier of the conv encoder/decoder."""
    norm: bool = True
    """LayerNorm in MLPs, conv blocks and recurrent cells."""
    act: Literal["silu", "elu", "relu", "tanh"] = "silu"
    """Activation of every block."""
    obs_scale: float = 1.0
    """Weight of the reconstruction term."""
    reward_scale: float = 1.0
    """Weight of the reward term."""
    cont_scale: float = 1.0
    """Weight of the continue term."""
    lr: float = 3e-4
    """Adam learning rate."""
    eps: float = 1e-6
    """Adam epsilon."""
    grad_clip: float = 100.0
    """Max global gradient norm."""
    planner: CEMConfig = field(default_factory=CEMConfig)
    """CEM sizes of ``make_policy(explore=False)`` (model-predictive control, as in PlaNet)."""
    collect_planner: CEMConfig = field(default_factory=CEMConfig)
    """CEM sizes of the collection policy ``make_policy(explore=True)``."""
    explore_noise: float = 0.3
    """Exploration noise of the collection policy."""

    def __post_init__(self) -> None:
        for name in ("deter", "stoch", "hidden", "mlp_units", "cnn_depth"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 1, name, v, "an int >= 1")
        _check(isinstance(self.mlp_layers, int) and self.mlp_layers >= 0, "mlp_layers", self.mlp_layers, "an int >= 0")
        _check(self.classes == 0 or self.classes >= 2, "classes", self.classes, "0 (Gaussian) or an int >= 2")
        _check(0 <= self.unimix < 1, "unimix", self.unimix, "a float in [0, 1)")
        _check(self.min_std > 0, "min_std", self.min_std, "a float > 0")
        for name in ("obs_scale", "reward_scale", "cont_scale"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), "a float >= 0")
        for name in ("lr", "eps", "grad_clip"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "a float > 0")
        _check(0 <= self.explore_noise <= 1, "explore_noise", self.explore_noise, "a float in [0, 1]")
        if self.backbone == "transformer" and self.deter % self.transformer.heads:
            raise ConfigError(
                f"backbone='transformer': transformer.heads={self.transformer.heads} must divide the token width "
                f"deter={self.deter}; set transformer.heads to one of {_divisors(self.deter)} or change deter"
            )

    def replace(self, **changes: Any) -> ModularRSSMConfig:
        """Copy with fields replaced (validated)."""
        return dataclasses.replace(self, **changes)

    def override(self, overrides: dict[str, Any]) -> ModularRSSMConfig:
        """Copy with dot-notation overrides applied and type-checked."""
        return apply_overrides(self, overrides)

    @classmethod
    def tiny(cls) -> ModularRSSMConfig:
        """Tiny components for tests and CPU smoke runs."""
        return cls(
            deter=16, stoch=4, classes=4, hidden=16, mlp_units=16, mlp_layers=1, cnn_depth=4,
            transformer=TransformerConfig(layers=1, heads=2, window=4, mlp_ratio=1.0),
            vit=ViTConfig(patch=16, width=8, layers=1, heads=2), planner=CEMConfig.tiny(),
            collect_planner=CEMConfig.tiny(), lr=1e-3,
        )

    @classmethod
    def small(cls) -> ModularRSSMConfig:
        """Low-dimensional control on a CPU."""
        return cls(
            deter=64, stoch=8, classes=8, hidden=64, mlp_units=64, mlp_layers=2, cnn_depth=16,
            transformer=TransformerConfig(layers=1, heads=4, window=8), vit=ViTConfig(patch=16, width=32),
            lr=1e-3, collect_planner=CEMConfig(candidates=500, iterations=6, top_k=50),
        )

    @classmethod
    def medium(cls) -> ModularRSSMConfig:
        """GPU-sized: the class defaults (deter 256, 16x16 latents, 2-layer transformer, 8x8-patch ViT)."""
        return cls()
