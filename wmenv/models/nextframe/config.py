"""Configuration of the action-conditioned next-frame predictor (``nextframe``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wmenv.core.errors import ConfigError

__all__ = ["NextFrameConfig"]


@dataclass(frozen=True)
class NextFrameConfig:
    """Sizes, loss and optimiser settings of :class:`~wmenv.models.nextframe.model.NextFramePredictor`.

    The encoder is ``len(channels)`` convolutions (``kernels``, ``strides``, no padding), mirrored by
    transposed convolutions in the decoder; the action enters multiplicatively between them
    (Oh et al. 2015, "Action-Conditional Video Prediction using Deep Networks in Atari Games").
    """

    context: int = 4
    """Frames the model sees (the last ``context`` grayscale frames, stacked as channels)."""
    channels: tuple[int, ...] = (32, 64, 64)
    """Output channels of the encoder convolutions."""
    kernels: tuple[int, ...] = (8, 4, 3)
    """Kernel sizes of the encoder convolutions."""
    strides: tuple[int, ...] = (4, 2, 1)
    """Strides of the encoder convolutions."""
    hidden: int = 512
    """Width of the encoded frame vector."""
    factors: int = 512
    """Factors of the multiplicative action conditioning ``W_dec (W_h h * W_a a)``."""
    residual: bool = True
    """Predict the change from the last frame (else the frame itself)."""
    loss: Literal["huber", "mse"] = "huber"
    """Frame loss: Huber (``huber_delta``) or mean squared error, per pixel in [0, 1]."""
    huber_delta: float = 0.1
    """Huber threshold in [0, 1] pixel units (quadratic below, linear above)."""
    reward_weight: float = 1.0
    """Weight of the reward head's MSE (0: the head exists but is not trained)."""
    term_weight: float = 1.0
    """Weight of the termination head's BCE (0: the head exists but is not trained)."""
    frames_key: str = "observation"
    """Where the frames are in a row, dot-separated for ``Dict`` observations (``observation.pixels``)."""
    lr: float = 3e-4
    """Adam learning rate."""
    eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 10.0
    """Max global gradient norm."""

    EXTRA_PRESETS = ("atari84",)

    def __post_init__(self) -> None:
        for name, low in (("context", 1), ("hidden", 1), ("factors", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"NextFrameConfig.{name} must be an int >= {low}, got {value!r}")
        layers = (self.channels, self.kernels, self.strides)
        for name, value in zip(("channels", "kernels", "strides"), layers, strict=True):
            if (not isinstance(value, tuple) or not value
                    or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
                raise ConfigError(f"NextFrameConfig.{name} must be a non-empty tuple of ints >= 1, got {value!r}")
        if not len(self.channels) == len(self.kernels) == len(self.strides):
            raise ConfigError(
                f"NextFrameConfig: channels, kernels and strides need one entry per conv layer, got "
                f"{len(self.channels)}, {len(self.kernels)} and {len(self.strides)}"
            )
        if self.loss not in ("huber", "mse"):
            raise ConfigError(f"NextFrameConfig.loss must be 'huber' or 'mse', got {self.loss!r}")
        for name in ("lr", "eps", "grad_clip", "huber_delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"NextFrameConfig.{name} must be a number > 0, got {value!r}")
        for name in ("reward_weight", "term_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"NextFrameConfig.{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.frames_key, str) or not all(self.frames_key.split(".")):
            raise ConfigError(f"NextFrameConfig.frames_key must be a dotted key like 'observation', got "
                              f"{self.frames_key!r}")

    @classmethod
    def tiny(cls) -> NextFrameConfig:
        """Tests and CPU smoke runs on small frames (10x10 up to 32x32)."""
        return cls(channels=(8, 16), kernels=(3, 3), strides=(1, 2), hidden=64, factors=64, lr=1e-3)

    @classmethod
    def small(cls) -> NextFrameConfig:
        """64x64 or 84x84 frames on a CPU."""
        return cls(channels=(16, 32, 32), kernels=(8, 4, 3), strides=(4, 2, 1), hidden=256, factors=256, lr=5e-4)

    @classmethod
    def atari84(cls) -> NextFrameConfig:
        """84x84 grayscale Atari frames, 4 stacked (``wmenv.make_env("ALE/Pong-v5")``'s default protocol):
        the DQN encoder and a mirrored decoder."""
        return cls()
