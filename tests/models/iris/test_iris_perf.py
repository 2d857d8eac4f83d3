"""The IRIS imagination benchmark runs, and its two paths give the same tokens."""

from __future__ import annotations

from wmenv.models.iris.perf import compare, main, table


def test_compare_cache_and_recompute(capsys):
    result = compare("tiny", (1, 3), horizon=5, progress=False)
    assert [r["N"] for r in result["rows"]] == [1, 3]
    for row in result["rows"]:
        assert row["same_tokens"] and row["cache_steps_per_s"] > 0 and row["recompute_steps_per_s"] > 0
    assert "| 3 |" in table(result)
    assert main(["--preset", "tiny", "--sizes", "2", "--horizon", "2"]) == 0
    assert "KV cache steps/s" in capsys.readouterr().out
