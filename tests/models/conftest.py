"""What every family's tests share: a fixed seed and one intra-op thread per test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seed, and use one intra-op thread: tiny models on a shared 2-core machine run many times
    slower with two threads contending."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
