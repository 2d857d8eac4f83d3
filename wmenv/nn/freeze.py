"""Temporarily freezing parameters so a loss can flow *through* a module without training it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["frozen"]


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Set ``requires_grad=False`` on the modules' trainable parameters inside the block.

    Gradients still flow through the modules' activations to whatever feeds them (e.g. an actor
    trained by backpropagating through learned dynamics), but the frozen parameters get none,
    so several losses can be summed into one backward pass without leaking into each other.
    """
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
