"""The project package: one configurable root, and recipes that still build the shipped frames."""

import json

import numpy as np
import pytest

from mliplib.properties.bulk import DEFAULT_VOLUME_RATIOS
from zno_book import literature, paths
from zno_book.datasets import SPLITS, load_zno, split_file
from zno_book.reference.plan import EOS_VOLUMES
from zno_book.reference.recipes import build


def test_root_from_environment_and_arguments(tmp_path, monkeypatch):
    checkout = paths.book_root()
    assert (checkout / "pyproject.toml").is_file() and paths.data_dir() == checkout / "data" / "zno"
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    assert paths.book_root() == tmp_path
    assert paths.data_dir() == tmp_path / "data" / "zno"
    assert paths.models_dir() == tmp_path / "models" / "v1"
    assert paths.findings_dir() == tmp_path / "artefacts" / "v1" / "findings"
    assert paths.artefacts_dir(checkout) == checkout / "artefacts" / "v1"  # an argument wins
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="ZNO_BOOK_ROOT"):
        paths.data_dir()


def test_eos_scan_of_the_plan_is_the_library_default():
    """The bulk chapter compares the models' default E–V scans with the DFT scan point by point."""
    assert EOS_VOLUMES == DEFAULT_VOLUME_RATIOS


@pytest.mark.skipif(not (paths.data_dir() / "manifest.json").exists(), reason="no shipped data")
def test_recipes_build_the_shipped_frames():
    """Every stored frame's recipe (its own provenance) rebuilds the structure that DFT computed: the first
    frame of each task (the start of a relaxation), atoms, cell and positions to the file's precision."""
    files = json.loads((paths.data_dir() / "manifest.json").read_text())["files"]
    checked = 0
    for split in SPLITS:
        if split in ("train", "test") or split_file(split) not in files:  # all_train: both
            continue
        seen = set()
        for frame in load_zno(split, verify=False):
            task = frame.info["task"]
            if task in seen or frame.info.get("relax_step", 0) != 0:
                continue
            seen.add(task)
            atoms = build(json.loads(frame.info["recipe"]), root=paths.data_dir())
            assert list(atoms.numbers) == list(frame.numbers), task
            np.testing.assert_allclose(atoms.cell.array, frame.cell.array, atol=1e-6, err_msg=task)
            np.testing.assert_allclose(atoms.positions, frame.positions, atol=1e-5, err_msg=task)
            checked += 1
    assert checked == sum(entry["tasks"] for entry in files.values())  # every task of every data file


def test_literature_file_every_value_has_a_source_and_a_unit():
    sources, units = literature.sources(), literature.units()
    bib = (paths.book_root() / "book" / "references.bib").read_text()
    for key, source in sources.items():
        assert source["reference"] and source["note"], key
        if source["cite"] is not None:
            assert f"{{{source['cite']},\n" in bib, key  # a key of book/references.bib
    values = literature.values()
    assert len({(v.phase, v.quantity, v.kind) for v in values}) == len(values)  # one entry each
    for v in values:
        assert v.source in sources and v.quantity in units, v
        assert np.isfinite(v.low) and (np.isnan(v.high) or v.high >= v.low), v
    assert literature.ranges("pbe")["cscl", "de"][0] == 1.0 and np.isnan(literature.ranges("pbe")["cscl", "de"][1])
    with pytest.raises(ValueError, match="unknown kind"):
        literature.ranges("lda")


def test_literature_span_and_position():
    assert literature.span((3.28, 3.29), ".3f") == "3.280–3.290"
    assert literature.span((1.0, float("nan")), ".1f") == "≥ 1.0" and literature.span(literature.NONE, ".1f") == ""
    assert literature.span((5.2042, 5.2042), ".4f") == "5.2042"
    assert literature.position(3.285, (3.28, 3.29)) == "inside"
    assert literature.position(3.32, (3.28, 3.29)) == "+0.91 % above"
    assert literature.position(3.2797, (3.28, 3.29)) == "-0.009 % below"  # three decimals below 0.01 %
    assert literature.position(2.0, (1.0, float("nan"))) == "inside" and literature.position(0.5, literature.NONE) == ""
