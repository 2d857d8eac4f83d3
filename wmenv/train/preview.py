"""Image strips written during training by families that can draw one (``model.preview(batch)``).

A model may define ``preview(batch: TensorDict[B, T]) -> (H, W, 3) uint8 array`` (e.g. real vs
predicted frames; ``None`` when it has nothing to show). Training runs call :func:`write_preview` at
every checkpoint (``TrainerConfig.checkpoint_every`` steps, and at the end), which writes
``run_dir/previews/step_<step>.png``. The model is put in ``eval()`` mode under ``torch.no_grad()``
and torch's CPU RNG is forked, so drawing a preview never changes what training does next.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmenv.core.errors import ConfigError

__all__ = ["PREVIEW_DIR", "write_preview", "replay_preview_batch"]

PREVIEW_DIR = "previews"


def replay_preview_batch(replay: Any, seq_len: int, batch_size: int = 4) -> Any:
    """A few sequences of a replay for a preview, drawn without moving the replay's sampler RNG
    (``None`` when the replay has no sequence that long yet)."""
    from wmenv.train.replay import sample_sequences

    rng = getattr(replay, "_rng", None)
    state = rng.get_state() if rng is not None else None
    try:
        return sample_sequences(replay, batch_size, seq_len)
    except ConfigError:
        return None
    finally:
        if state is not None:
            rng.set_state(state)


def write_preview(model: torch.nn.Module, batch: Any, run_dir: str | os.PathLike, step: int) -> Path | None:
    """Write ``model.preview(batch)`` to ``run_dir/previews/step_<step>.png``; ``None`` if there is none."""
    draw = getattr(model, "preview", None)
    if batch is None or not callable(draw):
        return None
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model.eval()
        try:
            image = draw(batch.to(device))
        finally:
            model.train(was_training)
    if image is None:
        return None
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ConfigError(f"{type(model).__name__}.preview must return an (H, W, 3) uint8 image, got "
                          f"{arr.dtype} {arr.shape}")
    from PIL import Image

    out = Path(run_dir) / PREVIEW_DIR / f"step_{int(step):07d}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    Image.fromarray(arr).save(tmp, format="PNG")
    os.replace(tmp, out)
    return out
