"""The Python snippets of the README's "Use with your RL library" section run exactly as printed.

They name the run directory ``runs/cartpole``; each runs here from a fresh working directory where
``runs/cartpole`` is a symlink to the session's tiny CartPole checkpoint. Nothing is substituted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "README.md"
_SECTION = DOC.read_text().split("## Use with your RL library", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"^```python\n(.*?)^```", _SECTION, flags=re.S | re.M)
TITLES = ["sb3", "torchrl", "cleanrl"]


def test_the_doc_has_one_snippet_per_library():
    assert len(BLOCKS) == len(TITLES)
    for block, lib in zip(BLOCKS, ("stable_baselines3", "torchrl", "gym.vector.SyncVectorEnv")):
        assert lib in block and '"runs/cartpole"' in block


@pytest.mark.parametrize("index", range(len(TITLES)), ids=TITLES)
def test_snippet_runs_as_printed(index, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "cartpole").symlink_to(tiny_checkpoint, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"{DOC.name}[{TITLES[index]}]", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert ("real-env return" in out) if index < 2 else ("WorldModelVectorEnv (64," in out)
