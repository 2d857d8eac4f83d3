"""Neural building blocks shared by the world-model families (Dreamer, PlaNet, Modular RSSM, Ha)."""

from wmenv.nn.conv import ConvDecoder, ConvEncoder
from wmenv.nn.distributions import (
    BoundedNormal,
    OneHotDist,
    TanhNormal,
    TwoHotSymlog,
    bernoulli_loss,
    gaussian_from_raw,
    symexp,
    symlog,
)
from wmenv.nn.freeze import frozen
from wmenv.nn.mlp import MLP
from wmenv.nn.normalize import RunningNorm
from wmenv.nn.recurrent import NormGRUCell
from wmenv.nn.rssm import RSSM, kl_loss

__all__ = [
    "MLP",
    "ConvEncoder",
    "ConvDecoder",
    "NormGRUCell",
    "RSSM",
    "kl_loss",
    "symlog",
    "symexp",
    "TwoHotSymlog",
    "OneHotDist",
    "BoundedNormal",
    "TanhNormal",
    "bernoulli_loss",
    "gaussian_from_raw",
    "frozen",
    "RunningNorm",
]
