"""Diffusion objectives and samplers for frame-generating world models (DIAMOND, DDPM, DiT).

Two objectives share one interface. A *network* is a callable ``net(x_in, c_noise) -> out`` that
closes over its conditioning (context frames, actions): ``x_in`` is the (scaled) noisy sample
``(B, ...)`` and ``c_noise`` ``(B,)`` the noise-level input. Everything is batched: a sampler makes
**one** ``net`` call per denoising step for the whole batch (two for Heun's second-order step).

:class:`EDM` (Karras et al. 2022, "Elucidating the design space of diffusion-based generative
models"; DIAMOND's objective)
    Preconditioning ``D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))``
    with ``c_skip = s_d^2 / (sigma^2 + s_d^2)``, ``c_out = sigma s_d / sqrt(sigma^2 + s_d^2)``,
    ``c_in = 1 / sqrt(sigma^2 + s_d^2)``, ``c_noise = ln(sigma) / 4`` (``s_d`` = ``sigma_data``, the
    data std). Training draws ``ln sigma ~ N(loc, scale^2)`` (clipped) and regresses ``F`` on
    ``(x0 - c_skip x) / c_out``, a target of unit variance (EDM's ``lambda(sigma) = 1 / c_out^2``
    weighting of the denoising error). Sampling integrates the probability-flow ODE
    ``dx/dsigma = (x - D(x; sigma)) / sigma`` over the Karras schedule
    ``sigma_i = (s_max^(1/rho) + i/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho`` followed by 0, with
    Euler steps (DIAMOND's default, 3 steps) or Heun's method. Sampling starts at
    ``x = sigma_max * noise`` (the EDM initialisation; DIAMOND's code starts from unit noise).
    DIAMOND's offset noise (``sigma_offset_noise``: one extra Gaussian per sample and channel in
    training, folded into the conditioners as ``sqrt(sigma^2 + s_off^2)``) is supported.

:class:`DDPM` (Ho et al. 2020) with DDIM sampling (Song et al. 2021)
    Variance-preserving forward process ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` over ``T``
    steps with a linear or cosine (Nichol & Dhariwal 2021) ``beta`` schedule; the network predicts
    ``eps``. ``c_noise`` is ``ln(sigma_t) / 4`` with ``sigma_t = sqrt((1 - abar_t) / abar_t)``, the
    noise level of the equivalent variance-exploding process, so a denoiser embeds the noise level
    the same way under both objectives. Samplers: ancestral (all ``T`` steps) and DDIM over ``steps``
    evenly spaced timesteps with stochasticity ``eta`` (0: deterministic given the initial noise).

Randomness is explicit. A sampler takes ``noise``: either a :class:`torch.Generator` (draws
``torch.randn`` from it) or a callable ``noise(i) -> Tensor`` giving the ``i``-th Gaussian draw of
the sample's shape (``i = 0`` is the initial noise, ``i >= 1`` the fresh noise of stochastic step
``i``). :func:`keyed_normal` builds such draws from per-sample integer keys with a counter-based
hash, so a sample's noise depends on its own key only, never on the batch it is computed in (what
makes batched imagination equal to per-member imagination; see ``wmenv.models.diamond.adapter``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from wmenv.core.errors import ConfigError

__all__ = [
    "Network",
    "NoiseSource",
    "append_dims",
    "keyed_bits",
    "keyed_uniform",
    "keyed_normal",
    "make_noise",
    "karras_sigmas",
    "EDM",
    "DDPM",
    "FourierFeatures",
    "NoiseActionEmbedding",
]

#: ``net(x_in (B, ...), c_noise (B,)) -> (B, ...)``: a denoiser closed over its conditioning.
Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``noise(i) -> (B, ...)`` standard normal draw number ``i`` of a sampler (0: initial noise).
NoiseSource = Callable[[int], torch.Tensor]


def append_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(B,)`` -> ``(B, 1, ..., 1)`` with ``ndim`` dims in all (for broadcasting over a sample)."""
    return x.reshape(x.shape + (1,) * (ndim - x.dim()))


# ---------------------------------------------------------------------------------------------- keyed noise
def _i64(value: int) -> int:
    """An unsigned 64-bit constant as the signed int64 with the same bits."""
    return value - (1 << 64) if value >= (1 << 63) else value


_GOLDEN = _i64(0x9E3779B97F4A7C15)
_MIX1 = _i64(0xBF58476D1CE4E5B9)
_MIX2 = _i64(0x94D049BB133111EB)


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits (``>>`` is arithmetic on signed tensors)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 (Steele et al. 2014) on int64 tensors; multiplication and addition wrap mod 2**64."""
    x = x + _GOLDEN
    x = (x ^ _srl(x, 30)) * _MIX1
    x = (x ^ _srl(x, 27)) * _MIX2
    return x ^ _srl(x, 31)


def keyed_bits(key: torch.Tensor, counter: torch.Tensor, n: int, stream: int = 0) -> torch.Tensor:
    """``(B, n)`` pseudo-random int64 words, a pure function of ``(key[b], counter[b], stream, j)``.

    Args:
        key: ``(B,)`` int64 per-sample keys (drawn once from a generator).
        counter: ``(B,)`` int64 per-sample counters (e.g. the step index).
        n: words per sample.
        stream: separates independent uses within one ``(key, counter)`` (initial noise, ancestral
            noise of step ``i``, reward draws, ...).
    """
    key, counter = key.to(torch.int64), counter.to(torch.int64).to(key.device)
    h = _mix(_mix(key) ^ _mix(counter + _i64(0xD1B54A32D192ED03)))
    h = _mix(h + _i64((stream * 0xBF58476D1CE4E5B9) % (1 << 64)))
    j = torch.arange(1, n + 1, device=key.device, dtype=torch.int64)
    return _mix(h[:, None] + j[None, :] * _GOLDEN)


def keyed_uniform(
    key: torch.Tensor, counter: torch.Tensor, shape: tuple[int, ...], stream: int = 0
) -> torch.Tensor:
    """``(B, *shape)`` float32 uniforms in ``(0, 1)`` (24-bit resolution) from :func:`keyed_bits`."""
    n = math.prod(shape)
    bits = keyed_bits(key, counter, n, stream)
    return ((_srl(bits, 40).float() + 0.5) / 2**24).reshape(key.shape[0], *shape)


def keyed_normal(
    key: torch.Tensor, counter: torch.Tensor, shape: tuple[int, ...], stream: int = 0
) -> torch.Tensor:
    """``(B, *shape)`` float32 standard normals (Box-Muller on two 24-bit uniforms of one word).

    The same ``(key, counter, stream)`` gives the same values on every device and in every batch.
    """
    n = math.prod(shape)
    bits = keyed_bits(key, counter, n, stream)
    u1 = (_srl(bits, 40).float() + 0.5) / 2**24
    u2 = (((bits >> 8) & 0xFFFFFF).float() + 0.5) / 2**24
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return z.reshape(key.shape[0], *shape)


def make_noise(
    noise: torch.Generator | NoiseSource | None, shape: tuple[int, ...], device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> NoiseSource:
    """A :data:`NoiseSource` from a generator (``None``: torch's global generator) or a ready callable."""
    if callable(noise) and not isinstance(noise, torch.Generator):
        return noise
    generator = noise

    def draw(i: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    return draw


# ---------------------------------------------------------------------------------------------- EDM
def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """The Karras et al. (2022) schedule: ``steps`` noise levels from ``sigma_max`` down to
    ``sigma_min`` (uniform in ``sigma^(1/rho)``), then a final 0; ``(steps + 1,)`` float64.
    One step gives ``[sigma_max, 0]``."""
    if steps < 1:
        raise ConfigError(f"sampling steps must be >= 1, got {steps}")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64, device=device)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


class EDM:
    """EDM preconditioning, training-noise distribution and ODE samplers (see the module docstring).

    Args:
        sigma_data: std of the data (0.5 for frames in ``[-1, 1]``, DIAMOND's value).
        sigma_offset_noise: std of DIAMOND's per-channel offset noise in training (0: none).
        train_loc: mean of ``ln sigma`` in training (DIAMOND: -0.4; EDM: -1.2).
        train_scale: std of ``ln sigma`` in training (1.2).
        train_sigma_min: lower clip of training ``sigma``.
        train_sigma_max: upper clip of training ``sigma``.
        sigma_min: lowest nonzero sampling ``sigma`` (DIAMOND: 2e-3).
        sigma_max: first sampling ``sigma`` (DIAMOND: 5; EDM: 80).
        rho: curvature of the sampling schedule (7).
    """

    def __init__(
        self,
        sigma_data: float = 0.5,
        sigma_offset_noise: float = 0.0,
        train_loc: float = -0.4,
        train_scale: float = 1.2,
        train_sigma_min: float = 2e-3,
        train_sigma_max: float = 20.0,
        sigma_min: float = 2e-3,
        sigma_max: float = 5.0,
        rho: float = 7.0,
    ) -> None:
        if not (sigma_data > 0 and sigma_offset_noise >= 0 and train_scale > 0 and rho > 0):
            raise ConfigError("EDM: need sigma_data > 0, sigma_offset_noise >= 0, train_scale > 0 and rho > 0")
        if not (0 < train_sigma_min < train_sigma_max and 0 < sigma_min < sigma_max):
            raise ConfigError(
                f"EDM: need 0 < train_sigma_min < train_sigma_max and 0 < sigma_min < sigma_max, got "
                f"{train_sigma_min}, {train_sigma_max}, {sigma_min}, {sigma_max}"
            )
        self.sigma_data, self.sigma_offset_noise = float(sigma_data), float(sigma_offset_noise)
        self.train_loc, self.train_scale = float(train_loc), float(train_scale)
        self.train_sigma_min, self.train_sigma_max = float(train_sigma_min), float(train_sigma_max)
        self.sigma_min, self.sigma_max, self.rho = float(sigma_min), float(sigma_max), float(rho)

    # ------------------------------------------------------------------ preconditioning
    def conditioners(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(c_skip, c_out, c_in, c_noise)``, each shaped like ``sigma`` ``(B,)``."""
        sigma = torch.sqrt(sigma**2 + self.sigma_offset_noise**2)
        sd2 = self.sigma_data**2
        total = sigma**2 + sd2
        c_skip = sd2 / total
        c_out = sigma * self.sigma_data / total.sqrt()
        c_in = 1.0 / total.sqrt()
        c_noise = sigma.log() / 4
        return c_skip, c_out, c_in, c_noise

    def denoise(self, net: Network, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``D(x; sigma)`` for a batch ``x`` ``(B, ...)``; ``sigma`` a float or ``(B,)``."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = self.conditioners(sigma)
        out = net(x * append_dims(c_in, x.dim()), c_noise)
        return append_dims(c_skip, x.dim()) * x + append_dims(c_out, x.dim()) * out

    # ------------------------------------------------------------------ training
    def training_sigmas(self, n: int, *, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu") -> torch.Tensor:
        """``(n,)`` noise levels ``exp(N(loc, scale^2))`` clipped to ``[train_sigma_min, train_sigma_max]``."""
        z = torch.randn(n, generator=generator, device=device)
        return (z * self.train_scale + self.train_loc).exp().clamp(self.train_sigma_min, self.train_sigma_max)

    def loss(self, net: Network, x0: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample denoising loss ``(B,)``: mean squared error of ``F`` against its unit-variance target.

        Args:
            net: the network closed over the conditioning of each sample.
            x0: clean samples ``(B, ...)`` (frames ``(B, C, H, W)``; offset noise is per channel).
            generator: source of ``sigma``, the noise and the offset noise (``None``: global RNG).
        """
        b = x0.shape[0]
        sigma = self.training_sigmas(b, generator=generator, device=x0.device).to(x0.dtype)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x = x0 + append_dims(sigma, x0.dim()) * noise
        if self.sigma_offset_noise > 0:
            shape = x0.shape[:2] + (1,) * (x0.dim() - 2)
            x = x + self.sigma_offset_noise * torch.randn(shape, generator=generator, device=x0.device,
                                                          dtype=x0.dtype)
        c_skip, c_out, c_in, c_noise = self.conditioners(sigma)
        out = net(x * append_dims(c_in, x.dim()), c_noise)
        target = (x0 - append_dims(c_skip, x.dim()) * x) / append_dims(c_out, x.dim())
        return (out - target).pow(2).flatten(1).mean(1)

    # ------------------------------------------------------------------ sampling
    def sigmas(self, steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The sampling schedule ``(steps + 1,)`` (:func:`karras_sigmas` with this object's settings)."""
        return karras_sigmas(steps, self.sigma_min, self.sigma_max, self.rho, device)

    @torch.no_grad()
    def sample(
        self,
        net: Network,
        shape: tuple[int, ...],
        *,
        steps: int = 3,
        noise: torch.Generator | NoiseSource | None = None,
        order: Literal[1, 2] = 1,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Integrate the probability-flow ODE from ``sigma_max`` to 0.

        Args:
            net: the conditioned network (one batched call per step; Heun adds one per step but the last).
            shape: ``(B, ...)`` of the sample.
            steps: number of noise levels (denoiser evaluations with Euler).
            noise: generator or :data:`NoiseSource` (only draw 0, the initial noise, is used).
            order: 1 = Euler (DIAMOND's default), 2 = Heun.
            device: device of the sample.
            dtype: dtype of the sample.
        """
        if order not in (1, 2):
            raise ConfigError(f"EDM sampler order must be 1 (Euler) or 2 (Heun), got {order!r}")
        sigmas = self.sigmas(steps, device).tolist()
        x = make_noise(noise, shape, device, dtype)(0).to(dtype) * sigmas[0]
        for sigma, nxt in zip(sigmas[:-1], sigmas[1:]):
            denoised = self.denoise(net, x, sigma)
            d = (x - denoised) / sigma
            if order == 1 or nxt == 0:
                x = x + d * (nxt - sigma)
            else:
                x2 = x + d * (nxt - sigma)
                d2 = (x2 - self.denoise(net, x2, nxt)) / nxt
                x = x + (d + d2) / 2 * (nxt - sigma)
        return x


# ---------------------------------------------------------------------------------------------- DDPM
class DDPM:
    """DDPM training (``eps``-prediction) with ancestral and DDIM samplers (see the module docstring).

    Args:
        timesteps: ``T``, number of diffusion steps.
        schedule: ``"linear"`` (``beta`` from ``beta_start`` to ``beta_end``) or ``"cosine"``.
        beta_start: first ``beta`` of the linear schedule.
        beta_end: last ``beta`` of the linear schedule.
        clip_sample: clamp the predicted ``x0`` into ``[-clip, clip]`` while sampling (``None``: never).
        cosine_s: offset ``s`` of the cosine schedule.
    """

    def __init__(
        self,
        timesteps: int = 1000,
        schedule: Literal["linear", "cosine"] = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        clip_sample: float | None = 1.0,
        cosine_s: float = 8e-3,
    ) -> None:
        if timesteps < 1:
            raise ConfigError(f"DDPM timesteps must be >= 1, got {timesteps}")
        if schedule == "linear":
            if not 0 < beta_start <= beta_end < 1:
                raise ConfigError(f"DDPM linear schedule needs 0 < beta_start <= beta_end < 1, got "
                                  f"{beta_start}, {beta_end}")
            betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        elif schedule == "cosine":
            t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
            f = torch.cos((t + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        else:
            raise ConfigError(f"DDPM schedule must be 'linear' or 'cosine', got {schedule!r}")
        if clip_sample is not None and not clip_sample > 0:
            raise ConfigError(f"DDPM clip_sample must be > 0 or None, got {clip_sample!r}")
        self.timesteps, self.schedule, self.clip_sample = int(timesteps), schedule, clip_sample
        self.betas = betas
        self.alphas = 1 - betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise level ``sqrt((1 - abar_t) / abar_t)`` of the equivalent variance-exploding process."""
        abar = self.alpha_bars.to(t.device)[t]
        return ((1 - abar) / abar).sqrt()

    def c_noise(self, t: torch.Tensor) -> torch.Tensor:
        """Network noise input ``ln(sigma_t) / 4`` ``(B,)`` float32 for integer timesteps ``t`` ``(B,)``."""
        return (self.sigma(t).log() / 4).float()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for timesteps ``t`` ``(B,)``."""
        abar = append_dims(self.alpha_bars.to(x0.device)[t].to(x0.dtype), x0.dim())
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def loss(self, net: Network, x0: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample ``eps``-prediction MSE ``(B,)`` at uniformly drawn timesteps."""
        t = torch.randint(0, self.timesteps, (x0.shape[0],), generator=generator, device=x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        out = net(self.q_sample(x0, t, noise), self.c_noise(t).to(x0.dtype))
        return (out - noise).pow(2).flatten(1).mean(1)

    def _eps_x0(self, net: Network, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        eps = net(x, self.c_noise(tt).to(x.dtype))
        abar = float(self.alpha_bars[t])
        x0 = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        if self.clip_sample is not None:
            x0 = x0.clamp(-self.clip_sample, self.clip_sample)
            eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
        return eps, x0

    def ddim_timesteps(self, steps: int) -> list[int]:
        """``steps`` timesteps evenly spaced from ``T - 1`` down to 0 (duplicates removed)."""
        if steps < 1:
            raise ConfigError(f"sampling steps must be >= 1, got {steps}")
        ts = torch.linspace(self.timesteps - 1, 0, min(steps, self.timesteps), dtype=torch.float64).round().long()
        return list(dict.fromkeys(ts.tolist()))

    @torch.no_grad()
    def sample(
        self,
        net: Network,
        shape: tuple[int, ...],
        *,
        steps: int = 10,
        noise: torch.Generator | NoiseSource | None = None,
        eta: float = 0.0,
        sampler: Literal["ddim", "ancestral"] = "ddim",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw samples ``shape`` with DDIM (``steps`` evaluations) or ancestral sampling (``T``).

        Args:
            net: the conditioned ``eps`` network (one batched call per step).
            shape: ``(B, ...)``.
            steps: DDIM timesteps (ignored by ``"ancestral"``, which takes all ``T``).
            noise: generator or :data:`NoiseSource`: draw 0 is ``x_T``, draw ``i`` the noise of step ``i``.
            eta: DDIM stochasticity (0: deterministic given ``x_T``; 1 with all ``T`` steps: DDPM).
            sampler: ``"ddim"`` or ``"ancestral"``.
            device: device of the sample.
            dtype: dtype of the sample.
        """
        draw = make_noise(noise, shape, device, dtype)
        x = draw(0).to(dtype)
        if sampler == "ancestral":
            for i, t in enumerate(range(self.timesteps - 1, -1, -1), start=1):
                _, x0 = self._eps_x0(net, x, t)
                abar, abar_prev = float(self.alpha_bars[t]), float(self.alpha_bars[t - 1]) if t > 0 else 1.0
                beta = float(self.betas[t])
                mean = (math.sqrt(abar_prev) * beta / (1 - abar)) * x0 + (
                    math.sqrt(float(self.alphas[t])) * (1 - abar_prev) / (1 - abar)) * x
                if t > 0:
                    var = beta * (1 - abar_prev) / (1 - abar)
                    x = mean + math.sqrt(var) * draw(i).to(dtype)
                else:
                    x = mean
            return x
        if sampler != "ddim":
            raise ConfigError(f"DDPM sampler must be 'ddim' or 'ancestral', got {sampler!r}")
        if eta < 0:
            raise ConfigError(f"DDIM eta must be >= 0, got {eta}")
        ts = self.ddim_timesteps(steps)
        for i, t in enumerate(ts, start=1):
            eps, x0 = self._eps_x0(net, x, t)
            abar = float(self.alpha_bars[t])
            abar_prev = float(self.alpha_bars[ts[i]]) if i < len(ts) else 1.0
            sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) if abar_prev < 1 else 0.0
            x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * draw(i).to(dtype)
        return x


# ---------------------------------------------------------------------------------------------- conditioning
class FourierFeatures(nn.Module):
    """Random Fourier features of a scalar: ``[cos(2 pi w x), sin(2 pi w x)]`` with fixed ``w ~ N(0, 1)``.

    The frequencies are a buffer (saved in checkpoints).

    Args:
        dim: output size (even).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ConfigError(f"FourierFeatures needs an even dim >= 2, got {dim}")
        self.register_buffer("weight", torch.randn(1, dim // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` -> ``(B, dim)``."""
        f = 2 * math.pi * x.float().unsqueeze(1) @ self.weight
        return torch.cat([f.cos(), f.sin()], -1)


class NoiseActionEmbedding(nn.Module):
    """The conditioning vector of a frame denoiser: ``MLP(fourier(c_noise) + Linear(actions))``.

    Args:
        cond_dim: size of the conditioning vector.
        action_dim: size of the flattened action input (``L * A``: one vector per context frame).
    """

    def __init__(self, cond_dim: int, action_dim: int) -> None:
        super().__init__()
        self.noise = FourierFeatures(cond_dim)
        self.action = nn.Linear(action_dim, cond_dim) if action_dim > 0 else None
        self.mlp = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, c_noise: torch.Tensor, actions: torch.Tensor | None) -> torch.Tensor:
        """``c_noise`` ``(B,)``, ``actions`` ``(B, action_dim)`` -> ``(B, cond_dim)``."""
        emb = self.noise(c_noise)
        if self.action is not None and actions is not None:
            emb = emb + self.action(actions.float())
        return self.mlp(emb)
