"""Configuration of the deterministic MLP world model (``mlp-wm``)."""

from __future__ import annotations

from dataclasses import dataclass

from wmenv.core.errors import ConfigError

__all__ = ["MLPWorldModelConfig"]


@dataclass(frozen=True)
class MLPWorldModelConfig:
    """Sizes and optimiser settings of :class:`~wmenv.models.mlp.model.MLPWorldModel`."""

    hidden: int = 256
    """Width of the hidden layers."""
    layers: int = 2
    """Hidden layers (Linear -> LayerNorm -> SiLU) before the output heads."""
    context: int = 1
    """Observations of history the model sees (1: only the last one)."""
    lr: float = 1e-3
    """Adam learning rate."""
    eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 100.0
    """Max global gradient norm."""

    def __post_init__(self) -> None:
        for name, low in (("hidden", 1), ("layers", 1), ("context", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"MLPWorldModelConfig.{name} must be an int >= {low}, got {value!r}")
        for name in ("lr", "eps", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"MLPWorldModelConfig.{name} must be a number > 0, got {value!r}")

    @classmethod
    def tiny(cls) -> MLPWorldModelConfig:
        """Tests and CPU smoke runs."""
        return cls(hidden=32, layers=1, lr=3e-3)

    @classmethod
    def small(cls) -> MLPWorldModelConfig:
        """Low-dimensional control on a CPU."""
        return cls(hidden=128, layers=2, lr=1e-3)
