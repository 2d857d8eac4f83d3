"""Usage errors of the commands: one line naming the argument, exit code 2, before any slow work."""

from __future__ import annotations

from pathlib import Path

import pytest

from wmenv.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["perf", "--sizes", "abc"], "--sizes takes batch sizes"),
        (["perf", "--sizes", "0,4"], "--sizes takes batch sizes >= 1"),
        (["train", "no-such-model", "--env", "CartPole-v1"], "unknown model 'no-such-model'"),
        (["train", "mlp-wm", "--env", "NoSuchEnv-v9"], "unknown env id 'NoSuchEnv-v9'"),
        (["train", "--resume", "/nonexistent/run"], "no such run directory"),
        (["imagine", "--checkpoint", "/nonexistent/run", "--out", "x.gif"], "no checkpoint at"),
        (["register", "--id", "wmenv/X-v0"], "needs RUN and --id"),
        (["register", "/nonexistent/run", "--id", "wmenv/X-v0"], "no checkpoint at"),
        (["train", "mlp-wm", "--env", "CartPole-v1", "--nproc", "2"], "--nproc needs --run-dir"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], expected: str, capsys, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_evaluate_model_refuses_a_missing_policy_before_collecting(tmp_path: Path, capsys) -> None:
    code = main(["evaluate-model", "--checkpoint", str(tmp_path), "--policy", str(tmp_path / "missing.zip"),
                 "--out-dir", str(tmp_path / "out")])
    assert code == 2
    assert "missing.zip: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any output (or collection) was made
