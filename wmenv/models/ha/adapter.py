"""The one place the World Models family meets :class:`wmenv.core.WorldModel`: the MDN-RNN as a dream.

Usage::

    agent = create_model("world-models", env, preset="small")   # ...then train V and M
    dream = to_world_model(agent, observation_mode="latent", temperature=1.15)
    env = WorldModelVectorEnv(dream, ReplayStartStates(replay_as_tensordict(replay)), num_envs=64)

State carried between calls: TensorDict ``[B]`` with ``"z"`` ``(B, Z)`` (current latent), ``"h"`` and
``"c"`` ``(B, H)`` (LSTM state that has seen everything before ``z``).
"""

from __future__ import annotations

from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.data import TensorSpec, Unbounded

from wmenv.core.errors import ConfigError
from wmenv.core.specs import space_to_spec
from wmenv.models.ha.agent import WorldModelsAgent

__all__ = ["WorldModelsImagination", "to_world_model"]

ObservationMode = Literal["latent", "decoded"]


class WorldModelsImagination:
    """A trained V + M as a batched :class:`~wmenv.core.WorldModel` (the paper's "dream").

    Args:
        agent: a :class:`WorldModelsAgent` whose VAE and MDN-RNN are trained.
        observation_mode: ``"latent"`` emits ``[z, h]`` ``(Z + H,)`` float32, the controller's input;
            ``"decoded"`` emits the VAE decoding of ``z`` in the real env's observation space.
        temperature: ``tau`` of the mixture sampling of ``z_{t+1}``.
        done_threshold: ``terminated`` when the termination head's probability exceeds it
            (default: the agent config's ``done_threshold``).
        real_start_observation: in ``"decoded"`` mode emit the last real context observation at
            reset instead of its reconstruction.
        sample_start: encode the context with a posterior sample (from the generator) instead of
            the posterior mean.
    """

    def __init__(
        self,
        agent: WorldModelsAgent,
        *,
        observation_mode: ObservationMode = "latent",
        temperature: float = 1.0,
        done_threshold: float | None = None,
        real_start_observation: bool = True,
        sample_start: bool = False,
    ) -> None:
        if observation_mode not in ("latent", "decoded"):
            raise ConfigError(f"observation_mode must be 'latent' or 'decoded', got {observation_mode!r}")
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0 (paper: 1.0 to 1.15), got {temperature!r}")
        threshold = agent.config.done_threshold if done_threshold is None else float(done_threshold)
        if not 0 < threshold < 1:
            raise ConfigError(f"done_threshold must be in (0, 1), got {threshold!r}")
        self.agent = agent
        self.observation_mode = observation_mode
        self.temperature, self.done_threshold = float(temperature), threshold
        self.real_start_observation, self.sample_start = real_start_observation, sample_start
        self.device = next(agent.parameters()).device
        self.action_spec: TensorSpec = space_to_spec(agent.action_space, self.device)
        self.latent_spec: TensorSpec = Unbounded(
            shape=(agent.config.z_dim + agent.config.rnn.hidden,), dtype=torch.float32, device=self.device
        )
        self.decoded_spec: TensorSpec = space_to_spec(agent.observation_space, self.device)
        self.observation_spec: TensorSpec = self.latent_spec if observation_mode == "latent" else self.decoded_spec
        self._obs_ndim = len(agent.observation_space.shape)

    def _emit(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if self.observation_mode == "latent":
            return torch.cat([z, h], -1).float()
        return self.agent.vae.decode(z)

    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """Encode real context ``[B]`` or ``[B, T]`` (``observation``, and ``action`` for ``T > 1``:
        row ``t``'s action led to observation ``t``) and run the LSTM over it.

        Returns:
            ``"state"`` ``{z, h, c}`` after the last context observation and its ``"observation"``.
        """
        agent = self.agent
        obs = torch.as_tensor(context["observation"], device=self.device)
        if obs.dim() == self._obs_ndim + 1:
            obs = obs.unsqueeze(1)
        b, t = obs.shape[:2]
        mean, log_var = agent.vae.encode(obs.reshape(b * t, *obs.shape[2:]))
        z = agent.vae.sample(mean, log_var, generator) if self.sample_start else mean
        z = z.reshape(b, t, -1)
        h, c = agent.mdnrnn.initial(b, self.device)
        if t > 1:
            if "action" not in context.keys():
                raise ConfigError(
                    f"a context of {t} observations needs an 'action' entry (row t: the action that led to "
                    "observation t); use context_length=1 or keep the replay's action key"
                )
            action = torch.as_tensor(context["action"], device=self.device)[:, 1:]
            _, (h, c) = agent.mdnrnn.rollout(z[:, :-1], action)
        last = z[:, -1]
        if self.observation_mode == "decoded" and self.real_start_observation:
            first = obs[:, -1].to(self.decoded_spec.dtype).clone()
        else:
            first = self._emit(last, h)
        state = TensorDict({"z": last, "h": h, "c": c}, batch_size=[b])
        return TensorDict({"state": state, "observation": first}, batch_size=[b])

    @torch.no_grad()
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        """``h_{t+1} = LSTM([z_t, a_t], h_t)``; ``z_{t+1}`` sampled from the mixture at temperature ``tau``;
        reward (clamped to the range seen in training) and termination from the heads on ``[z_{t+1}, h_{t+1}]``."""
        mdn = self.agent.mdnrnn
        b = state.batch_size[0]
        h, c = mdn.step(state["z"], action.to(self.device), state["h"], state["c"])
        z = mdn.next_latent(h, state["z"]).sample(generator, self.temperature)
        reward, done_logit = mdn.heads(z, h)
        done_prob = torch.sigmoid(done_logit)
        return TensorDict(
            {
                "state": TensorDict({"z": z, "h": h, "c": c}, batch_size=[b]),
                "observation": self._emit(z, h),
                "reward": mdn.clip_reward(reward).float(),
                "terminated": done_prob > self.done_threshold,
                "info": TensorDict({"done_prob": done_prob.float()}, batch_size=[b]),
            },
            batch_size=[b],
        )


def to_world_model(
    model: nn.Module,
    observation_mode: ObservationMode = "latent",
    temperature: float = 1.0,
    *,
    done_threshold: float | None = None,
    real_start_observation: bool = True,
    sample_start: bool = False,
) -> WorldModelsImagination:
    """Wrap a :class:`WorldModelsAgent` as a :class:`~wmenv.core.WorldModel` (see
    :class:`WorldModelsImagination` for the arguments). Put the agent in ``eval()`` mode yourself."""
    if not isinstance(model, WorldModelsAgent):
        raise TypeError(
            f"to_world_model expects a WorldModelsAgent, got {type(model).__name__}; build one with "
            "wmenv.create_model('world-models', env)"
        )
    return WorldModelsImagination(
        model, observation_mode=observation_mode, temperature=temperature, done_threshold=done_threshold,
        real_start_observation=real_start_observation, sample_start=sample_start,
    )
