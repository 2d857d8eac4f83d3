import gymnasium as gym
import pytest
import torch
from tensordict import TensorDict

from tests.models.ha.conftest import BOX, DISCRETE, IMAGE, VECTOR, fit, make_batch, micro, set_fixed_weights
from wmenv.core.errors import ConfigError
from wmenv.models.ha import MDNRNN, MDNRNNConfig, VAEConfig, WorldModelsAgent
from wmenv.nn.mixture import GaussianMixture, MixtureDensityHead


def _agent(obs_space: gym.Space, act_space: gym.Space, stage: str = "vae", **changes) -> WorldModelsAgent:
    agent = WorldModelsAgent(micro(**changes), obs_space, act_space)
    if stage == "mdnrnn":
        agent.mark_trained("vae")
        agent.set_stage("mdnrnn")
    return agent


@pytest.mark.parametrize("obs_space", [VECTOR, IMAGE], ids=["vector", "image"])
def test_vae_loss_decreases(obs_space: gym.Space) -> None:
    agent = _agent(obs_space, DISCRETE, vae=VAEConfig(conv_depth=4, mlp_units=16, mlp_layers=1, lr=3e-3))
    batch = make_batch(obs_space, DISCRETE, b=2, t=4)
    if obs_space is IMAGE:  # smooth images (one colour gradient per frame): noise cannot be compressed
        ramp = torch.linspace(0, 1, 64)[None, :, None, None] * torch.rand(8, 1, 1, 3) * 255
        batch["observation"] = ramp.expand(8, 64, 64, 3).round().to(torch.uint8).reshape(2, 4, 64, 64, 3)
    with torch.no_grad():
        before = float(agent.loss(batch)["loss_recon"])
    fit(agent, batch, 40)
    out = agent.loss(batch)
    assert float(out["loss_recon"].detach()) < 0.7 * before
    assert {"loss_recon", "loss_kl", "kl_raw"} == set(out.keys()) and not out["kl_raw"].requires_grad
    assert agent.trained_stages == ("vae",)


def test_mdnrnn_loss_decreases() -> None:
    rnn = MDNRNNConfig(hidden=16, n_mixtures=2, head_units=16, lr=1e-2, sample_z_targets=False)
    agent = _agent(VECTOR, BOX, "mdnrnn", rnn=rnn)
    batch = make_batch(VECTOR, BOX, b=4, t=8)
    with torch.no_grad():
        before = agent.loss(batch)
    vae_before = [p.clone() for p in agent.vae.parameters()]
    fit(agent, batch, 60)
    with torch.no_grad():
        after = agent.loss(batch)
    keys = ("loss_mdn", "loss_reward", "loss_done")
    assert sum(float(after[k]) for k in keys) < 0.7 * sum(float(before[k]) for k in keys)
    assert all(torch.equal(a, b) for a, b in zip(vae_before, agent.vae.parameters()))  # V frozen in stage M
    assert {"done_accuracy", "reward_mae", "z_mse"} <= set(after.keys())


@pytest.mark.parametrize(
    ("obs_space", "act_space", "stage"),
    [(VECTOR, DISCRETE, "vae"), (IMAGE, BOX, "vae"), (VECTOR, DISCRETE, "mdnrnn"), (IMAGE, BOX, "mdnrnn")],
)
def test_every_parameter_of_the_stage_gets_a_gradient(obs_space: gym.Space, act_space: gym.Space, stage: str) -> None:
    agent = _agent(obs_space, act_space, stage)
    out = agent.loss(make_batch(obs_space, act_space, b=2, t=4))
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    part = agent.vae if stage == "vae" else agent.mdnrnn
    other = agent.mdnrnn if stage == "vae" else agent.vae
    groups = agent.optim_groups()
    assert list(groups) == [stage] and len(groups[stage]["params"]) == len(list(part.parameters()))
    missing = [n for n, p in part.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert all(p.grad is None for p in other.parameters())
    assert all(not p.requires_grad for p in agent.controller.parameters())


def test_mdnrnn_golden_values() -> None:
    m = MDNRNN(3, DISCRETE, MDNRNNConfig(hidden=4, n_mixtures=2, head_units=4))
    set_fixed_weights(m)
    z = torch.linspace(-1, 1, 2 * 4 * 3).reshape(2, 4, 3)
    action = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 1]])
    batch = TensorDict(
        {"z": z, "action": action, "reward": torch.tensor([[0.0, 1.0, 0.5, -1.0], [0.0, 0.2, 0.3, 0.4]]),
         "terminated": torch.tensor([[False, False, False, True], [False] * 4]),
         "is_first": torch.tensor([[True, False, False, False]] * 2)},
        [2, 4],
    )
    out = m.loss(batch)
    expected = {"loss_mdn": 1.275942, "loss_reward": 1.031354, "loss_done": 0.751781, "done_accuracy": 0.166667,
                "reward_mae": 0.930825, "z_mse": 0.475316}
    for k, v in expected.items():
        assert float(out[k].detach()) == pytest.approx(v, abs=2e-5), k
    with torch.no_grad():
        _, (h, c) = m.rollout(z[:, :-1], action[:, 1:])
        mix = m.next_latent(h, z[:, -1])
        sample = mix.sample(torch.Generator().manual_seed(0), 1.0)
    torch.testing.assert_close(h, torch.tensor([[0.082944, 0.225476, 0.239616, -0.003728],
                                                [0.034293, 0.074656, 0.209947, 0.099914]]), atol=2e-5, rtol=0)
    torch.testing.assert_close(mix.expected(), torch.tensor([[0.336313, -0.517685, 0.244725],
                                                             [0.343980, -0.536383, 0.307375]]), atol=2e-5, rtol=0)
    torch.testing.assert_close(sample, torch.tensor([[1.615759, -1.292709, 0.379326],
                                                     [-0.263943, -0.889651, 2.149044]]), atol=2e-5, rtol=0)


def test_mixture_log_prob_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(3)
    logits, mean, log_std = (torch.randn(5, 3, 4, generator=g) for _ in range(3))
    x = torch.randn(5, 3, generator=g)
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits), torch.distributions.Normal(mean, log_std.exp())
    ).log_prob(x)
    torch.testing.assert_close(GaussianMixture(logits, mean, log_std).log_prob(x), ref)


def test_mixture_sampling_generator_and_temperature() -> None:
    head = MixtureDensityHead(6, 2, 3)
    mix = head(torch.randn(2000, 6))
    a = mix.sample(torch.Generator().manual_seed(1), 1.0)
    b = mix.sample(torch.Generator().manual_seed(1), 1.0)
    assert torch.equal(a, b) and a.shape == (2000, 2)
    state = torch.get_rng_state()
    mix.sample(torch.Generator().manual_seed(2), 1.5)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is never touched
    one = GaussianMixture(torch.zeros(20000, 1, 1), torch.zeros(20000, 1, 1), torch.zeros(20000, 1, 1))
    hot = one.sample(torch.Generator().manual_seed(0), 4.0)
    assert float(hot.std()) == pytest.approx(2.0, rel=0.05)  # std * sqrt(tau)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        one.sample(None, 0.0)


def test_controller_flat_params_and_population() -> None:
    agent = _agent(VECTOR, BOX)
    c = agent.controller
    flat = torch.randn(c.num_params)
    c.set_flat(flat)
    assert torch.equal(c.get_flat(), flat)
    with pytest.raises(ValueError, match=f"expected {c.num_params} controller parameters"):
        c.set_flat(torch.zeros(3))
    params = torch.randn(3, c.num_params)
    latent = torch.randn(3, 5, c.in_dim)
    pop = c.population_act(params, latent)
    assert pop.shape == (3, 5, 3)
    for i in range(3):
        c.set_flat(params[i])
        torch.testing.assert_close(c(latent[i]), pop[i])
    low, high = torch.as_tensor(BOX.low), torch.as_tensor(BOX.high)
    assert bool(((pop >= low) & (pop <= high)).all())
    disc = _agent(VECTOR, DISCRETE).controller
    assert disc.population_act(torch.randn(2, disc.num_params), torch.randn(2, 4, disc.in_dim)).dtype == torch.int64


def test_controller_stage_has_no_gradient_loss() -> None:
    agent = _agent(VECTOR, DISCRETE, "mdnrnn")
    agent.mark_trained("mdnrnn")
    agent.set_stage("controller")
    with pytest.raises(ConfigError, match="trained by CMA-ES"):
        agent.loss(make_batch(VECTOR, DISCRETE))


def test_predict_delta_offsets_the_mixture_by_z() -> None:
    m = MDNRNN(3, DISCRETE, MDNRNNConfig(hidden=4, n_mixtures=2, head_units=4, predict_delta=True))
    set_fixed_weights(m)
    h, z = torch.randn(5, 4), torch.randn(5, 3)
    plain = m.mdn(h)
    mix = m.next_latent(h, z)
    torch.testing.assert_close(mix.mean, plain.mean + z[..., None])
    torch.testing.assert_close(mix.expected(), plain.expected() + z)


def test_dream_rewards_stay_in_the_trained_range() -> None:
    m = MDNRNN(3, DISCRETE, MDNRNNConfig(hidden=4, n_mixtures=2, head_units=4))
    assert torch.equal(m.clip_reward(torch.tensor([5.0])), torch.tensor([5.0]))  # untrained: unchanged
    batch = make_batch(VECTOR, DISCRETE, b=2, t=6)
    batch["z"] = torch.randn(2, 6, 3)
    m.train().loss(batch)
    seen = batch["reward"][:, 1:][~batch["is_first"][:, 1:]]
    assert float(m.reward_low) == float(seen.min()) and float(m.reward_high) == float(seen.max())
    clipped = m.clip_reward(torch.tensor([-100.0, 100.0]))
    assert clipped.tolist() == [float(seen.min()), float(seen.max())]
