"""Findings: rows are validated, keyed by the models and data, ranked, and refused when stale."""

import json

import pytest

from zno_book import findings
from zno_book.datasets import split_file
from zno_book.findings import MODEL_COLUMNS, StaleFindings, collect, ranks, record

LBP, PLIP, NNP = MODEL_COLUMNS


def row(**values):
    return {"test": "γ(10-10)", "unit": "J/m²", "better": "closer", "DFT": 1.0, **values}


def test_ranks_follow_the_rule_and_share_ties():
    assert ranks(row(**{LBP: 1.5, PLIP: 0.75, NNP: 1.25})) == {LBP: 3, PLIP: 1, NNP: 1}
    assert ranks({**row(**{LBP: 1.0, PLIP: 3.0}), "better": "higher"}) == {LBP: 2, PLIP: 1, NNP: None}
    assert ranks({**row(**{LBP: 1.0, PLIP: 3.0, NNP: 2.0}), "better": "lower"}) == {LBP: 1, PLIP: 3, NNP: 2}
    assert ranks({**row(**{LBP: 1.0}), "better": None}) == {LBP: None, PLIP: None, NNP: None}


def test_bad_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="better must be one of"):
        record("x", [row(better="smaller")], data=["train"], root=tmp_path)
    with pytest.raises(ValueError, match="needs a DFT value"):
        record("x", [row(DFT=float("nan"))], data=["train"], root=tmp_path)
    with pytest.raises(ValueError, match="needs 'test' and 'unit'"):
        record("x", [{**row(), "GAP": 1.0}], data=["train"], root=tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        record("x", [row()], data=["no_such_set"], root=tmp_path)


def test_record_collect_round_trip_and_staleness(tmp_path, monkeypatch):
    path = record("surfaces", [row(**{LBP: 0.5, NNP: float("nan")})], data=["surfaces"], root=tmp_path)
    mtime = path.stat().st_mtime_ns
    assert record("surfaces", [row(**{LBP: 0.5})], data=["surfaces"], root=tmp_path).stat().st_mtime_ns == mtime
    (got,) = collect(["surfaces"], root=tmp_path)
    assert got["chapter"] == "surfaces" and got[LBP] == 0.5 and got[NNP] is None and got[PLIP] is None
    with pytest.raises(StaleFindings, match="liquid: no findings recorded"):
        collect(["surfaces", "liquid"], root=tmp_path)
    # the same file, read when a data file or a model has changed since it was recorded
    content = json.loads(path.read_text())
    real_key = findings.current_key
    monkeypatch.setattr(findings, "current_key", lambda data: {**real_key(data), "data": {split_file(d): "0" * 64 for d in data}})
    with pytest.raises(StaleFindings, match="surfaces: recorded for other data surfaces.extxyz"):
        collect(["surfaces"], root=tmp_path)
    monkeypatch.setattr(findings, "current_key", real_key)
    content["key"]["models"]["nnp"] = "f" * 64
    path.write_text(json.dumps(content))
    with pytest.raises(StaleFindings, match="model nnp"):
        collect(["surfaces"], root=tmp_path)


def test_another_machines_rounding_does_not_rewrite_the_file(tmp_path):
    path = record("x", [row(**{LBP: 5.712653, PLIP: 0.5})], data=["train"], root=tmp_path)
    before = path.read_text()
    record("x", [row(**{LBP: 5.712654, PLIP: 0.5})], data=["train"], root=tmp_path)  # 2e-7 relative
    assert path.read_text() == before
    record("x", [row(**{LBP: 5.7127, PLIP: 0.5})], data=["train"], root=tmp_path)  # 8e-6 relative: a change
    assert json.loads(path.read_text())["rows"][0][LBP] == 5.7127
    record("x", [row(**{LBP: 5.7127, PLIP: None})], data=["train"], root=tmp_path)  # a number that disappears
    assert json.loads(path.read_text())["rows"][0][PLIP] is None
