"""DIAMOND's world model: a diffusion model of the next frame and a reward/termination model.

Frames are the env's ``uint8`` ``(H, W, C)`` observations (``Box(0, high)`` with one ``high`` for
every cell: 1 for binary MinAtar frames, 255 for Atari pixels), scaled to ``[-1, 1]`` channels
first. A predicted frame is turned back into an observation by rounding to the ``high + 1``
levels (for binary frames: thresholding at 0, so imagined frames stay binary), and the rounded
frame is what the model feeds back to itself.

Batch format: the replay rows of :mod:`wmenv.train.replay` as a TensorDict ``[B, T]``.
``action[t]`` led to ``observation[t]``, so the action *taken at* frame ``p`` is ``action[p + 1]``.

- **Denoiser** (``loss_denoiser``): frame ``t + 1`` given frames ``t - L + 1 .. t`` and the actions
  taken at them (the last one leads to the target), under the configured objective (EDM or DDPM).
  Frames of another episode inside the window are replaced by zeros (DIAMOND's padding at episode
  starts), so targets right after a reset are learned too; a window reaching before the sequence
  is used only when the target's episode starts inside the sequence. ``schedule.denoiser_windows``
  targets are drawn per batch (0: all).
- **Reward/termination** (``loss_reward``, ``loss_end``): a CNN on ``(frame p, frame p + 1)``
  conditioned on the action taken at ``p`` (adaptive group norm), an LSTM along the sequence (reset
  at episode starts), and a head giving the reward (its sign as 3 classes, as DIAMOND, or its value)
  and a termination logit for every transition that stays inside an episode.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.diamond.config import DiamondConfig, RewardEndConfig
from wmenv.nn.codecs import ActionCodec
from wmenv.nn.diffusion import DDPM, EDM, Network, NoiseSource, keyed_normal, keyed_uniform
from wmenv.nn.dit import FrameDenoiserDiT
from wmenv.nn.unet import Downsample, FrameDenoiserUNet, ResBlock, pad_to_multiple

__all__ = ["FrameCodec", "RewardEndModel", "DiamondWorldModel", "frame_space"]

#: keyed-noise stream of the reward/termination draws (denoising draws use streams 0, 1, 2, ...)
HEADS_STREAM = -1


def frame_space(space: gym.Space, who: str = "the diamond family") -> tuple[int, int, int, int]:
    """``(H, W, C, high)`` of a supported frame space.

    Raises:
        UnsupportedSpaceError: anything but a ``uint8`` ``Box(0, high, (H, W, C))`` with one ``high >= 1``.
    """
    if (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            and np.all(space.low == 0) and np.all(space.high == space.high.flat[0]) and space.high.flat[0] >= 1):
        h, w, c = (int(s) for s in space.shape)
        return h, w, c, int(space.high.flat[0])
    raise UnsupportedSpaceError(
        f"{who} models frames: it needs uint8 Box(0, high, (H, W, C)) observations with one high >= 1 (64x64x3 "
        f"pixels, 10x10xC MinAtar frames), got {space}. Vector observations are not supported: use a vector "
        "family (dreamer, mlp-wm) or render pixels (wmenv.make_env(..., pixels=True))"
    )


class FrameCodec(nn.Module):
    """``uint8`` frames ``(..., H, W, C)`` in ``[0, high]`` <-> float ``(..., C, H, W)`` in ``[-1, 1]``.

    Args:
        high: the largest cell value (1 for binary frames, 255 for pixels).
    """

    def __init__(self, high: int) -> None:
        super().__init__()
        self.high = int(high)

    @property
    def binary(self) -> bool:
        """Whether frames are 0/1 (then decoding thresholds at 0)."""
        return self.high == 1

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """``uint8 (..., H, W, C)`` -> ``float (..., C, H, W)``."""
        return frames.movedim(-1, -3).float() * (2.0 / self.high) - 1.0

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """``float (..., C, H, W)`` -> the nearest ``uint8 (..., H, W, C)`` frame (binarised when ``high == 1``)."""
        levels = ((x.float() + 1.0) * (self.high / 2.0)).round().clamp(0, self.high)
        return levels.to(torch.uint8).movedim(-3, -1)


class RewardEndModel(nn.Module):
    """DIAMOND's reward/termination model: conditioned CNN on ``(frame, next frame)`` + LSTM + head.

    Args:
        frame_channels: ``C``.
        image_size: ``(H, W)``.
        action_dim: size of an action vector.
        config: :class:`RewardEndConfig`.
    """

    def __init__(self, frame_channels: int, image_size: tuple[int, int], action_dim: int,
                 config: RewardEndConfig) -> None:
        super().__init__()
        ch, depths = config.channels, config.depths
        self.config = config
        self.multiple = 2 ** (len(ch) - 1)
        self.action = nn.Linear(action_dim, config.cond_dim)
        self.conv_in = nn.Conv2d(2 * frame_channels, ch[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.ModuleList(ResBlock(ch[max(0, i - 1)] if j == 0 else ch[i], ch[i], config.cond_dim) for j in range(n))
            for i, n in enumerate(depths)
        )
        self.down = nn.ModuleList(Downsample(c) for c in ch[:-1])
        h, w = (math.ceil(s / self.multiple) for s in image_size)
        self.feature_dim = ch[-1] * h * w
        self.lstm = nn.LSTMCell(self.feature_dim, config.lstm_dim)
        self.outputs = 4 if config.reward == "sign" else 2
        self.head = nn.Sequential(nn.Linear(config.lstm_dim, config.lstm_dim), nn.SiLU(),
                                  nn.Linear(config.lstm_dim, self.outputs))

    def encode(self, frame: torch.Tensor, action: torch.Tensor, next_frame: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` frames, ``(N, A)`` action vectors -> ``(N, feature_dim)``."""
        cond = self.action(action)
        x = self.conv_in(pad_to_multiple(torch.cat([frame, next_frame], 1), self.multiple))
        for i, blocks in enumerate(self.blocks):
            if i > 0:
                x = self.down[i - 1](x)
            for block in blocks:
                x = block(x, cond)
        return x.flatten(1)

    def step(self, features: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One LSTM step: ``(B, feature_dim)`` -> head output ``(B, outputs)`` and the new ``(h, c)``."""
        h, c = self.lstm(features, state)
        return self.head(h), (h, c)

    def initial_state(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(h, c)`` for ``n`` sequences."""
        z = torch.zeros(n, self.config.lstm_dim, device=device)
        return z, z.clone()


class DiamondWorldModel(nn.Module):
    """Denoiser (U-Net or DiT, EDM or DDPM) + reward/termination model, with the imagination primitives
    :meth:`start` (burn-in on real frames) and :meth:`imagine` (one batched step).

    Args:
        config: :class:`DiamondConfig`.
        observation_space: ``uint8`` frames (see :func:`frame_space`).
        action_space: ``Discrete`` or 1-D ``Box``.

    Raises:
        UnsupportedSpaceError: vector (or other non-frame) observations; unsupported actions.
    """

    def __init__(self, config: DiamondConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        h, w, c, high = frame_space(observation_space)
        self.config, self.observation_space, self.action_space = config, observation_space, action_space
        self.frame_shape = (h, w, c)
        self.codec = FrameCodec(high)
        self.actions = ActionCodec(action_space, "the diamond family")
        a, L = self.actions.dim, config.context_frames
        if config.denoiser == "unet":
            u = config.unet
            self.denoiser: nn.Module = FrameDenoiserUNet(c, L, a, u.channels, u.depths, u.cond_dim, u.attention,
                                                         u.mid_attention)
        else:
            d = config.dit
            self.denoiser = FrameDenoiserDiT(c, L, a, (h, w), d.patch, d.dim, d.depth, d.heads, d.mlp_ratio,
                                             d.cond_dim)
        self.reward_end = RewardEndModel(c, (h, w), a, config.reward_end)
        if config.objective == "edm":
            e = config.edm
            self.diffusion: EDM | DDPM = EDM(e.sigma_data, e.sigma_offset_noise, e.train_loc, e.train_scale,
                                             e.train_sigma_min, e.train_sigma_max, e.sigma_min, e.sigma_max, e.rho)
        else:
            p = config.ddpm
            self.diffusion = DDPM(p.timesteps, p.schedule, p.beta_start, p.beta_end, p.clip_sample)

    @property
    def context_frames(self) -> int:
        """``L``."""
        return self.config.context_frames

    # ------------------------------------------------------------------ the denoiser
    def network(self, context: torch.Tensor, actions: torch.Tensor) -> Network:
        """The denoiser closed over its conditioning: ``context`` ``(B, L*C, H, W)`` frames in
        ``[-1, 1]`` (zeros for padding), ``actions`` ``(B, L*A)``. Under EDM the context is divided by
        ``sigma_data`` (as DIAMOND), so it has the scale of the preconditioned noisy input."""
        if isinstance(self.diffusion, EDM):
            context = context / self.diffusion.sigma_data

        def net(x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x_in, c_noise, context, actions)

        return net

    def sample_frames(self, context: torch.Tensor, actions: torch.Tensor, *,
                      noise: torch.Generator | NoiseSource | None, steps: int | None = None) -> torch.Tensor:
        """Next frames ``(B, C, H, W)`` in ``[-1, 1]`` (not yet rounded): one batched denoiser call per step."""
        steps = self.config.sampling_steps if steps is None else int(steps)
        h, w, c = self.frame_shape
        shape = (context.shape[0], c, h, w)
        net = self.network(context, actions)
        if isinstance(self.diffusion, EDM):
            return self.diffusion.sample(net, shape, steps=steps, noise=noise, order=self.config.edm.order,
                                         device=context.device)
        p = self.config.ddpm
        return self.diffusion.sample(net, shape, steps=steps, noise=noise, eta=p.eta, sampler=p.sampler,
                                     device=context.device)

    # ------------------------------------------------------------------ training
    def _sequence(self, batch: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames = self.codec.encode(batch["observation"])  # (B, T, C, H, W)
        taken = self.actions.encode(batch["action"][:, 1:])  # (B, T-1, A): the action taken at frame p
        return frames, taken, batch["is_first"].bool()

    def denoiser_loss(self, batch: TensorDictBase) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``loss_denoiser`` on a batch ``[B, T]`` and its metrics (see the module docstring)."""
        frames, taken, is_first = self._sequence(batch)
        b, t = frames.shape[:2]
        big_l = self.context_frames
        if t < 2:
            raise ValueError(f"the diamond denoiser needs sequences of >= 2 steps, got {t}")
        dev = frames.device
        k = self.config.schedule.denoiser_windows
        ends = torch.arange(t - 1, device=dev)
        if 0 < k < t - 1:
            ends = torch.randperm(t - 1, device=dev)[:k].sort().values
        seg = is_first.long().cumsum(1)
        pad = big_l - 1
        frames_p = torch.cat([frames.new_zeros(b, pad, *frames.shape[2:]), frames], 1)
        taken_p = torch.cat([taken.new_zeros(b, pad, taken.shape[-1]), taken], 1)
        seg_p = torch.cat([seg.new_full((b, pad), -1), seg], 1)
        idx = ends[:, None] + torch.arange(big_l, device=dev)[None]  # (K, L) padded indices of frames t-L+1..t
        seg_t = seg[:, ends]  # (B, K)
        same = seg_p[:, idx] == seg_t[..., None]  # (B, K, L) frames of the target's episode
        usable = ~is_first[:, ends + 1] & ((ends >= big_l - 1)[None] | (seg_t > 0))
        ctx = frames_p[:, idx] * same[..., None, None, None]  # (B, K, L, C, H, W)
        act = taken_p[:, idx] * same[..., None]  # (B, K, L, A)
        target = frames[:, ends + 1]  # (B, K, C, H, W)
        n = b * ends.shape[0]
        net = self.network(ctx.reshape(n, -1, *frames.shape[-2:]), act.reshape(n, -1))
        per = self.diffusion.loss(net, target.reshape(n, *frames.shape[2:]))
        w = usable.reshape(-1).float()
        loss = (per * w).sum() / w.sum().clamp(min=1)
        return loss, {"denoiser_targets": w.sum().detach()}

    def reward_end_outputs(self, frames: torch.Tensor, taken: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Head outputs ``(B, T-1, outputs)`` for the transitions ``p -> p + 1`` of a sequence, the LSTM
        starting from zeros at the sequence start and at every episode start."""
        b, t = frames.shape[:2]
        re = self.reward_end
        feats = re.encode(frames[:, :-1].flatten(0, 1), taken.flatten(0, 1), frames[:, 1:].flatten(0, 1))
        feats = feats.reshape(b, t - 1, -1)
        h, c = re.initial_state(b, frames.device)
        outs = []
        for p in range(t - 1):
            keep = (~is_first[:, p]).float()[:, None]
            out, (h, c) = re.step(feats[:, p], (h * keep, c * keep))
            outs.append(out)
        return torch.stack(outs, 1)

    def reward_end_loss(self, batch: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``loss_reward`` and ``loss_end`` over every in-episode transition of a batch ``[B, T]``, and metrics."""
        frames, taken, is_first = self._sequence(batch)
        out = self.reward_end_outputs(frames, taken, is_first)
        valid = (~is_first[:, 1:]).float()
        w = valid / valid.sum().clamp(min=1)
        reward = batch["reward"][:, 1:].float()
        term = batch["terminated"][:, 1:].float()
        end_logit = out[..., -1]
        loss_end = (F.binary_cross_entropy_with_logits(end_logit, term, reduction="none") * w).sum()
        metrics: dict[str, torch.Tensor] = {}
        if self.config.reward_end.reward == "sign":
            target = (reward.sign() + 1).long()
            logits = out[..., :3]
            loss_reward = (F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
                           .reshape(target.shape) * w).sum()
            with torch.no_grad():
                metrics["reward_acc"] = ((logits.argmax(-1) == target).float() * w).sum()
        else:
            loss_reward = ((out[..., 0] - reward).pow(2) * w).sum()
        with torch.no_grad():
            metrics["end_acc"] = (((end_logit > 0).float() == term).float() * w).sum()
        return loss_reward, loss_end, metrics

    # ------------------------------------------------------------------ imagination
    @torch.no_grad()
    def start(
        self,
        observation: torch.Tensor,
        action: torch.Tensor | None = None,
        is_first: torch.Tensor | None = None,
        *,
        key: torch.Tensor,
    ) -> TensorDict:
        """Imagination state ``[B]`` from real context: the last ``L`` frames (padding where the context is
        shorter or crosses an episode start), the actions taken at the first ``L - 1`` of them, the
        reward/termination LSTM burned in on the context's transitions, the noise keys.

        Args:
            observation: ``uint8`` ``(B, T, H, W, C)`` (or ``(B, H, W, C)``: one frame).
            action: ``(B, T, ...)`` env actions in the row format (``action[t]`` led to frame ``t``).
            is_first: ``(B, T)`` episode starts inside the context.
            key: ``(B,)`` int64 noise keys.
        """
        obs = observation.to(self.codec_device)
        if obs.dim() == 4:
            obs, action, is_first = obs[:, None], None, None
        b, t = obs.shape[:2]
        big_l, dev = self.context_frames, obs.device
        first = torch.zeros(b, t, dtype=torch.bool, device=dev) if is_first is None else is_first.to(dev).bool()
        seg = first.long().cumsum(1)
        same = seg == seg[:, -1:]
        a_dim = self.actions.dim
        if action is not None and t > 1:
            taken = self.actions.encode(action.to(dev)[:, 1:])
        else:
            taken = torch.zeros(b, t - 1, a_dim, device=dev)
        if t >= big_l:
            frames, valid, taken = obs[:, t - big_l:], same[:, t - big_l:], taken[:, t - big_l:]
        else:
            pad = big_l - t
            frames = torch.cat([obs.new_zeros(b, pad, *obs.shape[2:]), obs], 1)
            valid = torch.cat([same.new_zeros(b, pad), same], 1)
            taken = torch.cat([taken.new_zeros(b, pad, a_dim), taken], 1)
        taken = taken * valid[:, :-1, None]
        h, c = self.reward_end.initial_state(b, dev)
        if big_l > 1:
            x = self.codec.encode(frames)
            feats = self.reward_end.encode(x[:, :-1].flatten(0, 1), taken.flatten(0, 1), x[:, 1:].flatten(0, 1))
            feats = feats.reshape(b, big_l - 1, -1)
            for p in range(big_l - 1):
                _, (h2, c2) = self.reward_end.step(feats[:, p], (h, c))
                v = valid[:, p, None]
                h, c = torch.where(v, h2, h), torch.where(v, c2, c)
        return TensorDict(
            {
                "frames": frames.contiguous(), "valid": valid.contiguous(), "actions": taken.contiguous(), "h": h,
                "c": c, "key": key.to(dev, torch.int64), "counter": torch.zeros(b, dtype=torch.int64, device=dev),
            },
            batch_size=[b],
        )

    @property
    def codec_device(self) -> torch.device:
        """The device of the parameters."""
        return next(self.parameters()).device

    def noise_source(self, state: TensorDictBase) -> NoiseSource:
        """The keyed noise of a state's members at their current step (draw ``i`` = stream ``i``)."""
        key, counter = state["key"], state["counter"]
        h, w, c = self.frame_shape

        def draw(i: int) -> torch.Tensor:
            return keyed_normal(key, counter, (c, h, w), stream=i)

        return draw

    @torch.no_grad()
    def imagine(
        self,
        state: TensorDictBase,
        action: torch.Tensor,
        *,
        steps: int | None = None,
        sample_heads: bool = True,
        noise: Callable[[int], torch.Tensor] | None = None,
    ) -> TensorDict:
        """Every member one step: sample the next frame (one batched denoiser call per denoising step),
        round it, then predict reward and termination.

        Args:
            state: from :meth:`start` or a previous call.
            action: ``(B, ...)`` env actions.
            steps: denoising steps (default ``config.sampling_steps``).
            sample_heads: draw the reward class and termination from the heads' distributions (DIAMOND);
                else take the most likely class and ``p > 0.5``.
            noise: override the keyed noise (tests).

        Returns:
            TensorDict ``[B]``: ``state``, ``observation`` (``uint8`` frames), ``reward``, ``terminated``,
            ``info`` (``termination_prob``).
        """
        frames, valid = state["frames"], state["valid"]
        b = frames.shape[0]
        a = self.actions.encode(action.to(frames.device))
        x = self.codec.encode(frames) * valid[..., None, None, None].float()
        acts = torch.cat([state["actions"], a[:, None]], 1) * valid[..., None].float()
        x0 = self.sample_frames(x.flatten(1, 2), acts.flatten(1), noise=noise or self.noise_source(state), steps=steps)
        nxt = self.codec.decode(x0)
        out, (h, c) = self.reward_end.step(
            self.reward_end.encode(x[:, -1], a, self.codec.encode(nxt)), (state["h"], state["c"])
        )
        u = keyed_uniform(state["key"], state["counter"], (2,), stream=HEADS_STREAM)
        p_end = torch.sigmoid(out[:, -1])
        if self.config.reward_end.reward == "sign":
            probs = torch.softmax(out[:, :3], -1)
            if sample_heads:
                cls = (u[:, :1] > probs.cumsum(-1)[:, :2]).sum(-1)
            else:
                cls = probs.argmax(-1)
            reward = cls.float() - 1.0
        else:
            reward = out[:, 0].float()
        terminated = (u[:, 1] < p_end) if sample_heads else (p_end > 0.5)
        new_state = TensorDict(
            {
                "frames": torch.cat([frames[:, 1:], nxt[:, None]], 1),
                "valid": torch.cat([valid[:, 1:], valid.new_ones(b, 1)], 1),
                "actions": acts[:, 1:] if self.context_frames > 1 else state["actions"],
                "h": h, "c": c, "key": state["key"], "counter": state["counter"] + 1,
            },
            batch_size=[b],
        )
        return TensorDict(
            {"state": new_state, "observation": nxt, "reward": reward, "terminated": terminated,
             "info": {"termination_prob": p_end.float()}},
            batch_size=[b],
        )
