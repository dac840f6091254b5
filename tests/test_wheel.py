"""The library works installed from its wheel, away from the source tree: build the wheel from a copy of
the sources, install it (no dependencies: this environment has them) into a scratch folder, and from
another working directory fit and predict with mliplib, read the project's packaged literature file,
and check that zno_book, installed outside a checkout, asks for ZNO_BOOK_ROOT instead of guessing."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from sklearn.linear_model import Ridge

    import mliplib
    import zno_book
    from mliplib.builders import rattled
    from mliplib.descriptors import BehlerParrinello
    from mliplib.models import LinearPotential
    from zno_book import literature, paths

    frames = []
    for seed in range(6):
        atoms = rattled(bulk("Cu", "fcc", a=3.6, cubic=True), 0.05, seed)
        atoms.calc = EMT()
        atoms.info["energy"] = atoms.get_potential_energy()
        atoms.arrays["forces"] = atoms.get_forces()
        atoms.calc = None
        frames.append(atoms)
    descriptor = BehlerParrinello(["Cu"], 4.0, g2=[(0.5, 0.0), (0.5, 2.5)], g4=[(0.05, 1, 1)])
    model = LinearPotential(descriptor, Ridge(alpha=1e-8)).fit(frames[:5])
    model.save("tiny.npz")
    test = frames[5]
    out = mliplib.load("tiny.npz").predict(test)
    try:
        paths.book_root()
        root_error = ""
    except RuntimeError as error:
        root_error = str(error)
    print(json.dumps({"mliplib": mliplib.__file__, "zno_book": zno_book.__file__,
                      "energy_error": abs(out["energy"] - test.info["energy"]) / len(test),
                      "forces_shape": list(out["forces"].shape), "n_literature": len(literature.values()),
                      "root_error": root_error}))
''')


def run(command, cwd, env=None):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_wheel_installs_and_works_outside_the_source_tree(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for package in ("mliplib", "zno_book"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", ".", "-w",
         str(tmp_path / "dist")], cwd=source)
    (wheel,) = (tmp_path / "dist").glob("mliplib-*.whl")
    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
        cwd=tmp_path)
    assert (site / "zno_book" / "literature.json").is_file()  # package data
    assert not (site / "tests").exists() and not (site / "book").exists()
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "fit_and_predict.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZNO_BOOK_ROOT")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    report = json.loads(run([sys.executable, "fit_and_predict.py"], cwd=work, env=env).strip().splitlines()[-1])
    # the installed copy was imported, not the source tree nor an editable install of it
    assert Path(report["mliplib"]).is_relative_to(site) and Path(report["zno_book"]).is_relative_to(site)
    assert report["energy_error"] < 0.05 and report["forces_shape"] == [4, 3]  # eV/atom on a held-out frame
    assert report["n_literature"] > 0
    assert "ZNO_BOOK_ROOT" in report["root_error"]
