"""The examples' tests share the integrations' tiny CartPole world model (one per session)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.integrations.conftest import tiny_checkpoint  # noqa: E402, F401
