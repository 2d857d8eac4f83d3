"""The Atari 100k reference scores ship in the wheel, and ``--reference`` reads them from the package.

The wheel is built offline (``pip wheel --no-deps --no-build-isolation --no-index``, with the venv's
setuptools) from a copy of ``pyproject.toml``, ``README.md`` and ``wmenv/``, so the build's
``build/`` and ``*.egg-info`` folders never land in the working tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import wmenv
from wmenv.benchmarks import atari_100k as A

REPO = Path(__file__).resolve().parents[2]
DATA = "wmenv/benchmarks/data/atari100k"
FILES = ("DIAMOND.json", "HUMAN.json", "IRIS.json", "RANDOM.json", "README.md")
PUBLISHED = ("IRIS           1.046   0.289   0.501", "DIAMOND        1.459   0.373   0.641")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the current sources, built without network access."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src)
    shutil.copy2(REPO / "README.md", src)
    shutil.copytree(REPO / "wmenv", src / "wmenv", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    proc = subprocess.run(
        [*cmd, "-w", str(root / "dist"), str(src)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = (root / "dist").glob("wmenv-*.whl")
    return whl


def _run(argv: list[str], cwd: Path, pythonpath: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_source_tree_holds_the_reference_files() -> None:
    assert A.DEFAULT_REFERENCE_DIR == A.packaged_reference_dir()
    assert A.DEFAULT_REFERENCE_DIR == Path(wmenv.__file__).parent / "benchmarks" / "data" / "atari100k"
    assert sorted(p.name for p in A.DEFAULT_REFERENCE_DIR.iterdir()) == sorted(FILES)


def test_wheel_contains_the_reference_scores(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in FILES:
            assert f"{DATA}/{name}" in names, f"{name} missing from {wheel.name}"
            assert zf.read(f"{DATA}/{name}") == (REPO / DATA / name).read_bytes()


def test_installed_wheel_prints_published_aggregates(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    # PYTHONPATH comes before the editable install's finder, so this runs the unpacked wheel.
    out = _run(["-m", "wmenv.benchmarks.atari_100k", "--reference"], tmp_path, site)
    for line in PUBLISHED:
        assert line in out, out
    assert f"scores: {site / DATA}" in out


def test_cli_reference_defaults_to_packaged_data(tmp_path: Path) -> None:
    out = _run(["-m", "wmenv.benchmarks.atari_100k", "--reference"], tmp_path)
    for line in PUBLISHED:
        assert line in out, out
    assert "(5 runs x 26 games)" in out
    assert f"scores: {A.DEFAULT_REFERENCE_DIR.resolve()}" in out
