import math

import pytest
import torch

from wmenv.nn import BoundedNormal, OneHotDist, TanhNormal, TwoHotSymlog, bernoulli_loss, symexp, symlog


def test_symlog_symexp_inverse() -> None:
    x = torch.tensor([-1e4, -3.0, -0.5, 0.0, 0.5, 3.0, 1e4])
    torch.testing.assert_close(symexp(symlog(x)), x)
    assert symlog(torch.tensor(1e4)) < 10


@pytest.mark.parametrize("target", [-300.0, -1.0, 0.0, 0.3, 1.0, 57.0])
def test_twohot_fit_recovers_target(target: float) -> None:
    logits = torch.zeros(255, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        (-TwoHotSymlog(logits).log_prob(torch.tensor(target))).backward()
        opt.step()
    mean = TwoHotSymlog(logits.detach()).mean()
    assert abs(float(mean) - target) < 0.02 * max(1.0, abs(target))


def test_twohot_log_prob_puts_mass_on_neighbouring_bins() -> None:
    logits = torch.full((5,), -1e9)
    logits[2] = 0.0  # bins -2, -1, 0, 1, 2 in symlog space; all mass on symlog value 0
    dist = TwoHotSymlog(logits, low=-2, high=2)
    assert float(dist.mean()) == 0.0
    assert float(dist.log_prob(torch.tensor(0.0))) == 0.0
    assert float(dist.log_prob(torch.tensor(math.e - 1))) < -1e8  # symlog = 1, the next bin


def test_onehot_unimix_sample_and_straight_through() -> None:
    logits = torch.tensor([[10.0, -10.0, -10.0, -10.0]], requires_grad=True)
    dist = OneHotDist(logits, unimix=0.01)
    assert float(dist.probs.detach().min()) == pytest.approx(0.01 / 4, rel=1e-3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    draws = [dist.sample(torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(d.detach().sum() == 1 for d in draws)
    assert torch.equal(dist.sample(g1), dist.sample(g2))
    (dist.sample(g1) * torch.arange(4.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert torch.equal(dist.mode().detach(), torch.tensor([[1.0, 0, 0, 0]]))
    assert float(dist.entropy().detach()) > 0


def test_bounded_and_tanh_normal_stay_in_range() -> None:
    raw = torch.randn(64, 4) * 5
    g = torch.Generator().manual_seed(0)
    for dist in (BoundedNormal(raw), TanhNormal(raw)):
        x = dist.rsample(g)
        assert x.shape == (64, 2) and x.abs().max() <= 1
        assert torch.isfinite(dist.log_prob(x)).all() and dist.entropy().shape == (64,)
        assert dist.mode().abs().max() <= 1
    bn = BoundedNormal(raw)
    assert bn.std.min() >= 0.1 and bn.std.max() <= 1.0


def test_bernoulli_loss_weights_classes() -> None:
    logits = torch.zeros(2)
    target = torch.tensor([1.0, 0.0])
    plain = bernoulli_loss(logits, target)
    weighted = bernoulli_loss(logits, target, negative_weight=5.0)
    torch.testing.assert_close(plain, torch.full((2,), math.log(2)))
    torch.testing.assert_close(weighted, torch.tensor([math.log(2), 5 * math.log(2)]))
