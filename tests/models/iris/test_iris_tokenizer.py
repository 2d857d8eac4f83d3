"""The IRIS tokenizer: spaces it accepts, shapes, and a round trip that improves with training."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.models.iris.conftest import BINARY, DISCRETE, RGB, catch_rows
from wmenv.core.errors import UnsupportedSpaceError
from wmenv.models.iris import Tokenizer, TokenizerConfig
from wmenv.registry import create_model

TINY = TokenizerConfig(tokens_per_frame=4, vocab_size=16, code_dim=8, channels=8, max_channels=16, res_blocks=0,
                       lr=3e-3, dead_code_threshold=0.01)


@pytest.mark.parametrize(
    ("space", "tokens", "side", "stages"),
    [(BINARY, 4, 16, 3), (BINARY, 16, 16, 2), (BINARY, 9, 12, 2), (RGB, 16, 64, 4),
     (gym.spaces.Box(0, 255, (8, 8), np.uint8), 4, 8, 2), (gym.spaces.Box(0, 7, (12, 7, 2), np.uint8), 1, 16, 4)],
)
def test_any_small_frame_size(space, tokens, side, stages):
    tok = Tokenizer(TokenizerConfig(**{**TINY.__dict__, "tokens_per_frame": tokens}), space).eval()
    assert (tok.tokens, tok.side, tok.stages) == (tokens, side, stages)
    assert tok.binary == (float(space.high.max()) == 1.0)
    frames = torch.as_tensor(np.stack([space.sample() for _ in range(6)])).reshape(2, 3, *space.shape)
    ids = tok.tokenize(frames)
    assert ids.shape == (2, 3, tokens) and ids.dtype == torch.int64 and int(ids.max()) < 16
    out = tok.decode(ids)
    assert out.shape == frames.shape and out.dtype == torch.uint8 and int(out.max()) <= int(space.high.max())
    assert tok.embed(ids).shape == (2, 3, tokens, 8)
    loss = tok.loss(frames)
    assert {"loss_recon", "loss_commit", "perplexity", "code_usage", "recon_error"} <= set(loss.keys())


@pytest.mark.parametrize(
    "space",
    [gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Box(0, 1, (10, 10, 4), np.float32),
     gym.spaces.Discrete(5), gym.spaces.Dict({"image": RGB}), gym.spaces.Box(0, 1, (2, 2, 2, 2), np.uint8)],
)
def test_vector_and_other_spaces_are_refused(space):
    with pytest.raises(UnsupportedSpaceError, match="image observations"):
        create_model("iris", observation_space=space, action_space=DISCRETE, preset="tiny")


def fit(tok: Tokenizer, frames: torch.Tensor, steps: int, batch: int = 32) -> None:
    opt = torch.optim.Adam(tok.parameters(), lr=tok.config.lr)
    for _ in range(steps):
        out = tok.loss(frames[torch.randint(len(frames), (batch,))])
        opt.zero_grad()
        (out["loss_recon"] + out["loss_commit"]).backward()
        opt.step()


def test_binary_round_trip_improves_with_training():
    torch.manual_seed(0)
    frames = catch_rows(episodes=4)["observation"]
    tok = Tokenizer(TokenizerConfig(**{**TINY.__dict__, "tokens_per_frame": 16, "vocab_size": 64}), BINARY)

    def wrong_cells() -> float:  # wrong cells of the round trip, relative to the frames' "on" cells
        with torch.no_grad():
            return float((tok.reconstruct(frames) != frames).sum() / frames.sum())

    before = wrong_cells()
    fit(tok, frames, 200)
    after = wrong_cells()
    # an all-off reconstruction scores 1.0 (about 1.5% of the cells are on): beat it by half
    assert after < 0.5 < before, (before, after)
    out = tok.loss(frames, update=False)
    assert out["perplexity"] > 2  # more than one code in use


def test_rgb_round_trip_improves_with_training():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    frames = torch.zeros(24, 64, 64, 3, dtype=torch.uint8)
    for i in range(24):  # a coloured square on a dark background
        y, x = torch.randint(0, 48, (2,), generator=g).tolist()
        frames[i, y : y + 16, x : x + 16] = torch.randint(64, 256, (3,), generator=g).to(torch.uint8)
    tok = Tokenizer(TINY, RGB)
    assert tok.recon_loss == "l1"
    with torch.no_grad():
        before = float(tok.loss(frames, update=False)["recon_error"])
    fit(tok, frames, 60, batch=8)
    with torch.no_grad():
        after = float(tok.loss(frames, update=False)["recon_error"])
    assert after < 0.5 * before, (before, after)
