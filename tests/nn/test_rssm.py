import pytest
import torch

from wmenv.nn import RSSM, kl_loss


def _seeded(classes: int) -> tuple[RSSM, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    rssm = RSSM(
        2,
        3,
        deter=8,
        stoch=2,
        classes=classes,
        hidden=8,
        unimix=0.01 if classes else 0.0,
        learned_initial=False,
    )
    g = torch.Generator().manual_seed(1)
    embed = torch.randn(2, 3, 3, generator=g)
    action = torch.randn(2, 3, 2, generator=g)
    is_first = torch.tensor([[True, False, False], [True, False, True]])
    return rssm, embed, action, is_first


@pytest.mark.parametrize(
    ("classes", "row0", "row1", "kl_sum"),
    [
        (2, [0.043, -0.1127, 0.1719, 0.0164, -0.0137, 0.4834], [-0.0395, -0.3636, 0.003, -0.0248], 0.2809),
        (
            0,
            [-0.1893, 0.0005, -0.2527, -0.0652, -0.0986, 0.0344],
            [-0.0729, -0.2229, -0.0509, -0.0204],
            3.0425,
        ),
    ],
)
def test_golden_values(classes: int, row0: list, row1: list, kl_sum: float) -> None:
    """Fixed weights (seeded init) and inputs give fixed features: catches silent changes of the maths."""
    rssm, embed, action, is_first = _seeded(classes)
    with torch.no_grad():
        post, prior = rssm.observe(embed, action, is_first, sample=False)
        feat = rssm.features(post)
        torch.testing.assert_close(feat[0, -1, :6], torch.tensor(row0), atol=1e-4, rtol=0)
        torch.testing.assert_close(feat[1, -1, :4], torch.tensor(row1), atol=1e-4, rtol=0)
        assert float(rssm.kl(post, prior).sum()) == pytest.approx(kl_sum, abs=1e-3)


@pytest.mark.parametrize("classes", [4, 0])
def test_shapes_and_imagine_step(classes: int) -> None:
    rssm = RSSM(3, 5, deter=16, stoch=4, classes=classes, hidden=16)
    post, prior = rssm.observe(
        torch.randn(2, 6, 5), torch.randn(2, 6, 3), torch.zeros(2, 6, dtype=torch.bool)
    )
    stoch_shape = (2, 6, 4, 4) if classes else (2, 6, 4)
    assert post["deter"].shape == (2, 6, 16) and post["stoch"].shape == stoch_shape
    assert rssm.features(post).shape == (2, 6, rssm.feature_dim)
    assert rssm.feature_dim == 16 + (16 if classes else 4)
    nxt = rssm.imagine_step(post[:, -1], torch.randn(2, 3), generator=torch.Generator().manual_seed(0))
    assert nxt["deter"].shape == (2, 16) and nxt.batch_size == torch.Size([2])
    init = rssm.initial(5)
    assert init["deter"].shape == (5, 16)


def test_is_first_resets_state() -> None:
    """A sequence that restarts at t must match a fresh sequence started at t."""
    rssm, embed, action, _ = _seeded(2)
    reset = torch.tensor([[True, False, True]] * 2)
    with torch.no_grad():
        post, _ = rssm.observe(embed, action, reset, sample=False)
        fresh, _ = rssm.observe(embed[:, 2:], action[:, 2:], torch.ones(2, 1, dtype=torch.bool), sample=False)
    torch.testing.assert_close(post["deter"][:, 2], fresh["deter"][:, 0])


def test_sampling_uses_only_the_generator() -> None:
    rssm, embed, action, is_first = _seeded(2)
    torch.manual_seed(5)
    a, _ = rssm.observe(embed, action, is_first, generator=torch.Generator().manual_seed(9))
    torch.manual_seed(6)
    b, _ = rssm.observe(embed, action, is_first, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a["stoch"], b["stoch"])


@pytest.mark.parametrize("classes", [2, 0])
def test_kl_loss_free_bits_and_balance(classes: int) -> None:
    rssm, embed, action, is_first = _seeded(classes)
    post, prior = rssm.observe(embed, action, is_first)
    kl = rssm.kl(post, prior)
    assert (kl >= -1e-6).all()
    loss, metrics = kl_loss(rssm, post, prior, dyn_scale=0.5, rep_scale=0.1, free_bits=1e3)
    torch.testing.assert_close(loss, torch.full_like(loss, 0.6 * 1e3))  # all below the floor
    loss, _ = kl_loss(rssm, post, prior, dyn_scale=0.5, rep_scale=0.1, free_bits=0.0)
    torch.testing.assert_close(loss, 0.6 * kl)
    plain, _ = kl_loss(rssm, post, prior, dyn_scale=1.0, rep_scale=0.0, free_bits=0.0, balanced=False)
    torch.testing.assert_close(plain, kl)
    assert set(metrics) == {"kl"}


@pytest.mark.parametrize(
    ("dyn", "rep", "trained", "untouched"),
    [(1.0, 0.0, "img_out", "obs_out"), (0.0, 1.0, "obs_out", "img_out")],
)
def test_kl_balancing_routes_gradients(dyn: float, rep: float, trained: str, untouched: str) -> None:
    """One step (the posterior sample cannot reach a later prior): dyn trains the prior, rep the posterior."""
    rssm, embed, action, is_first = _seeded(2)
    post, prior = rssm.observe(embed[:, :1], action[:, :1], is_first[:, :1])
    loss, _ = kl_loss(rssm, post, prior, dyn_scale=dyn, rep_scale=rep, free_bits=0.0)
    loss.sum().backward()
    grad = getattr(rssm, untouched).net[-1].weight.grad
    assert grad is None or grad.abs().sum() == 0
    assert getattr(rssm, trained).net[-1].weight.grad.abs().sum() > 0
