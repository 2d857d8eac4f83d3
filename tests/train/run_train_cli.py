"""Subprocess entry for the kill/resume test: register the test family, then run the train CLI.

Run from the repository root as ``python -m tests.train.run_train_cli train ...``.
"""

import sys

import torch

import tests.train.testfamily  # noqa: F401  (registers "test_mlp")
from wmenv.cli.train import main

torch.set_num_threads(1)  # tiny model: avoid thread oversubscription

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
