"""Shared pytest setup: headless rendering and quiet third-party loggers."""

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
logging.getLogger("torchrl").setLevel(logging.WARNING)
