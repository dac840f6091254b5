"""The generator's command line, ``python -m zno_book.reference``: a dry run reads the data folder and
writes nothing, a folder without a manifest is refused unless ``--new`` is given, ``--only`` and
``--max-priority`` select the tasks a dry run lists, and ``--workers`` must be at least 1. No DFT runs."""

import re
import shutil

import pytest

from zno_book.paths import data_dir
from zno_book.reference.__main__ import main
from zno_book.reference.plan import all_tasks

LISTED = re.compile(r"^  p(\d+) (\S+)", re.MULTILINE)


def tree(root):
    """Every path below ``root`` with its size and modification time."""
    return {p.relative_to(root): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def partial(tmp_path):
    """A data folder with the manifest and the convergence study only (every other task pending)."""
    root = tmp_path / "zno"
    root.mkdir()
    for name in ("manifest.json", "convergence.extxyz"):
        shutil.copy(data_dir() / name, root)
    return root


def test_dry_run_lists_pending_tasks_and_writes_nothing(partial, capsys):
    before = tree(partial)
    assert main(["dry-run", "--root", str(partial)]) == 0
    assert tree(partial) == before  # no .work/, no checkpoints/, nothing touched
    listed = LISTED.findall(capsys.readouterr().out)
    expected = [t.name for t in all_tasks() if not t.name.startswith("convergence/")]
    assert [name for _, name in listed] == expected


def test_dry_run_honours_only_and_max_priority(partial, capsys):
    main(["dry-run", "--root", str(partial), "--only", "eos/wurtzite"])
    out = capsys.readouterr().out
    names = [name for _, name in LISTED.findall(out)]
    assert names == [t.name for t in all_tasks() if t.name.startswith("eos/wurtzite")] and len(names) == 7
    assert "in this selection" in out
    main(["dry-run", "--root", str(partial), "--max-priority", "1"])
    listed = LISTED.findall(capsys.readouterr().out)
    tier1 = [t.name for t in all_tasks() if t.priority == 1]
    assert [name for _, name in listed] == tier1 and all(int(p) <= 1 for p, _ in listed)
    main(["dry-run", "--root", str(partial), "--only", "no/such/task"])
    assert LISTED.findall(capsys.readouterr().out) == []  # an empty selection, not the whole plan


def test_folder_without_manifest_needs_new(tmp_path, capsys):
    typo = tmp_path / "data" / "znoo"
    for command in ("dry-run", "run", "sample", "manifest"):
        with pytest.raises(SystemExit) as stop:
            main([command, "--root", str(typo)])
        assert stop.value.code == 2
        assert "no manifest.json" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing created
    assert main(["dry-run", "--root", str(typo), "--new"]) == 0  # a new data set: everything pending
    assert len(LISTED.findall(capsys.readouterr().out)) == len(all_tasks())
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_workers_must_be_a_positive_integer(partial, capsys, workers):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--root", str(partial), "--workers", workers])
    assert stop.value.code == 2
    assert "--workers" in capsys.readouterr().err
