"""An action-conditioned next-frame predictor: the last ``K`` grayscale frames + an action -> the next frame.

Tensor contract (:meth:`NextFramePredictor.forward`)::

    frames  (B, K, H, W) float in [0, 1]   the last K frames, oldest first (K = config.context, e.g. 4)
    action  (B,) int64                      the action taken after the last frame
    ->      (B, 1, H, W) float              the next frame (unclamped; training target in [0, 1])

e.g. ``(B, 4, 84, 84)`` for Atari under ``wmenv.make_env("ALE/Pong-v5")`` (84x84 grayscale). A small
conv encoder (the DQN one for 84x84) maps the frames to a vector ``h``; the action enters
multiplicatively, ``z = relu(h + W_dec (W_h h * W_a a))`` (Oh et al. 2015); a mirrored
transposed-conv decoder predicts the change from the last frame (``residual=True``; its last layer
starts at zero, so an untrained model predicts "nothing moves"). Small reward and termination heads
read ``z`` so the model is a complete imagination env.

Batch format: the replay rows of :mod:`wmenv.train.replay` ``[B, T]``. The frame at step ``t`` is the
row's observation (the last frame of it when observations are frame stacks). Transition ``t -> t+1``
uses the window of the ``K`` frames ending at ``t`` -- positions before the episode's first frame
repeat that frame, as ``gymnasium.wrappers.FrameStackObservation`` pads -- and ``action[t+1]``; it is
dropped when ``t+1`` starts an episode or when the window reaches before the sequence into an
episode that started earlier.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.nextframe.config import NextFrameConfig
from wmenv.nn import MLP
from wmenv.nn.codecs import ActionCodec

__all__ = ["NextFramePredictor", "frames_space"]


def frames_space(observation_space: gym.Space, key: str) -> gym.spaces.Box:
    """The ``Box`` the frames live in: ``observation_space`` itself for ``key="observation"``, else the
    entry ``observation.a.b`` of a ``Dict`` space."""
    parts = key.split(".")
    if parts[0] != "observation":
        raise UnsupportedSpaceError(f"frames_key must start with 'observation', got {key!r}")
    space = observation_space
    for part in parts[1:]:
        if not isinstance(space, gym.spaces.Dict) or part not in space.spaces:
            raise UnsupportedSpaceError(f"frames_key {key!r}: the observation space {observation_space} has no "
                                        f"entry {part!r}")
        space = space.spaces[part]
    if not isinstance(space, gym.spaces.Box):
        raise UnsupportedSpaceError(
            f"the next-frame predictor reads grayscale frames from a Box, but {key} is {space}; point "
            "frames_key at the image entry of a Dict observation (frames_key=observation.pixels)"
        )
    return space


def _layout(space: gym.spaces.Box) -> tuple[str, int, int, int]:
    """``(layout, H, W, frames per observation)`` of a frame space (see :class:`NextFramePredictor`)."""
    shape = tuple(space.shape)
    if len(shape) == 2:
        return "hw", shape[0], shape[1], 1
    if len(shape) == 3 and shape[-1] == 1:
        return "hwc", shape[0], shape[1], 1
    if len(shape) == 3 and shape[-1] in (3, 4):
        raise UnsupportedSpaceError(
            f"the next-frame predictor predicts grayscale frames, got RGB(A) images {space}; make the env with "
            "grayscale frames (ALE: wmenv.make_env('ALE/Pong-v5') is 84x84 grayscale by default, grayscale=True)"
        )
    if len(shape) == 3:
        return "khw", shape[1], shape[2], shape[0]
    if len(shape) == 4 and shape[-1] == 1:
        return "khwc", shape[1], shape[2], shape[0]
    raise UnsupportedSpaceError(
        f"the next-frame predictor needs grayscale frames (H, W), (H, W, 1) or frame stacks (K, H, W[, 1]), "
        f"got {space}"
    )


class NextFramePredictor(nn.Module):
    """Next grayscale frame (plus reward and termination) from the last ``context`` frames and an action.

    Observations (or the ``frames_key`` entry of ``Dict`` observations) are uint8 frames in [0, 255] or
    float frames in [0, 1] of shape ``(H, W)``, ``(H, W, 1)`` or frame stacks ``(K', H, W[, 1])`` (the
    last frame of each stack is the frame at that step). Actions: ``Discrete`` (or a 1-D ``Box``).

    Raises:
        UnsupportedSpaceError: other observation or action spaces, RGB frames, or frames smaller than the
            encoder's receptive field.
    """

    def __init__(self, config: NextFrameConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.config, self.observation_space, self.action_space = config, observation_space, action_space
        self.frame_box = box = frames_space(observation_space, config.frames_key)
        self.layout, h, w, self.env_stack = _layout(box)
        self.frame_hw = (h, w)
        if box.dtype == np.uint8:
            self.scale = 1.0 / 255.0
        elif np.issubdtype(box.dtype, np.floating) and np.all(box.low >= 0) and np.all(box.high <= 1):
            self.scale = 1.0
        else:
            raise UnsupportedSpaceError(f"frames must be uint8 [0, 255] or float in [0, 1], got {box}")
        self.key = tuple(config.frames_key.split("."))
        self.actions = ActionCodec(action_space, "the next-frame predictor")
        sizes = [(h, w)]
        convs, c_in = [], config.context
        for c, k, s in zip(config.channels, config.kernels, config.strides, strict=True):
            ph, pw = sizes[-1]
            nh, nw = (ph - k) // s + 1, (pw - k) // s + 1
            if nh < 1 or nw < 1:
                raise UnsupportedSpaceError(
                    f"{h}x{w} frames are too small for the encoder (kernels {config.kernels}, strides "
                    f"{config.strides}): the feature map shrinks to {nh}x{nw}; use preset 'tiny' or smaller kernels"
                )
            convs.append(nn.Conv2d(c_in, c, k, s))
            sizes.append((nh, nw))
            c_in = c
        self.sizes = sizes
        self.encoder = nn.ModuleList(convs)
        self.feat_shape = (c_in, *sizes[-1])
        feat = int(np.prod(self.feat_shape))
        self.enc_fc = nn.Linear(feat, config.hidden)
        self.w_h = nn.Linear(config.hidden, config.factors)
        self.w_a = nn.Linear(self.actions.dim, config.factors, bias=False)
        self.w_dec = nn.Linear(config.factors, config.hidden)
        self.dec_fc = nn.Linear(config.hidden, feat)
        outs = [1, *config.channels[:-1]]
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(config.channels[i], outs[i], config.kernels[i], config.strides[i])
            for i in reversed(range(len(config.channels)))
        )
        if config.residual:  # start from "nothing moves"
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)
        head = min(config.hidden, 128)
        self.reward_head = MLP(config.hidden, 1, head, 1, out_init_zero=True)
        self.term_head = MLP(config.hidden, 1, head, 1)

    # ------------------------------------------------------------------ frames
    def frames_of(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations ``(..., *obs_shape)`` -> the frame at each step ``(..., H, W)`` float in [0, 1]."""
        x = obs.float() * self.scale
        if self.layout == "hwc":
            return x[..., 0]
        if self.layout == "khw":
            return x[..., -1, :, :]
        if self.layout == "khwc":
            return x[..., -1, :, :, 0]
        return x

    def batch_frames(self, batch: TensorDictBase) -> torch.Tensor:
        """The frames of a row batch ``[B, T]`` -> ``(B, T, H, W)``."""
        return self.frames_of(batch.get(self.key))

    # ------------------------------------------------------------------ network
    def _core(self, frames: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames - 0.5
        for conv in self.encoder:
            x = F.relu(conv(x))
        h = F.relu(self.enc_fc(x.flatten(1)))
        z = F.relu(h + self.w_dec(self.w_h(h) * self.w_a(self.actions.encode(action))))
        y = F.relu(self.dec_fc(z)).view(-1, *self.feat_shape)
        for i, deconv in enumerate(self.decoder):
            y = deconv(y, output_size=self.sizes[len(self.decoder) - 1 - i])
            if i < len(self.decoder) - 1:
                y = F.relu(y)
        if self.config.residual:
            y = frames[:, -1:] + y
        return y, z

    def forward(self, frames: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``frames (B, K, H, W)`` in [0, 1], ``action (B,)`` -> the next frame ``(B, 1, H, W)`` (unclamped)."""
        return self._core(frames, action)[0]

    def predict(self, frames: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(next frame (B, H, W) clamped to [0, 1], reward (B,), termination logit (B,))``."""
        y, z = self._core(frames, action)
        return y[:, 0].clamp(0, 1), self.reward_head(z)[:, 0], self.term_head(z)[:, 0]

    # ------------------------------------------------------------------ training
    def windows(self, is_first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(positions (B, T-1, K), valid (B, T-1))``: the frames of the window ending at each ``t < T-1``
        and whether transition ``t -> t+1`` is trained on (see the module docstring)."""
        b, t = is_first.shape
        k = self.config.context
        steps = torch.arange(t, device=is_first.device)
        last_first = torch.where(is_first.bool(), steps, torch.full_like(steps, -1)).cummax(1).values
        ends = steps[:-1]
        pos = ends[:, None] + torch.arange(-(k - 1), 1, device=is_first.device)[None, :]  # (T-1, K)
        lf = last_first[:, :-1]  # (B, T-1)
        pos = torch.maximum(pos[None], lf[..., None]).clamp(min=0)
        valid = ((lf >= 0) | (ends[None] >= k - 1)) & ~is_first[:, 1:].bool()
        return pos, valid

    def transitions(self, batch: TensorDictBase) -> dict[str, torch.Tensor]:
        """The valid transitions of a row batch ``[B, T]``: ``frames (N, K, H, W)``, ``action (N, ...)``,
        ``target (N, H, W)``, ``reward (N,)``, ``terminated (N,)`` and ``valid (B, T-1)``."""
        frames = self.batch_frames(batch)
        if frames.shape[1] < 2:
            raise ValueError(f"nextframe needs sequences of >= 2 steps, got {frames.shape[1]}")
        pos, valid = self.windows(batch["is_first"])
        rows = torch.arange(frames.shape[0], device=frames.device)[:, None, None]
        win = frames[rows, pos]  # (B, T-1, K, H, W)
        return {
            "frames": win[valid], "action": batch["action"][:, 1:][valid], "target": frames[:, 1:][valid],
            "reward": batch["reward"][:, 1:][valid].float(), "terminated": batch["terminated"][:, 1:][valid].float(),
            "valid": valid,
        }

    def loss(self, batch: TensorDictBase) -> TensorDict:
        """``loss_frame`` (Huber or MSE per pixel), ``loss_reward`` (MSE), ``loss_term`` (BCE) and metrics:
        ``mse`` of the clamped prediction, ``copy_mse`` (the "nothing moves" baseline), ``valid_frac``."""
        c = self.config
        tr = self.transitions(batch)
        n = tr["frames"].shape[0]
        pred, z = self._core(tr["frames"], tr["action"])
        pred = pred[:, 0]
        target = tr["target"]
        if n == 0:
            zero = pred.sum() * 0.0
            frame_loss = reward_loss = term_loss = zero
        else:
            if c.loss == "huber":
                frame_loss = F.huber_loss(pred, target, delta=c.huber_delta)
            else:
                frame_loss = F.mse_loss(pred, target)
            reward_loss = F.mse_loss(self.reward_head(z)[:, 0], tr["reward"])
            term_loss = F.binary_cross_entropy_with_logits(self.term_head(z)[:, 0], tr["terminated"])
        with torch.no_grad():
            denom = max(n, 1) * target[0].numel() if n else 1
            metrics = {
                "mse": ((pred.clamp(0, 1) - target) ** 2).sum() / denom,
                "copy_mse": ((tr["frames"][:, -1] - target) ** 2).sum() / denom,
                "valid_frac": tr["valid"].float().mean(),
            }
        return TensorDict(
            {"loss_frame": frame_loss, "loss_reward": c.reward_weight * reward_loss,
             "loss_term": c.term_weight * term_loss, **metrics},
            batch_size=[],
        )

    def optim_groups(self) -> dict[str, dict]:
        """One Adam group with the config's lr, eps and grad clip."""
        c = self.config
        return {"model": {"params": list(self.parameters()), "lr": c.lr, "eps": c.eps, "grad_clip": c.grad_clip}}

    # ------------------------------------------------------------------ pictures
    @torch.no_grad()
    def preview(self, batch: TensorDictBase, count: int = 8) -> np.ndarray | None:
        """An image strip of up to ``count`` one-step predictions: real next frames (top), predicted
        (middle), absolute error (bottom), as ``(H', W', 3)`` uint8; ``None`` without valid transitions."""
        tr = self.transitions(batch)
        if tr["frames"].shape[0] == 0:
            return None
        frames, action, target = tr["frames"][:count], tr["action"][:count], tr["target"][:count]
        pred = self.predict(frames, action)[0]
        rows = [target, pred, (pred - target).abs()]
        k = max(1, -(-48 // self.frame_hw[0]))  # upscale small frames to >= 48 px
        gap = 2
        h, w = self.frame_hw[0] * k, self.frame_hw[1] * k
        n = target.shape[0]
        label_w = 40
        out = np.full((3 * h + 4 * gap, label_w + n * (w + gap) + gap, 3), 255, np.uint8)
        for r, row in enumerate(rows):
            imgs = (row.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            for i in range(n):
                tile = np.repeat(np.repeat(imgs[i], k, 0), k, 1)
                y0, x0 = gap + r * (h + gap), label_w + gap + i * (w + gap)
                out[y0:y0 + h, x0:x0 + w] = tile[..., None]
        try:
            from PIL import Image, ImageDraw

            img = Image.fromarray(out)
            draw = ImageDraw.Draw(img)
            for r, text in enumerate(("real", "pred", "|err|")):
                draw.text((2, gap + r * (h + gap) + h // 2 - 5), text, fill=(0, 0, 0))
            out = np.asarray(img).copy()
        except ImportError:  # pragma: no cover - PIL ships with matplotlib
            pass
        return out
