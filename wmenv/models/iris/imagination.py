"""IRIS imagination: ``N`` members stepped together, one batched transformer call per generated token.

State carried between calls (TensorDict ``[N]``, every entry the same shape for every member, so
the core's partial resets ``state[mask] = new`` work unchanged)::

    "obs_tokens"  (N, L, K) int64    obs tokens of the steps in the member's window (row s-1: current frame)
    "actions"     (N, L, A) float32  encoded action taken after each of those frames (row s-1: not yet known)
    "steps"       (N,) int64         steps s in the window (1 <= s <= L)
    "rng_key"     (N,) int64         the member's random stream (:mod:`wmenv.nn.streams`)
    "rng_step"    (N,) int64         steps imagined since the member's reset (the stream's counter)
    "cache"       TensorDict [N]     the transformer's key/value cache (``use_cache=True`` only):
                                     every token of the window except the current frame's last one

One :meth:`IRISImagination.step`:

1. members whose window is full (``s == L``) are **refreshed**: the window keeps its last
   ``context_length`` steps (positions restart at 0, as in training) and their cache is rebuilt
   from those tokens in one batched pass (the paper refreshes from the last frame alone);
2. the current frame's last token and the action token go through the transformer together; the
   output at the action token gives the reward, the termination and the next frame's first token;
3. each of the next ``K - 1`` tokens is fed back in one call for all members (KV cache) and the
   following token is sampled.

With ``use_cache=False`` every token is predicted by recomputing the whole window instead (the
reference the cache is checked and benchmarked against; same window semantics, same outputs).

**Random draws.** Tokens, sign rewards and (optionally) terminations are sampled by Gumbel-max /
thresholds on per-member streams keyed by ``rng_key`` and counted by ``rng_step``. The keys are
drawn from the core's generator at ``initial_state`` (or taken from the context's ``"rng_key"``
entry when it has one). So "the same" imagination means: same context, same key, same actions ->
the same trajectory, whether the member is imagined alone or among ``N - 1`` others, with or
without the cache, and however its neighbours are reset.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import TensorSpec, Unbounded

from wmenv.core.errors import ConfigError
from wmenv.core.specs import space_to_spec
from wmenv.nn.streams import draw_keys, stream_categorical, stream_uniform

__all__ = ["IRISImagination", "ObservationMode"]

ObservationMode = Literal["decoded", "latent"]


class IRISImagination:
    """A trained IRIS model (tokenizer + world model) as a batched :class:`~wmenv.core.WorldModel`.

    Args:
        model: an :class:`~wmenv.models.iris.model.IRIS` module (``tokenizer``, ``world_model``,
            ``actions``, ``config``, ``observation_space``, ``action_space``).
        observation_mode: ``"decoded"``: the tokenizer's decoding of the imagined tokens, in the real
            env's observation space (``uint8`` frames); ``"latent"``: the code vectors of the frame's
            ``K`` tokens, flattened to ``(K * code_dim,)`` float32.
        temperature: sampling temperature of the obs tokens (``0``: argmax).
        use_cache: KV cache (else the window is recomputed for every token).
        real_start_observation: in ``"decoded"`` mode emit the last real context frame at reset (it is
            exact) instead of its reconstruction.
        sample_reward: sample the sign-reward class (the paper) instead of emitting its expected value.
        sample_termination: draw ``terminated ~ Bernoulli(p)`` instead of ``p > 0.5``.
        context_length: real steps burned in at reset and kept at a refresh (default
            ``world_model.burn_in``; at most ``context_steps``).
        copy_state: ``step`` leaves its input state untouched (one copy of the cache per step); ``False``
            updates the cache in place (faster, for callers that never reuse a state).
    """

    def __init__(
        self,
        model: Any,
        *,
        observation_mode: ObservationMode = "decoded",
        temperature: float = 1.0,
        use_cache: bool = True,
        real_start_observation: bool = True,
        sample_reward: bool = True,
        sample_termination: bool = False,
        context_length: int | None = None,
        copy_state: bool = True,
    ) -> None:
        if observation_mode not in ("decoded", "latent"):
            raise ConfigError(f"observation_mode must be 'decoded' or 'latent', got {observation_mode!r}")
        if not (isinstance(temperature, int | float) and temperature >= 0):
            raise ConfigError(f"temperature must be a number >= 0, got {temperature!r}")
        cfg = model.config
        steps = cfg.world_model.context_steps
        context_length = cfg.world_model.burn_in if context_length is None else context_length
        if isinstance(context_length, bool) or not isinstance(context_length, int) or not 1 <= context_length <= steps:
            raise ConfigError(f"context_length must be an int in [1, context_steps={steps}], got {context_length!r}")
        self.model = model
        self.tokenizer, self.world_model, self.actions = model.tokenizer, model.world_model, model.actions
        self.observation_mode = observation_mode
        self.temperature = float(temperature)
        self.use_cache, self.copy_state = bool(use_cache), bool(copy_state)
        self.real_start_observation = bool(real_start_observation)
        self.sample_reward, self.sample_termination = bool(sample_reward), bool(sample_termination)
        self.context_length = int(context_length)
        self.window = steps  # L
        self.keep = min(self.context_length, steps - 1)  # steps kept by a refresh
        self.tokens = cfg.tokenizer.tokens_per_frame  # K
        self.action_dim = int(self.actions.dim)
        self.device = next(model.parameters()).device
        self.action_spec: TensorSpec = space_to_spec(model.action_space, self.device)
        self.decoded_spec: TensorSpec = space_to_spec(model.observation_space, self.device)
        self.latent_spec: TensorSpec = Unbounded(
            shape=(self.tokens * cfg.tokenizer.code_dim,), dtype=torch.float32, device=self.device
        )
        self.observation_spec: TensorSpec = self.decoded_spec if observation_mode == "decoded" else self.latent_spec
        self._frame_ndim = len(model.observation_space.shape)

    # ------------------------------------------------------------------ helpers
    def _encode_actions(self, action: torch.Tensor) -> torch.Tensor:
        return self.actions.encode(torch.as_tensor(action, device=self.device)).float()

    def _emit(self, tokens: torch.Tensor) -> torch.Tensor:
        """Observation ``(B, ...)`` of the frames with tokens ``(B, K)``."""
        if self.observation_mode == "latent":
            return self.tokenizer.embed(tokens).reshape(tokens.shape[0], -1).float()
        return self.tokenizer.decode(tokens)

    def _prefill(self, tokens: torch.Tensor, actions: torch.Tensor, steps: torch.Tensor) -> TensorDict:
        """A cache holding every token of each window but the current frame's last one.

        Args:
            tokens: ``(M, L, K)`` windows (rows ``>= steps`` ignored).
            actions: ``(M, L, A)``.
            steps: ``(M,)`` steps in each window.
        """
        wm, k = self.world_model, self.tokens
        m = tokens.shape[0]
        cache = wm.transformer.new_cache(m, device=self.device)
        length = (steps * (k + 1) - 2).clamp(min=0)
        n = int(length.max()) if m else 0
        if n > 0:
            wm.transformer(wm.embed_steps(tokens, actions)[:, :n], cache)
        cache["length"] = length
        return cache

    def _recompute(self, state: TensorDictBase, position: torch.Tensor) -> torch.Tensor:
        """Transformer outputs ``(B, C)`` at ``position`` ``(B,)``, recomputing each member's whole window."""
        wm = self.world_model
        n = int(position.max()) + 1
        h = wm.transformer(wm.embed_steps(state["obs_tokens"], state["actions"])[:, :n])
        return h[torch.arange(h.shape[0], device=h.device), position]

    def _refresh(self, state: TensorDictBase, mask: torch.Tensor) -> None:
        """Members in ``mask`` (their windows are full): keep the last ``keep`` steps, rebuild their caches."""
        shift = self.window - self.keep
        for key in ("obs_tokens", "actions"):
            old = state[key][mask]
            state[key][mask] = torch.cat([old[:, shift:], torch.zeros_like(old[:, :shift])], 1)
        state["steps"] = state["steps"].masked_fill(mask, self.keep)
        if self.use_cache:
            idx = mask.nonzero().squeeze(-1)
            sub = self._prefill(state["obs_tokens"][idx], state["actions"][idx], state["steps"][idx])
            state["cache"][idx] = sub

    # ------------------------------------------------------------------ protocol
    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator | None = None) -> TensorDictBase:
        """Burn in real context ``[B, T]`` (or ``[B]``): ``observation`` ``uint8`` frames, ``action`` (row
        ``t``: the action that led to frame ``t``), optionally ``is_first`` (steps before a member's
        last episode start are dropped) and ``rng_key`` ``(B,)`` or ``(B, T)`` (the last column; else keys are
        drawn from ``generator``).

        Only the last ``context_steps`` rows are used. Returns ``{"state", "observation"}``.
        """
        obs = torch.as_tensor(context["observation"], device=self.device)
        keys = context.keys() if isinstance(context, TensorDictBase) else ()
        single = obs.dim() == self._frame_ndim + 1
        if single:
            obs = obs.unsqueeze(1)
        b, t = obs.shape[:2]
        take = min(t, self.window)
        obs = obs[:, t - take :]
        tokens = self.tokenizer.tokenize(obs)  # (B, T, K)
        actions = torch.zeros(b, take, self.action_dim, device=self.device)
        if "action" in keys and take > 1 and not single:
            raw = torch.as_tensor(context["action"], device=self.device)[:, t - take :]
            actions[:, :-1] = self._encode_actions(raw[:, 1:])
        steps = torch.full((b,), take, dtype=torch.int64, device=self.device)
        if "is_first" in keys and take > 1 and not single:
            first = torch.as_tensor(context["is_first"], device=self.device).reshape(b, t)[:, t - take :].bool().clone()
            first[:, 0] = True
            start = (first.long() * torch.arange(take, device=self.device)).amax(1)  # last episode start
            if bool((start > 0).any()):
                idx = (start[:, None] + torch.arange(take, device=self.device)[None]).clamp(max=take - 1)
                rows = torch.arange(b, device=self.device)[:, None]
                tokens, actions = tokens[rows, idx], actions[rows, idx]
                steps = take - start
        window_tokens = torch.zeros(b, self.window, self.tokens, dtype=torch.int64, device=self.device)
        window_actions = torch.zeros(b, self.window, self.action_dim, device=self.device)
        window_tokens[:, :take], window_actions[:, :take] = tokens, actions
        if "rng_key" in keys:
            rng_key = torch.as_tensor(context["rng_key"], device=self.device).long()
            rng_key = (rng_key[:, -1] if rng_key.dim() == 2 else rng_key).reshape(b)
        else:
            rng_key = draw_keys(b, generator, self.device)
        state = TensorDict(
            {
                "obs_tokens": window_tokens, "actions": window_actions, "steps": steps, "rng_key": rng_key,
                "rng_step": torch.zeros(b, dtype=torch.int64, device=self.device),
            },
            batch_size=[b], device=self.device,
        )
        if self.use_cache:
            state["cache"] = self._prefill(window_tokens, window_actions, steps)
        rows = torch.arange(b, device=self.device)
        current = window_tokens[rows, steps - 1]
        if self.observation_mode == "decoded" and self.real_start_observation:
            first_obs = obs[:, -1].to(self.decoded_spec.dtype).clone()
        else:
            first_obs = self._emit(current)
        return TensorDict({"state": state, "observation": first_obs}, batch_size=[b], device=self.device)

    @torch.no_grad()
    def step(
        self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> TensorDictBase:
        """Every member one step: ``K`` batched transformer calls (see the module docstring).

        Returns ``{"state", "observation", "reward" (B,), "terminated" (B,), "info": {"end_prob"}}``.
        """
        wm, k = self.world_model, self.tokens
        state = state.clone() if self.copy_state else state
        b = state.batch_size[0]
        rows = torch.arange(b, device=self.device)
        act = self._encode_actions(action).reshape(b, self.action_dim)
        full = state["steps"] >= self.window
        if bool(full.any()):
            self._refresh(state, full)
        s = state["steps"]
        state["actions"][rows, s - 1] = act
        key, counter = state["rng_key"], state["rng_step"]
        tokens = state["obs_tokens"]
        if self.use_cache:
            cache = state["cache"]
            x = torch.stack([wm.embed_obs(tokens[rows, s - 1, k - 1]), wm.embed_action(act)], 1)
            h = wm.transformer(x, cache)[:, -1]
        else:
            h = self._recompute(state, s * (k + 1) - 1)
        r_logits, end_logit = wm.reward_head(h).float(), wm.end_head(h).squeeze(-1).float()
        for j in range(k):
            z = stream_categorical(wm.obs_head(h), key, counter, j, self.temperature)
            tokens[rows, s, j] = z
            if j + 1 < k:  # feed z to predict the next token (the frame's last token waits for the next step)
                if self.use_cache:
                    h = wm.transformer(wm.embed_obs(z)[:, None], cache)[:, -1]
                else:
                    h = self._recompute(state, s * (k + 1) + j)
        new = tokens[rows, s]
        state["steps"] = s + 1
        state["rng_step"] = counter + 1
        if wm.config.world_model.reward_head == "sign" and self.sample_reward:
            reward = wm.reward_value(r_logits, stream_categorical(r_logits, key, counter, k))
        else:
            reward = wm.reward_value(r_logits)
        p = torch.sigmoid(end_logit)
        if self.sample_termination:
            terminated = stream_uniform(key, counter, k + 1, 1)[:, 0] < p
        else:
            terminated = p > 0.5
        return TensorDict(
            {
                "state": state,
                "observation": self._emit(new),
                "reward": reward.float(),
                "terminated": terminated,
                "info": TensorDict({"end_prob": p.float()}, batch_size=[b]),
            },
            batch_size=[b], device=self.device,
        )

    # ------------------------------------------------------------------ real-env filter
    @torch.no_grad()
    def observe(
        self,
        state: TensorDictBase | None,
        action: Any,
        observation: Any,
        *,
        generator: torch.Generator | None = None,
    ) -> TensorDictBase:
        """Latent observation of real frames ``(B, *frame_shape)``: the code vectors of their tokens
        (no filtering is needed: a frame's tokens depend on that frame alone)."""
        obs = torch.as_tensor(
            observation if isinstance(observation, torch.Tensor) else np.ascontiguousarray(observation),
            device=self.device,
        )
        tokens = self.tokenizer.tokenize(obs)
        b = obs.shape[0]
        latent = self.tokenizer.embed(tokens).reshape(b, -1).float()
        return TensorDict({"state": TensorDict({"tokens": tokens}, batch_size=[b]), "observation": latent},
                          batch_size=[b])
