"""`wmenv train MODEL --stage S` hands staged families to their own stage driver."""

from pathlib import Path

from wmenv.cli import main


def test_stage_runs_through_the_generic_cli(tmp_path: Path, capsys):
    code = main(["train", "world-models", "--env", "CartPole-v1", "--preset", "tiny", "--stage", "vae",
                 "--runs-root", str(tmp_path), "--no-progress"])
    assert code == 0
    (run,) = list(tmp_path.iterdir())
    assert (run / "checkpoint.pt").is_file()
    assert "trained stages ['vae']" in capsys.readouterr().out


def test_stage_on_a_family_without_stages_is_a_usage_error(tmp_path: Path, capsys):
    code = main(["train", "dreamer", "--env", "CartPole-v1", "--stage", "vae", "--runs-root", str(tmp_path)])
    assert code == 2
    assert "not trained in stages" in capsys.readouterr().err
