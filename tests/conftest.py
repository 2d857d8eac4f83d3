"""Shared pytest setup: headless rendering and quiet third-party loggers."""

import logging
import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
logging.getLogger("torchrl").setLevel(logging.WARNING)
# `wmenv register` / register_env(persist=True) write here, never to the user's ~/.config
os.environ["WMENV_CONFIG_DIR"] = tempfile.mkdtemp(prefix="wmenv-test-config-")

import torch  # noqa: E402

# Tiny models on a 2-core machine: one intra-op thread is fastest and keeps parallel jobs fair.
torch.set_num_threads(1)
