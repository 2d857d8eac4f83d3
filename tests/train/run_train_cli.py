"""Subprocess entry for the kill/resume test: register the test family, then run the train CLI."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import testfamily  # noqa: E402,F401  (registers "test_mlp")
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny model: avoid thread oversubscription

from wmenv.train.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
