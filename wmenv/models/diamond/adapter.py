"""A trained diffusion world model as a batched :class:`wmenv.core.WorldModel`.

State carried between calls (TensorDict ``[B]``, every entry the same shape for every member, so the
core resets members individually with ``state[mask] = new``):

``frames``   ``uint8 (B, L, H, W, C)``: the last ``L`` frames (real at reset, imagined after)
``valid``    ``bool (B, L)``: False for padding frames (context shorter than ``L`` or from another episode)
``actions``  ``float (B, L - 1, A)``: action vectors taken at the first ``L - 1`` frames
``h``, ``c`` the reward/termination model's LSTM state (burned in on the context's transitions)
``key``      ``int64 (B,)``: the member's noise key, drawn from the generator at ``initial_state``
``counter``  ``int64 (B,)``: imagined steps since then

Observations are the imagined frames themselves (``observation_mode="decoded"``, the only mode):
``uint8`` ``(H, W, C)`` rounded to the frame space's levels, binarised for 0/1 MinAtar frames.
``step`` runs the sampler for all members at once: one batched denoiser call per denoising step
(``sampling_steps``, default the config's: DIAMOND's 3 Euler steps), then one reward/termination
call. Reward and termination are drawn from the heads' distributions (DIAMOND) unless
``sample_heads=False`` (most likely reward class, ``p > 0.5``).

**Randomness and "batched equals single".** The generator is used once per member, at
``initial_state``, to draw its 62-bit ``key``. Every later random number of the member (initial
denoising noise, ancestral noise, head draws) is a counter-based hash of ``(key, counter, stream,
element)`` (:func:`wmenv.nn.diffusion.keyed_normal`), independent of the batch it is computed in.
Hence, on a fixed device and up to floating-point differences between batched and unbatched
kernels (which frame rounding absorbs), member ``i`` of a batched imagination equals:

- the same member stepped alone: ``step(state[i:i+1], action[i:i+1])``, on any device;
- on the CPU, the ``i``-th of ``N`` single imaginations started one after another from one generator
  seeded like the batched run's (CPU ``torch.randint`` draws keys sequentially, so ``N`` draws of
  one key equal one draw of ``N``);

and ``reset(seed=s)`` reproduces imagined episodes exactly.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError
from wmenv.core.specs import space_to_spec
from wmenv.models.diamond.model import DiamondWorldModel

__all__ = ["DiamondImagination", "to_world_model"]


class DiamondImagination:
    """A :class:`DiamondWorldModel` as a :class:`~wmenv.core.WorldModel` (see the module docstring).

    Args:
        model: the trained world model (``DiamondAgent.world_model``).
        sampling_steps: denoising steps per imagined frame (default: the config's).
        sample_heads: sample reward and termination (DIAMOND) instead of taking the most likely values.
    """

    def __init__(self, model: DiamondWorldModel, *, sampling_steps: int | None = None,
                 sample_heads: bool = True) -> None:
        if sampling_steps is not None and (isinstance(sampling_steps, bool) or not isinstance(sampling_steps, int)
                                           or sampling_steps < 1):
            raise ConfigError(f"sampling_steps must be an int >= 1 or None, got {sampling_steps!r}")
        self.model, self.sample_heads = model, bool(sample_heads)
        self.sampling_steps = int(sampling_steps or model.config.sampling_steps)
        self.device = next(model.parameters()).device
        self.context_length = model.context_frames  # read by wmenv.open_run(...).start_states()
        self.observation_spec = space_to_spec(model.observation_space, self.device)
        self.action_spec = space_to_spec(model.action_space, self.device)

    @torch.no_grad()
    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """State from ``[B]`` (one frame) or ``[B, T]`` (frames, actions, ``is_first``) real context."""
        obs = torch.as_tensor(context["observation"], device=self.device)
        b = obs.shape[0]
        keys = context.keys()
        action = context["action"].to(self.device) if "action" in keys and obs.dim() == 5 else None
        is_first = context["is_first"].to(self.device) if "is_first" in keys and obs.dim() == 5 else None
        key = torch.randint(0, 2**62, (b,), generator=generator, device=generator.device).to(self.device)
        state = self.model.start(obs, action, is_first, key=key)
        return TensorDict({"state": state, "observation": state["frames"][:, -1].clone()}, batch_size=[b])

    @torch.no_grad()
    def step(self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator) -> TensorDictBase:
        """Every member one step (keyed noise: ``generator`` is not drawn from here)."""
        return self.model.imagine(state, action.to(self.device), steps=self.sampling_steps,
                                  sample_heads=self.sample_heads)


def to_world_model(
    model: nn.Module,
    *,
    observation_mode: str | None = "decoded",
    sampling_steps: int | None = None,
    sample_heads: bool = True,
) -> DiamondImagination:
    """Wrap a trained ``DiamondAgent`` (or its ``DiamondWorldModel``) as a :class:`~wmenv.core.WorldModel`.

    Args:
        model: the trained model (``diamond``, ``ddpm`` or ``dit``).
        observation_mode: ``"decoded"`` or ``None``: frames are the observations (there is no latent).
        sampling_steps: denoising steps per imagined frame (default: the config's ``sampling_steps``);
            fewer is faster and less faithful.
        sample_heads: sample reward and termination (DIAMOND) instead of taking the most likely values.

    Raises:
        TypeError: ``model`` is not of this family.
        ConfigError: another ``observation_mode``; a bad ``sampling_steps``.
    """
    world_model = getattr(model, "world_model", model)
    if not isinstance(world_model, DiamondWorldModel):
        raise TypeError(f"to_world_model expects a DiamondAgent or DiamondWorldModel, got {type(model).__name__}; "
                        "build one with wmenv.create_model('diamond', env)")
    if observation_mode not in (None, "decoded"):
        raise ConfigError(f"the diamond family has only observation_mode='decoded' (its observations are the "
                          f"imagined frames), got {observation_mode!r}")
    return DiamondImagination(world_model, sampling_steps=sampling_steps, sample_heads=sample_heads)
