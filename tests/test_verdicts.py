"""Verdicts: the declared claims are decided by their intervals, in the paper's direction or against it."""

import json

import numpy as np
import pandas as pd
import pytest

from mliplib.statistics import grouped_bootstrap_difference, grouped_bootstrap_interval
from zno_book import verdicts
from zno_book.constants import MODEL_KINDS, MODEL_LABELS
from zno_book.verdicts import CLAIMS, Claim, Part, claim_verdicts, evaluate, tied_ranks, write

RNG = np.random.default_rng(7)


def samples(centres, members=8, seeds=4, spread=1.0):
    """{kind: [values per member]} around the given centres (independent normal members and seeds)."""
    return {k: [c + spread * RNG.normal() + 0.5 * spread * RNG.normal(size=seeds) for _ in range(members)]
            for k, c in centres.items()}


def part(kinds, direction, tolerance=None, data=None):
    return Part("p", "metric", "u", lambda *_: data, kinds, direction, tolerance=tolerance)


def decide(p):
    return evaluate(None, None, None, [Claim("c", (p,))])[0]


def test_a_comparison_follows_its_interval():
    far_apart = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 10.0})
    assert decide(part(("nnp", "plip"), "greater", data=far_apart))["verdict"] == "reproduced"
    assert decide(part(("nnp", "plip"), "less", data=far_apart))["verdict"] == "contradicted"
    alike = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 0.0}, spread=3.0)
    row = decide(part(("nnp", "plip"), "greater", data=alike))
    assert row["interval"][0] < 0 < row["interval"][1] and row["verdict"] == "not resolved"
    assert row["n"] == {"NNP": {"members": 8, "values": 32}, "PLIP": {"members": 8, "values": 32}}


def test_an_agreement_compares_the_interval_with_the_tolerance():
    data = {k: [np.array([v]) for v in RNG.normal(0.5, 0.05, 8)] for k in MODEL_KINDS}
    assert decide(part(("plip",), "below", tolerance=1.0, data=data))["verdict"] == "reproduced"
    assert decide(part(("plip",), "below", tolerance=0.2, data=data))["verdict"] == "contradicted"
    assert decide(part(("plip",), "below", tolerance=0.5, data=data))["verdict"] == "not resolved"


def test_a_claim_needs_all_its_parts():
    rows = [{"claim": "a", "verdict": "reproduced"}, {"claim": "a", "verdict": "not resolved"},
            {"claim": "b", "verdict": "reproduced"}, {"claim": "c", "verdict": "reproduced"},
            {"claim": "c", "verdict": "contradicted"}, {"claim": "c", "verdict": "not resolved"}]
    assert claim_verdicts(rows) == {"a": "not resolved", "b": "reproduced", "c": "contradicted"}


def test_ties_inside_the_uncertainty_share_a_rank():
    data = samples({"linear_bp": 0.0, "plip": 0.3, "nnp": 20.0})
    assert tied_ranks(data, lower_is_better=True) == {"linear_bp": 1, "plip": 1, "nnp": 3}
    assert tied_ranks(data, lower_is_better=False) == {"linear_bp": 2, "plip": 2, "nnp": 1}


def test_the_grouped_bootstrap_counts_members_not_seeds():
    # 2 members × 1000 seeds: the seeds say nothing about a new member, so the interval stays wide
    groups = [np.full(1000, 0.0) + RNG.normal(0, 0.01, 1000), np.full(1000, 10.0) + RNG.normal(0, 0.01, 1000)]
    wide = grouped_bootstrap_interval(groups, np.mean)
    assert wide.low < 1.0 and wide.high > 9.0
    same = [RNG.normal(0, 1, 5) for _ in range(8)]
    interval, p = grouped_bootstrap_difference(same, same, np.mean)
    assert interval.low <= 0 <= interval.high and p > 0.5


def test_the_declared_claims_are_the_papers_seven_with_tests():
    assert len(CLAIMS) == 7 and all(c.parts for c in CLAIMS)
    for claim in CLAIMS:
        for p in claim.parts:
            assert p.direction in (("below",) if len(p.kinds) == 1 else ("less", "greater"))
            assert (p.tolerance is not None) == (len(p.kinds) == 1) and p.unit and p.metric
            assert set(p.kinds) <= set(MODEL_KINDS)


def test_metrics_read_the_campaign_table():
    rows, dft = [], []
    for kind, scale in (("linear_bp", 1.02), ("plip", 1.001), ("nnp", 1.005)):
        for m in range(3):
            for metric in verdicts.LATTICE:
                rows.append((kind, f"m{m}", "bulk", -1, metric, 4.0 * scale, "Å"))
            rows += [(kind, f"m{m}", "liquid/seed0", 0, "survival_fs", 100.0 * m, "fs"),
                     (kind, f"m{m}", "liquid/seed1", 1, "survival_fs", 100.0 * m + 50, "fs")]
    dft = pd.DataFrame([("bulk", metric, 4.0, "Å") for metric in verdicts.LATTICE],
                       columns=["test", "metric", "value", "unit"])
    campaign = pd.DataFrame(rows, columns=["kind", "member", "test", "seed", "metric", "value", "unit"])
    lattice = verdicts.lattice_error(campaign, dft, None)
    assert np.allclose([v[0] for v in lattice["linear_bp"]], 2.0) and np.allclose(lattice["plip"][0], 0.1)
    survival = verdicts.liquid_survival(campaign, dft, None)
    assert [list(v) for v in survival["nnp"]] == [[0.0, 50.0], [100.0, 150.0], [200.0, 250.0]]
    with pytest.raises(ValueError, match="no DFT value"):
        verdicts.surface_error(campaign, dft, None)


def test_written_file_is_a_list_of_parts(tmp_path):
    data = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 10.0})
    rows = evaluate(None, None, None, [Claim("c", (part(("nnp", "plip"), "greater", data=data),))])
    path = write(rows, tmp_path / "verdicts.json", {"ensemble": "test"})
    content = json.loads(path.read_text())
    assert isinstance(content, list) and content[0]["claim_verdict"] == "reproduced"
    assert {"claim", "metric", "direction", "test", "n", "effect", "interval", "p", "verdict"} <= set(content[0])
    assert set(content[0]["n"]) == {MODEL_LABELS["nnp"], MODEL_LABELS["plip"]}
