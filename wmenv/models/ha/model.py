"""V, M and C of "World Models" (Ha & Schmidhuber, 2018): VAEs, the MDN-RNN and the linear controller.

Batch format (TensorDict ``[B, T]`` from the replay, see :mod:`wmenv.train.replay`):

``observation``  ``(B, T, D)`` float32 vectors or ``(B, T, 64, 64, 3)`` uint8 images
``action``       action taken at ``t - 1`` that led to observation ``t`` (zeros at the first row):
                 ``(B, T)`` int64 for ``Discrete``, ``(B, T, A)`` float32 for ``Box``
``reward``       ``(B, T)`` float32 received on arriving at ``t``
``terminated``   ``(B, T)`` bool, observation ``t`` is terminal
``is_first``     ``(B, T)`` bool, first row of an episode
``z``            ``(B, T, Z)`` latents (only :meth:`MDNRNN.loss` reads it; the agent adds it)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.models.ha.config import MDNRNNConfig, VAEConfig
from wmenv.models.ha.loss import done_loss, kl_with_tolerance, masked_mean, transition_view
from wmenv.nn.codecs import observation_kind as _observation_kind
from wmenv.nn.conv import ConvDecoder, ConvEncoder
from wmenv.nn.mixture import GaussianMixture, MixtureDensityHead
from wmenv.nn.mlp import MLP

__all__ = ["IMAGE_SHAPE", "observation_kind", "ActionCodec", "ConvVAE", "MLPVAE", "build_vae", "MDNRNN",
           "LinearController"]

IMAGE_SHAPE = (64, 64, 3)
_LOG_VAR_RANGE = (-12.0, 6.0)


def observation_kind(space: gym.Space) -> str:
    """``"image"`` (64x64x3 uint8 ``Box``) or ``"vector"`` (1-D float ``Box``); see :func:`wmenv.nn.codecs.observation_kind`."""
    return _observation_kind(space, who="World Models")


class ActionCodec(nn.Module):
    """Env actions <-> network vectors: one-hot for ``Discrete``, ``[-1, 1]`` for bounded ``Box`` dims.

    Args:
        space: the env's action space (``Discrete(n)`` or a 1-D ``Box``).
    """

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        if isinstance(space, gym.spaces.Discrete) and int(space.start) == 0:
            self.discrete, self.dim = True, int(space.n)
            low = high = torch.zeros(1)
            bounded = torch.zeros(1, dtype=torch.bool)
        elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            self.discrete, self.dim = False, int(space.shape[0])
            low = torch.as_tensor(space.low, dtype=torch.float32)
            high = torch.as_tensor(space.high, dtype=torch.float32)
            bounded = torch.isfinite(low) & torch.isfinite(high)
            low, high = torch.where(bounded, low, -1.0), torch.where(bounded, high, 1.0)
        else:
            raise UnsupportedSpaceError(
                f"World Models cannot act in action space {space}; expected Discrete(n) or a 1-D Box"
            )
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)
        self.register_buffer("bounded", bounded, persistent=False)

    def encode(self, action: torch.Tensor) -> torch.Tensor:
        """Env actions ``(...)`` int or ``(..., A)`` float -> vectors ``(..., dim)``."""
        if self.discrete:
            return F.one_hot(action.long(), self.dim).float()
        x = action.float()
        return torch.where(self.bounded, 2 * (x - self.low) / (self.high - self.low) - 1, x)

    def from_output(self, y: torch.Tensor) -> torch.Tensor:
        """Controller outputs ``(..., dim)`` -> env actions (argmax, or tanh squashed into the bounds)."""
        if self.discrete:
            return y.argmax(-1)
        squashed = self.low + (torch.tanh(y) + 1) / 2 * (self.high - self.low)
        return torch.where(self.bounded, squashed, y)


class _VAE(nn.Module):
    """Shared parts of the VAEs: posterior sampling and the free-nats ELBO."""

    z_dim: int
    config: VAEConfig

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(
        self, mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reparameterised ``z`` ``(..., Z)`` from the posterior."""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * log_var) * eps

    def _recon(self, z: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, batch: TensorDictBase) -> TensorDict:
        """ELBO on every frame of ``batch`` ``[B, T]``: reconstruction + free-nats KL.

        Returns:
            ``loss_recon``, ``loss_kl`` (scalars) and the detached metric ``kl_raw``.
        """
        obs = batch["observation"]
        flat = obs.reshape(-1, *obs.shape[len(batch.batch_size):])
        mean, log_var = self.encode(flat)
        z = self.sample(mean, log_var)
        kl, raw = kl_with_tolerance(mean, log_var, self.config.kl_tolerance)
        return TensorDict(
            {"loss_recon": self._recon(z, flat), "loss_kl": self.config.kl_weight * kl, "kl_raw": raw},
            batch_size=[],
        )


class ConvVAE(_VAE):
    """The paper's ConvVAE: 64x64 RGB -> four stride-2 convs -> ``z``; mirror transposed convs back.

    Args:
        z_dim: latent size ``Z``.
        config: :class:`VAEConfig`.
    """

    def __init__(self, z_dim: int, config: VAEConfig) -> None:
        super().__init__()
        self.z_dim, self.config = z_dim, config
        self.encoder = ConvEncoder(3, config.conv_depth, 64, norm=False, act="relu")
        self.to_latent = nn.Linear(self.encoder.out_dim, 2 * z_dim)
        self.decoder = ConvDecoder(z_dim, 3, config.conv_depth, 64, norm=False, act="relu")

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(..., 64, 64, 3)`` uint8 -> posterior ``mean``, ``log_var`` ``(..., Z)``."""
        x = obs.movedim(-1, -3).float() / 255.0
        mean, log_var = self.to_latent(self.encoder(x)).chunk(2, -1)
        return mean, log_var.clamp(*_LOG_VAR_RANGE)

    def decode_float(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` ``(..., Z)`` -> images ``(..., 3, 64, 64)`` in ``[0, 1]``."""
        return torch.sigmoid(self.decoder(z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` ``(..., Z)`` -> images ``(..., 64, 64, 3)`` uint8."""
        return (self.decode_float(z).movedim(-3, -1) * 255.0).round().to(torch.uint8)

    def _recon(self, z: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        target = obs.movedim(-1, -3).float() / 255.0
        return (self.decode_float(z) - target).pow(2).sum((-3, -2, -1)).mean()


class MLPVAE(_VAE):
    """VAE for vector observations, on per-dimension normalised inputs.

    The normaliser (``obs_mean``, ``obs_std`` buffers) is fitted once from data with
    :meth:`fit_normalizer`, or from the first training batch when that was not done.

    Args:
        obs_dim: observation size ``D``.
        z_dim: latent size ``Z``.
        config: :class:`VAEConfig`.
    """

    def __init__(self, obs_dim: int, z_dim: int, config: VAEConfig) -> None:
        super().__init__()
        self.z_dim, self.config, self.obs_dim = z_dim, config, obs_dim
        kw = {"norm": False, "act": "elu"}
        self.encoder = MLP(obs_dim, 2 * z_dim, config.mlp_units, config.mlp_layers, **kw)
        self.decoder = MLP(z_dim, obs_dim, config.mlp_units, config.mlp_layers, **kw)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.register_buffer("normalizer_fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit_normalizer(self, observations: torch.Tensor) -> None:
        """Set the per-dimension mean and std from observations ``(N, D)``."""
        x = observations.reshape(-1, self.obs_dim).float().to(self.obs_mean.device)
        self.obs_mean.copy_(x.mean(0))
        self.obs_std.copy_(x.std(0, unbiased=False).clamp_min(1e-3) if x.shape[0] > 1 else torch.ones_like(x[0]))
        self.normalizer_fitted.fill_(True)

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors ``(..., D)`` -> posterior ``mean``, ``log_var`` ``(..., Z)``."""
        x = (obs.float() - self.obs_mean) / self.obs_std
        mean, log_var = self.encoder(x).chunk(2, -1)
        return mean, log_var.clamp(*_LOG_VAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` ``(..., Z)`` -> vectors ``(..., D)`` float32 in the env's units."""
        return self.decoder(z) * self.obs_std + self.obs_mean

    def _recon(self, z: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        x = (obs.float() - self.obs_mean) / self.obs_std
        err = (self.decoder(z) - x) / self.config.vector_recon_std
        return 0.5 * err.pow(2).sum(-1).mean()

    def loss(self, batch: TensorDictBase) -> TensorDict:
        """As :meth:`_VAE.loss`; fits the normaliser on the first batch if it was never fitted."""
        if self.training and not bool(self.normalizer_fitted):
            self.fit_normalizer(batch["observation"])
        return super().loss(batch)


def build_vae(kind: str, observation_space: gym.Space, z_dim: int, config: VAEConfig) -> _VAE:
    """The VAE for ``observation_space`` (``config.kind`` ``"auto"`` picks by :func:`observation_kind`)."""
    obs_kind = observation_kind(observation_space)
    want = config.kind if config.kind != "auto" else ("conv" if obs_kind == "image" else "mlp")
    if (want == "conv") != (obs_kind == "image"):
        raise ConfigError(
            f"vae.kind={config.kind!r} does not fit {obs_kind} observations {observation_space}; "
            "use vae.kind=auto (conv for 64x64x3 images, mlp for vectors)"
        )
    if want == "conv":
        return ConvVAE(z_dim, config)
    return MLPVAE(int(observation_space.shape[0]), z_dim, config)


class MDNRNN(nn.Module):
    """M: LSTM over ``[z_t, a_t]``; a Gaussian mixture over ``z_{t+1}`` from ``h_{t+1}``, and reward and
    termination heads on ``[z_{t+1}, h_{t+1}]``.

    Args:
        z_dim: latent size ``Z``.
        action_space: the env's action space (encoded by :class:`ActionCodec`).
        config: :class:`MDNRNNConfig`.
    """

    def __init__(self, z_dim: int, action_space: gym.Space, config: MDNRNNConfig) -> None:
        super().__init__()
        self.z_dim, self.config, self.hidden = z_dim, config, config.hidden
        self.actions = ActionCodec(action_space)
        self.lstm = nn.LSTM(z_dim + self.actions.dim, config.hidden, batch_first=True)
        self.mdn = MixtureDensityHead(config.hidden, z_dim, config.n_mixtures)
        kw = {"norm": False, "act": "elu"}
        self.reward_head = MLP(z_dim + config.hidden, 1, config.head_units, 1, **kw)
        self.done_head = MLP(z_dim + config.hidden, 1, config.head_units, 1, **kw)
        # range of the rewards trained on: dreams never pay more (or less) than the data ever did
        self.register_buffer("reward_low", torch.full((), float("inf")))
        self.register_buffer("reward_high", torch.full((), float("-inf")))

    def initial(self, batch: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero LSTM state ``(h, c)``, each ``(batch, H)``."""
        zeros = torch.zeros(batch, self.hidden, device=device or self.lstm.weight_hh_l0.device)
        return zeros, zeros.clone()

    def rollout(
        self, z: torch.Tensor, action: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the LSTM over ``z`` ``(B, T, Z)`` and env actions ``(B, T, ...)``.

        Returns:
            ``hs`` ``(B, T, H)`` (``hs[:, t]`` is ``h_{t+1}``) and the final ``(h, c)``, each ``(B, H)``.
        """
        x = torch.cat([z, self.actions.encode(action)], -1)
        hc = None if state is None else (state[0].unsqueeze(0).contiguous(), state[1].unsqueeze(0).contiguous())
        hs, (h, c) = self.lstm(x, hc)
        return hs, (h.squeeze(0), c.squeeze(0))

    def step(
        self, z: torch.Tensor, action: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One LSTM step from ``z`` ``(B, Z)``, env action ``(B, ...)`` and state ``(B, H)`` each -> ``(h, c)``."""
        hs, (h, c) = self.rollout(z.unsqueeze(1), action.unsqueeze(1), (h, c))
        return h, c

    def next_latent(self, h: torch.Tensor, z: torch.Tensor) -> GaussianMixture:
        """Mixture over ``z_{t+1}`` ``(..., Z)`` from ``h_{t+1}`` ``(..., H)`` (and ``z_t`` ``(..., Z)``, the
        offset of every component mean when ``config.predict_delta``)."""
        mix = self.mdn(h)
        if self.config.predict_delta:
            mix = GaussianMixture(mix.logits, mix.mean + z.unsqueeze(-1), mix.log_std)
        return mix

    def heads(self, z_next: torch.Tensor, h_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward ``(...)`` and termination logit ``(...)`` of arriving at ``z_{t+1}`` with ``h_{t+1}``."""
        feat = torch.cat([z_next, h_next], -1)
        return self.reward_head(feat).squeeze(-1), self.done_head(feat).squeeze(-1)

    def clip_reward(self, reward: torch.Tensor) -> torch.Tensor:
        """Clamp predicted rewards into the range seen in training (no-op before any training)."""
        if bool(torch.isfinite(self.reward_low)) and bool(torch.isfinite(self.reward_high)):
            return reward.clamp(self.reward_low, self.reward_high)
        return reward

    def loss(self, batch: TensorDictBase) -> TensorDict:
        """Mixture NLL of ``z_{t+1}`` (per latent dim) + reward MSE + termination BCE over ``[B, T]``.

        Reads ``z`` ``(B, T, Z)``, ``action``, ``reward``, ``terminated`` and ``is_first``.

        Returns:
            ``loss_mdn``, ``loss_reward``, ``loss_done`` and detached metrics ``done_accuracy``,
            ``reward_mae``, ``z_mse`` (error of the mixture mean).
        """
        cfg = self.config
        tr = transition_view(batch)
        z = batch["z"].float()
        hs, _ = self.rollout(z[:, :-1], tr["action"])
        target = z[:, 1:]
        mixture = self.next_latent(hs, z[:, :-1])
        valid = tr["valid"]
        if self.training and bool(valid.any()):
            with torch.no_grad():
                seen = tr["reward"][valid]
                self.reward_low.copy_(torch.minimum(self.reward_low, seen.min()))
                self.reward_high.copy_(torch.maximum(self.reward_high, seen.max()))
        nll = masked_mean(-mixture.log_prob(target).mean(-1), valid)
        reward, done_logit = self.heads(target, hs)
        r_err = reward - tr["reward"]
        loss_reward = masked_mean(r_err.pow(2), valid)
        loss_done = masked_mean(done_loss(done_logit, tr["terminated"], cfg.done_pos_weight), valid)
        with torch.no_grad():
            acc = masked_mean(((done_logit > 0).float() == tr["terminated"]).float(), valid)
            z_mse = masked_mean((mixture.expected() - target).pow(2).mean(-1), valid)
        return TensorDict(
            {
                "loss_mdn": nll,
                "loss_reward": cfg.reward_weight * loss_reward,
                "loss_done": cfg.done_weight * loss_done,
                "done_accuracy": acc,
                "reward_mae": masked_mean(r_err.abs(), valid).detach(),
                "z_mse": z_mse,
            },
            batch_size=[],
        )


class LinearController(nn.Module):
    """C: ``a = W [z, h] + b``, mapped into the action space (argmax or tanh-squashed).

    Args:
        z_dim: latent size ``Z``.
        hidden: LSTM size ``H``.
        action_space: the env's action space.
        use_hidden: read ``[z, h]`` (paper) or only ``z``.
    """

    def __init__(self, z_dim: int, hidden: int, action_space: gym.Space, use_hidden: bool = True) -> None:
        super().__init__()
        self.z_dim, self.use_hidden = z_dim, use_hidden
        self.actions = ActionCodec(action_space)
        self.in_dim = z_dim + (hidden if use_hidden else 0)
        self.out_dim = self.actions.dim
        self.weight = nn.Parameter(torch.zeros(self.out_dim, self.in_dim), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(self.out_dim), requires_grad=False)

    @property
    def num_params(self) -> int:
        """Length of the flat parameter vector searched by CMA-ES."""
        return self.out_dim * (self.in_dim + 1)

    def get_flat(self) -> torch.Tensor:
        """Parameters as one vector ``(num_params,)``: ``W`` row-major, then ``b``."""
        return torch.cat([self.weight.detach().reshape(-1), self.bias.detach()])

    @torch.no_grad()
    def set_flat(self, flat: torch.Tensor | np.ndarray) -> None:
        """Load a vector from :meth:`get_flat` (or CMA-ES)."""
        flat = torch.as_tensor(np.asarray(flat), dtype=torch.float32, device=self.weight.device).reshape(-1)
        if flat.numel() != self.num_params:
            raise ValueError(f"expected {self.num_params} controller parameters, got {flat.numel()}")
        n = self.weight.numel()
        self.weight.copy_(flat[:n].reshape(self.weight.shape))
        self.bias.copy_(flat[n:])

    def select(self, latent: torch.Tensor) -> torch.Tensor:
        """The controller's inputs ``(..., in_dim)`` from latent observations ``[z, h]`` ``(..., Z + H)``."""
        return latent if self.use_hidden else latent[..., : self.z_dim]

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Env actions ``(B, ...)`` from latent observations ``[z, h]`` ``(B, Z + H)``."""
        return self.actions.from_output(F.linear(self.select(latent), self.weight, self.bias))

    def population_act(self, params: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Actions of ``P`` candidate parameter vectors at once.

        Args:
            params: ``(P, num_params)`` flat parameters.
            latent: ``(P, E, Z + H)`` latent observations, ``E`` episodes per candidate.

        Returns:
            Env actions ``(P, E, ...)``.
        """
        p = params.shape[0]
        n = self.weight.numel()
        w = params[:, :n].reshape(p, self.out_dim, self.in_dim).to(latent.dtype)
        b = params[:, n:].to(latent.dtype)
        y = torch.einsum("poi,pei->peo", w, self.select(latent)) + b[:, None, :]
        return self.actions.from_output(y)
