"""wmenv.nn.diffusion: EDM preconditioning and samplers, DDPM schedules and DDIM, keyed noise.

The samplers are checked on a 1-D Gaussian ``N(MU, S^2)``, whose optimal denoiser is analytic:
``E[x0 | x0 + sigma n = x] = MU + S^2 / (S^2 + sigma^2) (x - MU)``. Sampling with that exact
denoiser must give back the target's mean and std (up to discretisation error and, for a finite
``sigma_max``, the known bias of starting from ``N(0, sigma_max^2)``).
"""

from __future__ import annotations

import math

import pytest
import torch

from wmenv.core.errors import ConfigError
from wmenv.nn.diffusion import (
    DDPM,
    EDM,
    FourierFeatures,
    NoiseActionEmbedding,
    karras_sigmas,
    keyed_normal,
    keyed_uniform,
)

MU, S = 0.3, 0.5
N = 8000


def exact_edm_net(edm: EDM, mu: float = MU, s: float = S):
    """The network ``F`` whose preconditioned output is the exact Gaussian denoiser (no offset noise)."""

    def net(x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        sigma = torch.exp(4 * c_noise.double()).float()[:, None]
        c_skip, c_out, c_in, _ = (c[:, None] for c in edm.conditioners(sigma[:, 0]))
        x = x_in / c_in
        denoised = mu + s**2 / (s**2 + sigma**2) * (x - mu)
        return (denoised - c_skip * x) / c_out

    return net


def exact_eps_net(mu: float = MU, s: float = S):
    """The exact ``eps`` predictor ``E[eps | x_t]`` for ``x0 ~ N(mu, s^2)`` (the timestep read from ``c_noise``)."""

    def net(x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        sigma = torch.exp(4 * c_noise.double())
        abar = (1 / (1 + sigma**2)).float()[:, None]
        return (1 - abar).sqrt() * (x - abar.sqrt() * mu) / (abar * s**2 + 1 - abar)

    return net


# ---------------------------------------------------------------------------------------------- EDM
def test_edm_conditioners_known_values():
    edm = EDM(sigma_data=0.5)
    sigma = torch.tensor([0.5, 1e-6, 100.0])
    c_skip, c_out, c_in, c_noise = edm.conditioners(sigma)
    assert c_skip[0].item() == pytest.approx(0.5)
    assert c_out[0].item() == pytest.approx(0.5 / math.sqrt(2))
    assert c_in[0].item() == pytest.approx(1 / (0.5 * math.sqrt(2)))
    assert c_noise[0].item() == pytest.approx(math.log(0.5) / 4)
    assert c_skip[1].item() == pytest.approx(1.0) and c_out[1].item() == pytest.approx(0.0, abs=1e-5)
    assert c_skip[2].item() == pytest.approx(0.0, abs=1e-4) and c_out[2].item() == pytest.approx(0.5, rel=1e-3)


def test_edm_preconditioning_gives_unit_variance_inputs_and_targets():
    """For data of std sigma_data, c_in x and the training target (x0 - c_skip x) / c_out have unit variance."""
    edm = EDM(sigma_data=0.5)
    g = torch.Generator().manual_seed(0)
    x0 = 0.5 * torch.randn(200_000, generator=g)
    for s in (0.01, 0.5, 3.0, 20.0):
        sigma = torch.full((1,), s)
        c_skip, c_out, c_in, _ = edm.conditioners(sigma)
        x = x0 + s * torch.randn(x0.shape, generator=g)
        assert (c_in * x).std().item() == pytest.approx(1.0, rel=0.02)
        assert ((x0 - c_skip * x) / c_out).std().item() == pytest.approx(1.0, rel=0.02)


def test_edm_denoise_with_exact_network_is_the_analytic_denoiser():
    edm = EDM(sigma_data=0.5)
    x = torch.linspace(-3, 3, 7)[:, None]
    for s in (0.01, 0.7, 5.0):
        got = edm.denoise(exact_edm_net(edm), x, s)
        want = MU + S**2 / (S**2 + s**2) * (x - MU)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_edm_training_sigmas_are_log_normal_and_clipped():
    edm = EDM(train_loc=-0.4, train_scale=1.2, train_sigma_min=2e-3, train_sigma_max=20.0)
    sig = edm.training_sigmas(50_000, generator=torch.Generator().manual_seed(1))
    assert sig.min() >= 2e-3 and sig.max() <= 20.0
    logs = sig.log()
    assert logs.median().item() == pytest.approx(-0.4, abs=0.03)
    inner = logs[(logs > -3) & (logs < 2)]  # away from the clips: the normal's spread
    assert logs.std().item() == pytest.approx(1.2, rel=0.05)
    assert inner.numel() > 0.9 * logs.numel()
    again = edm.training_sigmas(50_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(sig, again)


def test_edm_loss_is_lowest_at_the_exact_denoiser():
    edm = EDM(sigma_data=0.5)
    x0 = MU + S * torch.randn(N, 1, generator=torch.Generator().manual_seed(2))
    exact = exact_edm_net(edm)
    best = edm.loss(exact, x0, generator=torch.Generator().manual_seed(3)).mean()
    for delta in (0.2, -0.2):
        worse = edm.loss(lambda x, c, d=delta: exact(x, c) + d, x0, generator=torch.Generator().manual_seed(3)).mean()
        assert worse > best + 0.5 * delta**2


def test_karras_schedule():
    s = karras_sigmas(3, 2e-3, 5.0, 7.0)
    assert s.shape == (4,) and s[0].item() == pytest.approx(5.0) and s[2].item() == pytest.approx(2e-3)
    assert s[-1].item() == 0 and bool((s[:-1] > s[1:]).all())
    torch.testing.assert_close(karras_sigmas(1, 2e-3, 5.0), torch.tensor([5.0, 0.0], dtype=torch.float64))
    with pytest.raises(ConfigError):
        karras_sigmas(0, 2e-3, 5.0)


@pytest.mark.parametrize(("order", "steps", "std_tol"), [(1, 50, 0.08), (2, 50, 0.02)])
def test_edm_sampler_recovers_the_gaussian(order, steps, std_tol):
    """Euler (first order) and Heun (second order) with the exact denoiser, sigma_max = 80 (EDM's)."""
    edm = EDM(sigma_data=0.5, sigma_max=80.0)
    x = edm.sample(exact_edm_net(edm), (N, 1), steps=steps, order=order, noise=torch.Generator().manual_seed(4))
    assert x.mean().item() == pytest.approx(MU, abs=0.03)
    assert x.std().item() == pytest.approx(S, rel=std_tol)


def test_edm_sampler_with_diamond_sigma_max_matches_the_truncated_flow():
    """From sigma_max = 5 (DIAMOND) the exact probability flow maps x ~ N(0, 25) to
    MU + (x - MU) S / sqrt(S^2 + 25): a known answer for the whole pipeline."""
    edm = EDM(sigma_data=0.5, sigma_max=5.0)
    g = torch.Generator().manual_seed(5)
    x = edm.sample(exact_edm_net(edm), (N, 1), steps=60, order=2, noise=g)
    k = S / math.sqrt(S**2 + 25.0)
    assert x.mean().item() == pytest.approx(MU * (1 - k), abs=0.02)
    assert x.std().item() == pytest.approx(5.0 * k, rel=0.03)


def test_edm_euler_three_steps_is_deterministic_given_the_noise():
    edm = EDM()
    net = exact_edm_net(edm)
    a = edm.sample(net, (16, 1), steps=3, noise=torch.Generator().manual_seed(7))
    b = edm.sample(net, (16, 1), steps=3, noise=torch.Generator().manual_seed(7))
    c = edm.sample(net, (16, 1), steps=3, noise=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    calls = []
    edm.sample(lambda x, cn: calls.append(x.shape) or net(x, cn), (16, 1), steps=3)
    assert calls == [(16, 1)] * 3  # one batched network call per denoising step
    with pytest.raises(ConfigError):
        edm.sample(net, (2, 1), order=3)


# ---------------------------------------------------------------------------------------------- DDPM
def test_ddpm_linear_schedule_properties():
    d = DDPM(1000, "linear", 1e-4, 0.02)
    assert d.betas[0].item() == pytest.approx(1e-4) and d.betas[-1].item() == pytest.approx(0.02)
    assert bool((d.betas[1:] > d.betas[:-1]).all())
    assert bool((d.alpha_bars[1:] < d.alpha_bars[:-1]).all())
    assert 0 < d.alpha_bars[-1].item() < 1e-4 and d.alpha_bars[0].item() == pytest.approx(1 - 1e-4)
    sig = d.sigma(torch.arange(1000))
    assert bool((sig[1:] > sig[:-1]).all())


def test_ddpm_cosine_schedule_properties():
    d = DDPM(1000, "cosine")
    assert bool((d.betas <= 0.999).all()) and bool((d.betas > 0).all())
    assert bool((d.alpha_bars[1:] < d.alpha_bars[:-1]).all())
    f = lambda t: math.cos((t / 1000 + 8e-3) / (1 + 8e-3) * math.pi / 2) ** 2  # noqa: E731
    assert d.alpha_bars[499].item() == pytest.approx(f(500) / f(0), rel=1e-6)
    assert d.alpha_bars[0].item() > 0.9999 and d.alpha_bars[-1].item() < 1e-6
    with pytest.raises(ConfigError):
        DDPM(10, "quadratic")


def test_ddpm_forward_process_is_variance_preserving():
    d = DDPM(1000, "linear")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(100_000, generator=g)
    for t in (0, 300, 999):
        xt = d.q_sample(x0, torch.full((x0.shape[0],), t), torch.randn(x0.shape, generator=g))
        assert xt.var().item() == pytest.approx(1.0, rel=0.02)


def test_ddpm_loss_is_lower_at_the_exact_eps():
    d = DDPM(1000, "linear", clip_sample=None)
    x0 = MU + S * torch.randn(N, 1, generator=torch.Generator().manual_seed(1))
    exact = d.loss(exact_eps_net(), x0, generator=torch.Generator().manual_seed(2)).mean()
    zero = d.loss(lambda x, c: torch.zeros_like(x), x0, generator=torch.Generator().manual_seed(2)).mean()
    assert exact < 0.5 * zero


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_ancestral_sampling_recovers_the_gaussian(schedule):
    d = DDPM(1000, schedule, clip_sample=None)
    x = d.sample(exact_eps_net(), (4000, 1), sampler="ancestral", noise=torch.Generator().manual_seed(3))
    assert x.mean().item() == pytest.approx(MU, abs=0.03)
    assert x.std().item() == pytest.approx(S, rel=0.04)


def test_ddim_many_steps_recovers_the_gaussian_and_few_steps_are_one_call_each():
    d = DDPM(1000, "cosine", clip_sample=None)
    x = d.sample(exact_eps_net(), (N, 1), steps=200, noise=torch.Generator().manual_seed(4))
    assert x.mean().item() == pytest.approx(MU, abs=0.03)
    assert x.std().item() == pytest.approx(S, rel=0.04)
    calls = []
    d.sample(lambda x, c: calls.append(x.shape) or exact_eps_net()(x, c), (5, 1), steps=3)
    assert calls == [(5, 1)] * 3
    assert d.ddim_timesteps(3) == [999, 500, 0] and d.ddim_timesteps(1) == [999]


def test_ddim_determinism():
    """Same generator -> same sample (any eta); eta = 0 -> the sample is a function of x_T alone."""
    d = DDPM(1000, "linear")
    net = exact_eps_net()
    for eta in (0.0, 1.0):
        a = d.sample(net, (64, 1), steps=10, eta=eta, noise=torch.Generator().manual_seed(5))
        b = d.sample(net, (64, 1), steps=10, eta=eta, noise=torch.Generator().manual_seed(5))
        assert torch.equal(a, b)
    x_t = torch.randn(64, 1, generator=torch.Generator().manual_seed(6))

    def fixed_start(seed: int):
        g = torch.Generator().manual_seed(seed)
        return lambda i: x_t if i == 0 else torch.randn(64, 1, generator=g)

    det = [d.sample(net, (64, 1), steps=10, eta=0.0, noise=fixed_start(s)) for s in (1, 2)]
    assert torch.equal(det[0], det[1])
    sto = [d.sample(net, (64, 1), steps=10, eta=1.0, noise=fixed_start(s)) for s in (1, 2)]
    assert not torch.equal(sto[0], sto[1])
    with pytest.raises(ConfigError):
        d.sample(net, (2, 1), eta=-1.0)


def test_ddpm_clip_sample_bounds_the_x0_prediction():
    d = DDPM(1000, "linear", clip_sample=1.0)
    x = d.sample(lambda x, c: -10 * torch.ones_like(x), (8, 3), steps=1, noise=torch.Generator().manual_seed(0))
    assert float(x.abs().max()) <= 1.0 + 1e-5


# ---------------------------------------------------------------------------------------------- keyed noise
def test_keyed_noise_depends_on_the_key_only_not_on_the_batch():
    key = torch.tensor([3, -7, 2**62, 11], dtype=torch.int64)
    counter = torch.tensor([0, 5, 1, 0], dtype=torch.int64)
    full = keyed_normal(key, counter, (4, 5))
    for i in range(4):
        assert torch.equal(keyed_normal(key[i:i + 1], counter[i:i + 1], (4, 5))[0], full[i])
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.equal(keyed_normal(key[perm], counter[perm], (4, 5)), full[perm])
    assert not torch.equal(keyed_normal(key, counter + 1, (4, 5)), full)
    assert not torch.equal(keyed_normal(key, counter, (4, 5), stream=1), full)


def test_keyed_noise_statistics():
    key = torch.arange(64, dtype=torch.int64)
    z = keyed_normal(key, torch.zeros(64, dtype=torch.int64), (2000,))
    assert z.mean().item() == pytest.approx(0.0, abs=0.01)
    assert z.std().item() == pytest.approx(1.0, rel=0.01)
    assert abs(torch.corrcoef(torch.stack([z[:, :-1].reshape(-1), z[:, 1:].reshape(-1)]))[0, 1].item()) < 0.01
    assert abs(torch.corrcoef(torch.stack([z[:-1].reshape(-1), z[1:].reshape(-1)]))[0, 1].item()) < 0.01
    u = keyed_uniform(key, torch.zeros(64, dtype=torch.int64), (2000,))
    assert float(u.min()) > 0 and float(u.max()) < 1 and u.mean().item() == pytest.approx(0.5, abs=0.005)


def test_conditioning_embeddings():
    assert FourierFeatures(8)(torch.randn(3)).shape == (3, 8)
    emb = NoiseActionEmbedding(16, 6)
    assert emb(torch.randn(3), torch.randn(3, 6)).shape == (3, 16)
    with pytest.raises(ConfigError):
        FourierFeatures(7)
