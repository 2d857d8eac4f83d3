"""`wmenv perf` runs every face next to the raw step and writes its JSON (no timing asserted)."""

import json

from wmenv.cli import main


def test_perf_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "perf.json"
    assert main(["perf", "--sizes", "1,4", "--steps", "5", "--repeats", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())["results"]
    assert set(data) == {"1", "4"}
    assert {"raw", "single", "vector", "torchrl", "sb3", "vector_ratio"} <= set(data["1"])
    assert "single" not in data["4"] and data["4"]["sb3_ratio"] > 0
    assert "| N | raw steps/s |" in capsys.readouterr().out


def test_perf_leaves_autograd_on():
    import torch

    main(["perf", "--sizes", "1", "--steps", "2", "--repeats", "1"])
    assert torch.is_grad_enabled()


def test_perf_device_option(tmp_path, capsys):
    import torch

    out = tmp_path / "perf.json"
    assert main(["perf", "--sizes", "2", "--steps", "3", "--repeats", "1", "--device", "cpu", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["device"] == "cpu"
    if not torch.cuda.is_available():
        assert main(["perf", "--sizes", "2", "--device", "cuda"]) == 2
        assert "device 'cuda' is not usable here" in capsys.readouterr().err
    assert main(["perf", "--sizes", "2", "--device", "nonsense"]) == 2
