"""Action-conditioned next-frame predictor: the last 4 grayscale frames + an action -> the next frame.

Registered model ``nextframe`` (alias ``next-frame``; family ``"nextframe"``). It does not act; it is an
imagination env (observations: the predicted frame stack). Typical use, offline on Atari::

    wmenv collect --env ALE/Pong-v5 --steps 100000 --out data/pong --shard-size 10000
    wmenv train nextframe --dataset data/pong --preset atari84 --steps 20000 --run-dir runs/pong-nf
    wmenv evaluate-model --checkpoint runs/pong-nf --out-dir runs/pong-nf/eval   # mse_vs_horizon.png, MP4, GIF

Presets: ``tiny`` (tests; frames of 10x10 to 32x32), ``small``, ``atari84`` (84x84, the DQN encoder).
Config overrides choose the frames of a dataset (``frames_key=observation.pixels`` for ``Dict``
observations), the loss (``loss=mse``, default Huber) and sizes (``channels=16,32 kernels=4,3 strides=2,2``).
Training writes ``previews/step_<step>.png`` (real vs predicted next frames) at every checkpoint.
"""

from __future__ import annotations

from wmenv.models.nextframe.adapter import NextFrameImagination, to_world_model
from wmenv.models.nextframe.config import NextFrameConfig
from wmenv.models.nextframe.model import NextFramePredictor
from wmenv.registry import ModelSpec, register_model

__all__ = ["NextFrameConfig", "NextFramePredictor", "NextFrameImagination", "to_world_model"]


def _trainer_defaults(preset: str) -> dict[str, int]:
    if preset in ("debug", "tiny"):
        return {"seq_len": 8, "batch_size": 8}
    return {"seq_len": 16, "batch_size": 16}


register_model(
    ModelSpec(
        "nextframe", NextFrameConfig, NextFramePredictor, family="nextframe", aliases=("next-frame",),
        description="action-conditioned next-frame predictor (last 4 grayscale frames + action -> next frame)",
        to_world_model=to_world_model, trainer_defaults=_trainer_defaults, observations=("image",),
    )
)
