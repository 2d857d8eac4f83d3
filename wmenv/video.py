"""Videos of real vs imagined rollouts: MP4 (imageio-ffmpeg) and GIF writers, comparison frames.

Usage::

    frames = comparison_frames(real_obs, imagined_obs)        # images or vectors, (T, ...) each
    write_video(frames, "rollout.mp4", fps=15)                 # or "rollout.gif"

Image observations ``(T, H, W, 3)`` uint8 are shown side by side with a label strip; vector
observations ``(T, D)`` become one small line plot per step (real solid, imagined dashed, one panel
per dimension), drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wmenv.core.errors import ConfigError

__all__ = [
    "VIDEO_SUFFIXES",
    "check_video_path",
    "write_video",
    "side_by_side",
    "vector_plot_frames",
    "comparison_frames",
    "is_image_batch",
]

#: Output suffixes :func:`write_video` understands.
VIDEO_SUFFIXES = (".mp4", ".gif")


def check_video_path(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if its suffix is a supported video format.

    Raises:
        ConfigError: another suffix (names the supported ones).
    """
    p = Path(path)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(
            f"unsupported video file {str(p)!r}: expected a name ending in {' or '.join(VIDEO_SUFFIXES)}, "
            f"got suffix {p.suffix or '(none)'!r}"
        )
    return p


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    """One frame as ``(H, W, 3)`` uint8 (grey and RGBA accepted; floats in [0, 1] scaled)."""
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        scale = 255.0 if a.size and float(np.nanmax(a)) <= 1.0 else 1.0
        a = np.clip(np.nan_to_num(a.astype(np.float64) * scale), 0, 255).round().astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ConfigError(f"a video frame must be (H, W), (H, W, 1|3|4), got shape {a.shape}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def _pad_to(frame: np.ndarray, multiple: int) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        frame = np.pad(frame, ((0, ph), (0, pw), (0, 0)))
    return frame


def write_video(frames: Sequence[np.ndarray] | np.ndarray, path: str | os.PathLike, fps: float = 15) -> Path:
    """Write frames to an MP4 (H.264 via imageio-ffmpeg) or an animated GIF, chosen by suffix.

    Args:
        frames: ``T`` frames ``(H, W, 3)`` uint8 (grey, RGBA and float [0, 1] frames are converted);
            all of one size.
        path: ``*.mp4`` or ``*.gif``; parent directories are created.
        fps: frames per second.

    Returns:
        The written path.

    Raises:
        ConfigError: unsupported suffix, no frames, frames of different sizes, ``fps <= 0``.
    """
    import imageio.v2 as imageio

    p = check_video_path(path)
    if not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps!r}")
    rgb = [_as_rgb(f) for f in frames]
    if not rgb:
        raise ConfigError(f"no frames to write to {p}")
    sizes = {f.shape for f in rgb}
    if len(sizes) > 1:
        raise ConfigError(f"all frames of a video must have one size, got {sorted(sizes)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".gif":
        imageio.mimsave(p, rgb, format="GIF", duration=1000.0 / fps, loop=0)
    else:  # H.264 with yuv420p needs even sizes; pad to the codec's 16-pixel blocks
        writer = imageio.get_writer(p, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error")
        try:
            for f in rgb:
                writer.append_data(_pad_to(f, 16))
        finally:
            writer.close()
    return p


def _upscale(frame: np.ndarray, min_height: int) -> np.ndarray:
    k = max(1, -(-min_height // frame.shape[0]))
    return frame if k == 1 else np.repeat(np.repeat(frame, k, axis=0), k, axis=1)


def _label_strip(text: str, width: int, height: int = 16) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(img).text((4, 2), text, fill=(0, 0, 0))
    return np.asarray(img)


def side_by_side(
    real_frames: Sequence[np.ndarray] | np.ndarray,
    imagined_frames: Sequence[np.ndarray] | np.ndarray,
    labels: tuple[str, str] = ("real", "imagined"),
    min_height: int = 128,
) -> list[np.ndarray]:
    """Pair image frames left/right with a label above each half.

    Args:
        real_frames: ``T`` frames ``(H, W, C)``.
        imagined_frames: ``T`` frames of the same size.
        labels: text above the left and the right frame.
        min_height: small frames (e.g. 64x64) are upscaled by an integer factor to at least this.

    Returns:
        ``T`` frames ``(16 + H', 2 * W' + 4, 3)`` uint8.

    Raises:
        ConfigError: different numbers of frames or frame sizes.
    """
    real = [_as_rgb(f) for f in real_frames]
    imagined = [_as_rgb(f) for f in imagined_frames]
    if len(real) != len(imagined):
        raise ConfigError(f"side_by_side needs as many real as imagined frames, got {len(real)} and {len(imagined)}")
    out: list[np.ndarray] = []
    strips: tuple[np.ndarray, np.ndarray] | None = None
    for r, m in zip(real, imagined, strict=True):
        if r.shape != m.shape:
            raise ConfigError(f"real frame {r.shape} and imagined frame {m.shape} differ in size")
        r, m = _upscale(r, min_height), _upscale(m, min_height)
        if strips is None:
            strips = (_label_strip(labels[0], r.shape[1]), _label_strip(labels[1], m.shape[1]))
        gap = np.full((r.shape[0] + strips[0].shape[0], 4, 3), 255, np.uint8)
        left, right = np.concatenate([strips[0], r]), np.concatenate([strips[1], m])
        out.append(np.concatenate([left, gap, right], axis=1))
    return out


def vector_plot_frames(
    real: np.ndarray,
    imagined: np.ndarray,
    labels: tuple[str, str] = ("real", "imagined"),
    dim_names: Sequence[str] | None = None,
    size: tuple[float, float] = (6.4, 3.6),
    dpi: int = 80,
) -> list[np.ndarray]:
    """One line-plot frame per step of vector observations, real vs imagined, one panel per dimension.

    Frame ``t`` shows both curves up to step ``t`` on fixed axes (so the video does not jitter).

    Args:
        real: ``(T, D)`` real observations (``(T,)`` is treated as ``D = 1``).
        imagined: ``(T, D)`` imagined observations.
        labels: legend names of the two curves.
        dim_names: panel titles (default ``obs[i]``); at most 12 dimensions are drawn.
        size: figure size in inches.
        dpi: resolution.

    Returns:
        ``T`` frames ``(H, W, 3)`` uint8.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = np.asarray(real, dtype=np.float64).reshape(len(real), -1)
    m = np.asarray(imagined, dtype=np.float64).reshape(len(imagined), -1)
    if r.shape != m.shape:
        raise ConfigError(f"real {r.shape} and imagined {m.shape} observations differ in shape")
    t_len, dims = r.shape
    dims = min(dims, 12)
    cols = min(dims, 4)
    rows = -(-dims // cols)
    fig = Figure(figsize=size, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    steps = np.arange(t_len)
    lines = []
    for d in range(dims):
        ax = axes[d]
        both = np.concatenate([r[:, d], m[:, d]])
        both = both[np.isfinite(both)]
        lo, hi = (float(both.min()), float(both.max())) if both.size else (-1.0, 1.0)
        pad = 0.1 * (hi - lo) or 0.5
        ax.set_xlim(0, max(t_len - 1, 1))
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(dim_names[d] if dim_names is not None else f"obs[{d}]", fontsize=8)
        ax.tick_params(labelsize=6)
        (lr,) = ax.plot([], [], "-", color="tab:blue", label=labels[0])
        (lm,) = ax.plot([], [], "--", color="tab:orange", label=labels[1])
        lines.append((lr, lm))
    for ax in axes[dims:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    frames = []
    for t in range(t_len):
        for d, (lr, lm) in enumerate(lines):
            lr.set_data(steps[: t + 1], r[: t + 1, d])
            lm.set_data(steps[: t + 1], m[: t + 1, d])
        canvas.draw()
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return frames


def is_image_batch(obs: np.ndarray) -> bool:
    """Whether ``(T, ...)`` observations are images ``(T, H, W, C)`` with ``C`` in 1, 3 or 4."""
    a = np.asarray(obs)
    return a.ndim == 4 and a.shape[-1] in (1, 3, 4)


def comparison_frames(
    real: np.ndarray, imagined: np.ndarray, labels: tuple[str, str] = ("real", "imagined")
) -> list[np.ndarray]:
    """Frames comparing real and imagined observations ``(T, ...)``: side by side for images,
    line plots for vectors."""
    if is_image_batch(real):
        return side_by_side(real, imagined, labels)
    return vector_plot_frames(real, imagined, labels)
