"""The paper's claims as tests declared before computing, and their verdicts (issue 17, item 7).

Kandy et al. (PRB 107, 174106 (2023)) state seven claims in their abstract. :data:`CLAIMS` writes each
one down as comparisons that can be decided by data: the metric (one number per trained member, or one
per member and MD seed), the direction the paper asserts, the statistical test, and — for "agrees well"
— the tolerance. This table is code, committed before the ensembles' results exist (its git history is
the record), so a verdict cannot be tuned after the fact.

Tests:

- **comparison** of two kinds: the difference of a statistic (the median over members × seeds, or the
  mean for survival times and 0/1 outcomes) with a two-stage bootstrap interval
  (:func:`mliplib.statistics.grouped_bootstrap_difference`: members with replacement, then seeds within
  them, since the seeds of one member share its errors) and its two-sided bootstrap p-value; a
  Mann–Whitney test of the members' mean values is reported beside it;
- **agreement** of one kind with DFT: the median over members of the member's error, with a bootstrap
  interval over members, against the declared tolerance.

Outcomes of a part: *reproduced* — the interval lies entirely on the paper's side (comparison: excludes
0 in the paper's direction; agreement: below the tolerance); *contradicted* — entirely on the other side;
*not resolved* — otherwise. A claim is reproduced when all its parts are, contradicted when any part is,
and not resolved otherwise. With some twenty parts at 95 %, about one may be decided by chance: the
intervals are given so a reader can judge each.

Inputs are tidy tables: the campaign results (:func:`zno_book.campaign.collect`: kind, member, test,
seed, metric, value, unit), their DFT values (:func:`zno_book.campaign.dft_reference`), and each
member's errors against DFT frames (:func:`member_errors`: kind, member, set, quantity, value, unit) on
the held-out set (``load_zno("heldout")``, never used for any choice) and on the frames far from the
training data (:data:`FAR_SPLITS`). :func:`evaluate` returns the verdict table; :func:`write` stores it as
``verdicts.json`` (a list of objects with ``claim``, ``part``, ``metric``, ``unit``, ``direction``,
``test``, ``n`` per kind, ``effect``, ``interval``, ``p``, ``verdict`` and ``claim_verdict``);
:func:`tied_ranks` orders the kinds on a metric, with differences inside the uncertainty counted as ties.

A part whose inputs are missing is *not resolved*, with its ``reason``, never dropped: a data set it
needs (``Part.needs``) that does not exist or is too small (the held-out set needs
:data:`HELDOUT_MIN_FRAMES` frames with non-zero forces), or fewer than :data:`MIN_MEMBERS` members of a
kind with all the values its test needs: one per member, or for an MD test its runs per seed
(``Part.runs_per_seed``) for each of :data:`MIN_SEEDS` seeds. Only complete members enter a test, so a
campaign stopped half-way decides nothing on the members and seeds it happened to reach.

Command line (:func:`compute` gathers the inputs of an ensemble from the book's root,
:func:`zno_book.paths.book_root`; it refuses, naming the command to run, when the ensembles or the
campaign's results do not exist yet)::

    python -m zno_book.verdicts --ensemble v2     # → artefacts/v2/findings/verdicts.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

import mliplib
from mliplib.statistics import grouped_bootstrap_difference, grouped_bootstrap_interval, mann_whitney
from zno_book import campaign
from zno_book.clusters import CLUSTER_MD
from zno_book.constants import MODEL_KINDS, MODEL_LABELS
from zno_book.datasets import SPLITS, load_zno, split_file
from zno_book.paths import book_root, data_dir

__all__ = ["CLAIMS", "FAR_SPLITS", "HELDOUT_MIN_FRAMES", "HELDOUT_SPLIT", "MIN_MEMBERS", "MIN_SEEDS", "Claim",
           "MissingResults", "Part", "campaign_results", "claim_verdicts", "compute", "ensemble_members", "evaluate",
           "heldout_frames", "heldout_problem", "main", "member_errors", "tied_ranks", "verdicts_path", "write"]

#: Resamples of every bootstrap, and its seed (the same inputs give the same verdicts on any machine).
N_RESAMPLES = 4000
SEED = 0
CONFIDENCE = 0.95
VERDICTS = ("reproduced", "contradicted", "not resolved")
#: Members of a kind with all the values a test needs (fewer: the part is not resolved; issue 17: n ≥ 8).
MIN_MEMBERS = 8
#: MD seeds per member that an MD test needs (issue 17: ≥ 4).
MIN_SEEDS = len(campaign.SEEDS)
#: The held-out set (issue 17, item 2), never used for any choice, and its size below which the parts
#: that need it are not resolved: frames whose largest DFT force component exceeds NONZERO_FORCE (eV/Å,
#: 5 × the data's force convergence; frames at a symmetric site have none).
HELDOUT_SPLIT = "heldout"
#: Frames with non-zero forces the held-out set needs before its claims are tested.
HELDOUT_MIN_FRAMES = 60
NONZERO_FORCE = 0.01
#: DFT frames far from the training data: the clusters and the liquids (no crystal, no slab).
FAR_SPLITS = ("nanoparticles", "liquid")
#: The campaign's liquid test of the paper's claim (36 atoms, 4.9 g/cm³, 3000 K).
LIQUID_TEST = campaign.REFERENCE_LIQUID

Samples = dict  # kind -> list of numpy arrays, one per member (its values: one, or one per MD seed)


# ---------------------------------------------------------------------------------------- the metrics


def _per_member(frame: pd.DataFrame, test_prefix: str, metric: str) -> Samples:
    """Values of ``metric`` in the tests starting with ``test_prefix``, grouped by kind and member."""
    rows = frame[frame["test"].str.startswith(test_prefix) & (frame["metric"] == metric)]
    return {kind: [g["value"].to_numpy(float) for _, g in rows[rows["kind"] == kind].groupby("member", sort=True)]
            for kind in MODEL_KINDS}


def _relative_error(frame: pd.DataFrame, dft: pd.DataFrame, test: str, metrics: Sequence[str],
                    missing: float) -> Samples:
    """Per member: the largest |model / DFT − 1| × 100 (%) over ``metrics`` of ``test``; a metric the member
    did not produce (an unstable phase, a slab that did not stay intact) counts as ``missing`` %."""
    reference = dft[dft["test"] == test].set_index("metric")["value"]
    absent = [m for m in metrics if m not in reference.index]
    if absent:
        raise ValueError(f"no DFT value of {absent} in the reference table (test {test!r})")
    rows = frame[frame["test"] == test]
    out = {}
    for kind in MODEL_KINDS:
        members = []
        for _, g in rows[rows["kind"] == kind].groupby("member", sort=True):
            value = g.set_index("metric")["value"]
            errors = [100.0 * abs(value[m] / reference[m] - 1.0) if m in value.index else missing for m in metrics]
            members.append(np.array([max(errors)]))
        out[kind] = members
    return out


LATTICE = ("a:wurtzite", "c:wurtzite", "a:zincblende", "a:rocksalt")
SURFACES = ("gamma_relaxed:10-10", "gamma_relaxed:11-20")
#: the error assigned to a property a member could not produce (unstable phase, slab not intact), %
FAILED_PROPERTY = 100.0


def lattice_error(frame, dft, errors) -> Samples:
    """Largest |relative error| of the lattice constants (wurtzite a, c; zinc blende a; rocksalt a), %.

    Parameters
    ----------
    frame : pandas.DataFrame
        Campaign results (kind, member, test, seed, metric, value, unit).
    dft : pandas.DataFrame
        DFT values of the campaign's metrics (test, metric, value, unit).
    errors : pandas.DataFrame
        Unused (the signature of ``Part.extract``).

    Returns
    -------
    dict
        {kind: [array of shape (1,) per member, by member]}: the member's largest |model / DFT − 1| × 100 of
        the ``bulk`` test's ``a:`` and ``c:`` metrics, %; a constant it did not produce (an unstable phase)
        counts as :data:`FAILED_PROPERTY`.

    Raises
    ------
    ValueError
        If ``dft`` has no value of one of the lattice constants.
    """
    return _relative_error(frame, dft, "bulk", LATTICE, FAILED_PROPERTY)


def surface_error(frame, dft, errors) -> Samples:
    """Largest |relative error| of the relaxed surface energies γ(10-10), γ(11-20), % (not intact: 100 %).

    Parameters
    ----------
    frame : pandas.DataFrame
        Campaign results (kind, member, test, seed, metric, value, unit).
    dft : pandas.DataFrame
        DFT values of the campaign's metrics (test, metric, value, unit).
    errors : pandas.DataFrame
        Unused (the signature of ``Part.extract``).

    Returns
    -------
    dict
        {kind: [array of shape (1,) per member, by member]}: the member's largest |model / DFT − 1| × 100 of
        the ``surfaces`` test's ``gamma_relaxed:`` metrics, %; a surface energy it did not produce (slab not
        intact) counts as :data:`FAILED_PROPERTY`.

    Raises
    ------
    ValueError
        If ``dft`` has no value of one of the two surface energies.
    """
    return _relative_error(frame, dft, "surfaces", SURFACES, FAILED_PROPERTY)


def vibration_error(frame, dft, errors) -> Samples:
    """1 − overlap of the wurtzite phonon DOS with DFT's (on the DFT structures), in %; a member whose
    phonons task gave no overlap (non-finite forces) counts as :data:`FAILED_PROPERTY`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Campaign results (kind, member, test, seed, metric, value, unit).
    dft : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    errors : pandas.DataFrame
        Unused (the signature of ``Part.extract``).

    Returns
    -------
    dict
        {kind: [array of shape (1,) per member, by member]}: 100 × (1 − the ``phonons`` test's
        ``overlap_dft:dft_structures``), %.
    """
    rows = frame[frame["test"] == "phonons"]
    out = {}
    for kind in MODEL_KINDS:
        members = []
        for _, g in rows[rows["kind"] == kind].groupby("member", sort=True):
            overlap = g.loc[g["metric"] == "overlap_dft:dft_structures", "value"].to_numpy(float)
            members.append(np.array([100.0 * (1.0 - overlap[0]) if overlap.size else FAILED_PROPERTY]))
        out[kind] = members
    return out


CRYSTAL_TESTS = ("bulk", "surfaces", "phonons")


def crystal_score(frame, dft, errors) -> Samples:
    """Mean of the lattice, surface and vibration errors of a member, % (the members with all three tests).

    Parameters
    ----------
    frame : pandas.DataFrame
        Campaign results (kind, member, test, seed, metric, value, unit); only the members with rows of
        all three of ``bulk``, ``surfaces`` and ``phonons`` are scored.
    dft : pandas.DataFrame
        DFT values of the campaign's metrics (test, metric, value, unit).
    errors : pandas.DataFrame
        Unused (the signature of ``Part.extract``).

    Returns
    -------
    dict
        {kind: [array of shape (1,) per member, by member]}: the mean of :func:`lattice_error`,
        :func:`surface_error` and :func:`vibration_error`, %.

    Raises
    ------
    ValueError
        If ``dft`` lacks a lattice constant or surface energy (as :func:`lattice_error`).
    """
    tests = frame[frame["test"].isin(CRYSTAL_TESTS)].groupby(["kind", "member"])["test"].nunique()
    complete = tests[tests == len(CRYSTAL_TESTS)].index
    frame = frame[pd.MultiIndex.from_frame(frame[["kind", "member"]]).isin(complete)]
    parts = [lattice_error(frame, dft, errors), surface_error(frame, dft, errors),
             vibration_error(frame, dft, errors)]
    return {kind: [np.array([np.mean([p[kind][m][0] for p in parts])]) for m in range(len(parts[0][kind]))]
            for kind in MODEL_KINDS}


def _errors(errors: pd.DataFrame, data_set: str, quantity: str) -> Samples:
    rows = errors[(errors["set"] == data_set) & (errors["quantity"] == quantity)]
    if rows.empty:
        raise ValueError(f"no member errors on the {data_set!r} set for {quantity!r}")
    return {kind: [g["value"].to_numpy(float) for _, g in rows[rows["kind"] == kind].groupby("member", sort=True)]
            for kind in MODEL_KINDS}


def heldout_forces(frame, dft, errors) -> Samples:
    """Force RMSE on the held-out DFT frames (never used for any choice), meV/Å.

    Parameters
    ----------
    frame : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    dft : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    errors : pandas.DataFrame
        Members' errors against DFT frames (kind, member, set, quantity, value, unit), :func:`member_errors`.

    Returns
    -------
    dict
        {kind: [array of shape (1,) per member, by member]}: the ``forces_rmse`` on the set ``"heldout"``,
        meV/Å.

    Raises
    ------
    ValueError
        If ``errors`` has no force RMSE on the held-out set.
    """
    return _errors(errors, "heldout", "forces_rmse")


def far_forces(frame, dft, errors) -> Samples:
    """Force RMSE on the DFT frames far from the training data (nanoparticles, liquids), meV/Å.

    Parameters
    ----------
    frame : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    dft : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    errors : pandas.DataFrame
        Members' errors against DFT frames (kind, member, set, quantity, value, unit), :func:`member_errors`.

    Returns
    -------
    dict
        {kind: [array of shape (1,) per member, by member]}: the ``forces_rmse`` on the set ``"far"``
        (:data:`FAR_SPLITS`), meV/Å.

    Raises
    ------
    ValueError
        If ``errors`` has no force RMSE on the far set.
    """
    return _errors(errors, "far", "forces_rmse")


def unphysical_optima(frame, dft, errors) -> Samples:
    """Fraction of a member's cluster optima flagged unphysical (the nanoparticles chapter's criteria).

    Parameters
    ----------
    frame : pandas.DataFrame
        Campaign results (kind, member, test, seed, metric, value, unit).
    dft : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    errors : pandas.DataFrame
        Unused (the signature of ``Part.extract``).

    Returns
    -------
    dict
        {kind: [array of shape (1,) per member, by member]}: the mean of the ``clusters`` test's 0/1
        ``flagged:<cluster>`` values (``flagged:any``, a count, left out), dimensionless.
    """
    rows = frame[(frame["test"] == "clusters") & frame["metric"].str.startswith("flagged:")
                 & (frame["metric"] != "flagged:any")]
    return {kind: [np.array([g["value"].mean()]) for _, g in rows[rows["kind"] == kind].groupby("member", sort=True)]
            for kind in MODEL_KINDS}


def cluster_md_failures(frame, dft, errors) -> Samples:
    """Per member, one 0/1 per cluster-MD run (clusters × temperature schedules × seeds): 1 if not intact.

    Parameters
    ----------
    frame : pandas.DataFrame
        Campaign results (kind, member, test, seed, metric, value, unit); the ``intact`` metric of the
        tests starting with ``cluster_md`` is read.
    dft : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    errors : pandas.DataFrame
        Unused (the signature of ``Part.extract``).

    Returns
    -------
    dict
        {kind: [array of shape (n_runs,) per member, by member]}: 1 − ``intact``.
    """
    intact = _per_member(frame, "cluster_md", "intact")
    return {kind: [1.0 - v for v in members] for kind, members in intact.items()}


def liquid_survival(frame, dft, errors) -> Samples:
    """Per member, one survival time per MD seed of the reference liquid (:data:`LIQUID_TEST`) at the
    target temperature, fs (censored at the run's end, so the mean is the restricted mean survival time).

    Parameters
    ----------
    frame : pandas.DataFrame
        Campaign results (kind, member, test, seed, metric, value, unit); the ``survival_fs`` of the
        tests starting with the reference liquid's name is read.
    dft : pandas.DataFrame
        Unused (the signature of ``Part.extract``).
    errors : pandas.DataFrame
        Unused (the signature of ``Part.extract``).

    Returns
    -------
    dict
        {kind: [array of shape (n_seeds,) per member, by member]}: survival times, fs.
    """
    return _per_member(frame, LIQUID_TEST, "survival_fs")


# ---------------------------------------------------------------------------------------- the claims


@dataclasses.dataclass(frozen=True)
class Part:
    """One test of a claim.

    Attributes
    ----------
    name : str
        What is compared, e.g. "PLIP vs NNP".
    metric : str
        What the number is.
    unit : str
    extract : callable
        ``extract(campaign, dft, errors) -> {kind: [values of member 1, ...]}``.
    kinds : tuple of str
        Two kinds (a comparison: a − b) or one (an agreement with DFT).
    direction : str
        The paper's assertion: for a comparison, "less" (a's statistic below b's) or "greater"; for an
        agreement, "below" the tolerance.
    statistic : {"median", "mean"}
        Over the pooled members × seeds.
    tolerance : float, optional
        For an agreement: the largest error, in ``unit``, that "agrees well" means.
    needs : tuple of str
        The sets of DFT frames of the members' errors it reads ("heldout", "far"): where one is
        unavailable, the part is not resolved (see :func:`evaluate`).
    runs_per_seed : int
        For an MD test, the runs of a member per MD seed (a member is complete with ``runs_per_seed ×
        min_seeds`` values); 0 for a test with one value per member.
    """

    name: str
    metric: str
    unit: str
    extract: Callable
    kinds: tuple
    direction: str
    statistic: str = "median"
    tolerance: float | None = None
    needs: tuple = ()
    runs_per_seed: int = 0

    def values_needed(self, min_seeds: int) -> int:
        """The values a member needs to enter the test: one, or ``runs_per_seed × min_seeds``."""
        return self.runs_per_seed * min_seeds if self.runs_per_seed else 1

    @property
    def test(self) -> str:
        """The test, in words."""
        if len(self.kinds) == 1:
            return (f"median over members with a {100 * CONFIDENCE:.0f} % bootstrap interval "
                    f"(members resampled), against the tolerance {self.tolerance:g} {self.unit}")
        return (f"difference of the {self.statistic} over members × seeds, two-stage bootstrap "
                f"{100 * CONFIDENCE:.0f} % interval (members, then seeds within) and p; Mann–Whitney on "
                f"the members' means beside it")


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim of the paper's abstract and the parts that decide it."""

    claim: str
    parts: tuple


LBP, PLIP, NNP = "linear_bp", "plip", "nnp"


def _vs(a: str, b: str) -> str:
    return f"{MODEL_LABELS[a]} vs {MODEL_LABELS[b]}"


def _agreement(kind: str, what: str, metric: str, extract: Callable, tolerance: float) -> Part:
    return Part(f"{MODEL_LABELS[kind]}: {what}", metric, "%", extract, (kind,), "below", tolerance=tolerance)


#: The claims, declared before the ensembles' results were computed (see the module docstring).
CLAIMS = (
    Claim("crystals: all three agree well with DFT", tuple(
        _agreement(kind, what, metric, extract, tolerance) for kind in MODEL_KINDS
        for what, metric, extract, tolerance in (
            ("lattice", "largest |error| of a (wurtzite, zinc blende, rocksalt) and c (wurtzite)", lattice_error,
             1.0),
            ("surfaces", "largest |error| of the relaxed γ(10-10), γ(11-20) (not intact: 100 %)", surface_error,
             20.0),
            ("vibrations", "1 − overlap of the wurtzite phonon DOS with DFT's", vibration_error, 20.0)))),
    Claim("crystals: linear-BP the least accurate", tuple(
        Part(_vs(LBP, other), "force RMSE on the held-out DFT frames", "meV/Å", heldout_forces, (LBP, other),
             "greater", needs=("heldout",)) for other in (PLIP, NNP))),
    Claim("crystals: NNP and PLIP the best", tuple(
        Part(_vs(kind, LBP), "crystal score: mean of the lattice, surface and vibration errors", "%",
             crystal_score, (kind, LBP), "less") for kind in (NNP, PLIP))),
    Claim("nanoparticles: NNP poor", tuple(
        Part(_vs(NNP, other) + f" ({what})", metric, "1", extract, (NNP, other), "greater", statistic="mean",
             runs_per_seed=runs)
        for what, metric, extract, runs in (
            ("optimisation", "fraction of cluster optima flagged unphysical", unphysical_optima, 0),
            ("MD", "fraction of cluster-MD runs not intact (300 K, 1000 K, heating ramp)", cluster_md_failures,
             len(campaign.CLUSTERS) * len(CLUSTER_MD)))
        for other in (PLIP, LBP))),
    Claim("liquid: linear models better than the NNP", tuple(
        Part(_vs(kind, NNP), "survival time of the liquid at 3000 K (restricted mean)", "fs", liquid_survival,
             (kind, NNP), "greater", statistic="mean", runs_per_seed=1) for kind in (PLIP, LBP))),
    Claim("away from the data: PLIP better than the NNP", (
        Part(_vs(PLIP, NNP), "force RMSE on the DFT frames far from the training data", "meV/Å", far_forces,
             (PLIP, NNP), "less", needs=("far",)),)),
    Claim("away from the data: linear-BP better than the NNP", (
        Part(_vs(LBP, NNP), "force RMSE on the DFT frames far from the training data", "meV/Å", far_forces,
             (LBP, NNP), "less", needs=("far",)),)),
)


# ---------------------------------------------------------------------------------------- the tests

STATISTICS = {"median": np.median, "mean": np.mean}


def _n(samples: Samples, kinds: Sequence[str]) -> dict:
    return {MODEL_LABELS[k]: _sizes(samples[k]) for k in kinds}


def _sizes(members: list) -> dict:
    return {"members": len(members), "values": int(sum(v.size for v in members))}


def _agreement_row(part: Part, samples: Samples) -> dict:
    (kind,) = part.kinds
    members = samples[kind]
    per_member = [np.array([np.median(v)]) for v in members]
    interval = grouped_bootstrap_interval(per_member, np.median, CONFIDENCE, N_RESAMPLES, SEED)
    if interval.high < part.tolerance:
        verdict = "reproduced"
    elif interval.low > part.tolerance:
        verdict = "contradicted"
    else:
        verdict = "not resolved"
    return {"n": _n(samples, part.kinds), "effect": interval.estimate, "interval": [interval.low, interval.high],
            "p": None, "tolerance": part.tolerance, "verdict": verdict}


def _comparison_row(part: Part, samples: Samples) -> dict:
    a, b = part.kinds
    statistic = STATISTICS[part.statistic]
    interval, p = grouped_bootstrap_difference(samples[a], samples[b], statistic, CONFIDENCE, N_RESAMPLES, SEED)
    sign = {"less": -1.0, "greater": 1.0}[part.direction]
    if interval.excludes(0.0):
        verdict = "reproduced" if sign * interval.estimate > 0 else "contradicted"
    else:
        verdict = "not resolved"
    means = [np.array([v.mean() for v in samples[k]]) for k in (a, b)]
    mw = mann_whitney(*means)
    return {"n": _n(samples, part.kinds), "effect": interval.estimate,
            "interval": [interval.low, interval.high], "p": p,
            "statistic": {MODEL_LABELS[k]: float(statistic(np.concatenate(samples[k]))) for k in (a, b)},
            "mann_whitney": {"p": mw.p, "probability_a_greater": mw.probability}, "verdict": verdict}


def _unresolved_row(part: Part, samples: Samples, reason: str) -> dict:
    return {"n": _n({k: samples.get(k, []) for k in part.kinds}, part.kinds), "effect": None, "interval": None,
            "p": None, **({"tolerance": part.tolerance} if len(part.kinds) == 1 else {}), "verdict": "not resolved",
            "reason": reason}


def _complete(part: Part, samples: Samples, min_seeds: int) -> Samples:
    """The members of each of the part's kinds with all the values the test needs."""
    needed = part.values_needed(min_seeds)
    return {k: [v for v in samples.get(k, []) if v.size >= needed] for k in part.kinds}


def _decide(part: Part, campaign: pd.DataFrame, dft: pd.DataFrame, errors: pd.DataFrame,
            unavailable: dict, min_members: int, min_seeds: int) -> dict:
    """The result of one part (see :func:`evaluate`)."""
    reasons = [f"{name}: {unavailable[name]}" for name in part.needs if name in unavailable]
    if reasons:
        return _unresolved_row(part, {}, "; ".join(reasons))
    samples = part.extract(campaign, dft, errors)
    complete = _complete(part, samples, min_seeds)
    few = {MODEL_LABELS[k]: len(complete[k]) for k in part.kinds if len(complete[k]) < min_members}
    if few:
        what = (f"members with all {part.values_needed(min_seeds)} runs ({min_seeds} MD seeds × "
                f"{part.runs_per_seed})" if part.runs_per_seed else "members with values of this metric")
        return _unresolved_row(part, samples, f"{what}: {few}, at least {min_members} per kind needed (run the "
                                              "missing campaign tests: python -m zno_book.campaign run)")
    return _agreement_row(part, complete) if len(part.kinds) == 1 else _comparison_row(part, complete)


def evaluate(campaign: pd.DataFrame, dft: pd.DataFrame, errors: pd.DataFrame, claims: Sequence[Claim] = CLAIMS,
             unavailable: dict | None = None, min_members: int = MIN_MEMBERS,
             min_seeds: int = MIN_SEEDS) -> list[dict]:
    """Decide every part of every claim.

    Parameters
    ----------
    campaign : pandas.DataFrame
        Tidy campaign results (kind, member, test, seed, metric, value, unit).
    dft : pandas.DataFrame
        DFT values of the campaign's metrics (test, metric, value, unit).
    errors : pandas.DataFrame
        Members' errors against DFT frames (kind, member, set, quantity, value, unit), see
        :func:`member_errors`.
    claims : sequence of Claim
        The declared claims.
    unavailable : dict, optional
        {set of DFT frames (``Part.needs``): why it cannot be used}; the parts that need it are not
        resolved, with that reason.
    min_members, min_seeds : int
        Complete members per kind a part needs, and the MD seeds that make an MD member complete
        (default :data:`MIN_MEMBERS`, :data:`MIN_SEEDS`).

    Returns
    -------
    list of dict
        One row per part: claim, part, metric, unit, direction, test, n (per kind: members and values),
        effect, interval, p, verdict (and, for comparisons, the statistic of each kind and the
        Mann–Whitney cross-check; for agreements, the tolerance). A part that could not be tested has
        effect, interval and p None, verdict "not resolved" and a ``reason``: a set it needs is
        unavailable, or a kind has fewer than ``min_members`` complete members (only those are tested).
    """
    rows = []
    for claim in claims:
        for part in claim.parts:
            result = _decide(part, campaign, dft, errors, unavailable or {}, min_members, min_seeds)
            direction = (f"below {part.tolerance:g} {part.unit}" if len(part.kinds) == 1 else
                         f"{MODEL_LABELS[part.kinds[0]]} {'<' if part.direction == 'less' else '>'} "
                         f"{MODEL_LABELS[part.kinds[1]]}")
            rows.append({"claim": claim.claim, "part": part.name, "metric": part.metric, "unit": part.unit,
                         "direction": direction, "test": part.test, **result})
    return rows


def claim_verdicts(rows: Sequence[dict]) -> dict:
    """Claim → its verdict: reproduced if every part is, contradicted if any part is, else not resolved.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`evaluate`.

    Returns
    -------
    dict
        {claim: verdict}, in the order of the rows.
    """
    out = {}
    for row in rows:
        out.setdefault(row["claim"], []).append(row["verdict"])
    return {claim: ("reproduced" if all(v == "reproduced" for v in parts) else
                    "contradicted" if "contradicted" in parts else "not resolved")
            for claim, parts in out.items()}


def tied_ranks(samples: Samples, lower_is_better: bool = True, statistic: str = "median") -> dict:
    """Rank the kinds on one metric, counting differences inside the uncertainty as ties.

    A kind's rank is 1 + the number of kinds that beat it significantly (the two-stage bootstrap interval
    of the difference excludes 0), so kinds that cannot be told apart share a rank.

    Parameters
    ----------
    samples : dict
        {kind: [values of member 1, ...]} as the metric functions return.
    lower_is_better : bool
        Direction of the metric.
    statistic : {"median", "mean"}

    Returns
    -------
    dict
        {kind: rank}.
    """
    kinds = [k for k in MODEL_KINDS if k in samples]
    beats = {k: 0 for k in kinds}
    for a in kinds:
        for b in kinds:
            if a == b:
                continue
            interval, _ = grouped_bootstrap_difference(samples[b], samples[a], STATISTICS[statistic], CONFIDENCE,
                                                       N_RESAMPLES, SEED)  # b − a
            b_beats_a = interval.high < 0 if lower_is_better else interval.low > 0
            beats[a] += int(b_beats_a)
    return {k: 1 + beats[k] for k in kinds}


# ---------------------------------------------------------------------------------------- errors vs DFT


def member_errors(members: dict, sets: dict) -> pd.DataFrame:
    """Each member's energy and force RMSE against DFT frames.

    Parameters
    ----------
    members : dict
        {kind: [(member name, potential), ...]}.
    sets : dict
        {set name: list of ase.Atoms with ``info["energy"]`` (eV) and ``arrays["forces"]`` (eV/Å)}.

    Returns
    -------
    pandas.DataFrame
        Columns kind, member, set, quantity ("energy_rmse" in meV/atom, "forces_rmse" in meV/Å), value, unit.
    """
    rows = []
    for kind, named in members.items():
        for name, model in named:
            for set_name, frames in sets.items():
                de, df = [], []
                for atoms in frames:
                    out = model.predict(atoms)
                    de.append((out["energy"] - atoms.info["energy"]) / len(atoms))
                    df.append((out["forces"] - atoms.arrays["forces"]).ravel())
                rows.append((kind, name, set_name, "energy_rmse", 1e3 * float(np.sqrt(np.mean(np.square(de)))),
                             "meV/atom"))
                rows.append((kind, name, set_name, "forces_rmse",
                             1e3 * float(np.sqrt(np.mean(np.square(np.concatenate(df))))), "meV/Å"))
    return pd.DataFrame(rows, columns=["kind", "member", "set", "quantity", "value", "unit"])


# ---------------------------------------------------------------------------------------- the inputs


class MissingResults(FileNotFoundError):
    """An input of the verdicts has not been computed yet; the message names the command that makes it."""


def ensemble_members(ensemble: str = "v2") -> dict:
    """The members of every kind of ``ensemble``, with the campaign's names.

    Parameters
    ----------
    ensemble : str
        A key of :data:`zno_book.campaign.ENSEMBLES` ("v2": the trained ensembles) or a loader
        ``"module:function"``.

    Returns
    -------
    dict
        {kind: [(member id ``m<index>-<digest[:8]>``, mliplib potential), ...]}.

    Raises
    ------
    MissingResults
        A kind's ensemble has not been trained.
    """
    out = {}
    for kind in MODEL_KINDS:
        try:
            out[kind] = list(zip(campaign.member_ids(ensemble, kind), campaign.members(ensemble, kind)))
        except FileNotFoundError as error:
            raise MissingResults(f"the {ensemble!r} ensemble of {kind} does not exist yet ({error}). Train the "
                                 "ensembles with `python scripts/train_ensembles.py`, run the campaign with "
                                 f"`python -m zno_book.campaign run --ensemble {ensemble}`, then this command "
                                 "again") from error
    return out


def campaign_results(ensemble: str, members: dict) -> tuple[pd.DataFrame, list[str]]:
    """The campaign's collected table (:func:`zno_book.campaign.collect`) of the current members.

    Parameters
    ----------
    ensemble : str
        The ensemble's name.
    members : dict
        :func:`ensemble_members`.

    Returns
    -------
    table : pandas.DataFrame
        The rows of the current members.
    stale : list of str
        ``<kind>/<member>`` of stored results whose member is no longer in the ensemble (left out).

    Raises
    ------
    MissingResults
        No stored result of a current member.
    """
    folder = campaign.campaign_dir(ensemble)
    run = f"`python -m zno_book.campaign run --ensemble {ensemble}`"
    table = campaign.collect(ensemble)
    if table.empty:
        raise MissingResults(f"no campaign results of the {ensemble!r} ensemble in {folder}: run the campaign with "
                             f"{run} (resumable), then this command again")
    current = {(kind, name) for kind, named in members.items() for name, _ in named}
    keep = np.array([(kind, member) in current for kind, member in zip(table["kind"], table["member"])])
    stale = sorted({f"{kind}/{member}" for kind, member in zip(table["kind"][~keep], table["member"][~keep])})
    if not keep.any():
        raise MissingResults(f"the campaign results in {folder} are all of members no longer in the {ensemble!r} "
                             f"ensemble ({', '.join(stale)}: retrained?); run the campaign again with {run}")
    return table[keep].reset_index(drop=True), stale


def heldout_problem(frames: list[Atoms], min_frames: int = HELDOUT_MIN_FRAMES,
                    force_floor: float = NONZERO_FORCE) -> str | None:
    """Why a held-out set cannot separate the models yet, or None if it can.

    Parameters
    ----------
    frames : list of ase.Atoms
        The held-out frames (``arrays["forces"]`` in eV/Å).
    min_frames : int
        Frames with non-zero forces needed.
    force_floor : float
        eV/Å: a frame has non-zero forces if its largest DFT force component exceeds this.

    Returns
    -------
    str or None
    """
    n = sum(bool(np.abs(atoms.arrays["forces"]).max() > force_floor) for atoms in frames if len(atoms))
    if n >= min_frames:
        return None
    return (f"the held-out set has {n} frames with non-zero forces (largest component > {force_floor:g} eV/Å) of the "
            f"{min_frames} its test needs (issue 17, item 2); it is computed with `python -m zno_book.reference run "
            "--only heldout/`")


def heldout_frames(split: str = HELDOUT_SPLIT) -> tuple[list[Atoms], str | None]:
    """The held-out DFT frames and why they cannot be used yet (None if they can).

    Parameters
    ----------
    split : str
        The split of :func:`zno_book.datasets.load_zno` (default the held-out set).

    Returns
    -------
    frames : list of ase.Atoms
        Empty if the split does not exist yet.
    problem : str or None
        A missing split or file, or :func:`heldout_problem`.
    """
    if split not in SPLITS:
        return [], (f"no {split!r} split in this checkout's data (zno_book.datasets.SPLITS): the held-out set "
                    "(issue 17, item 2) is not in the data yet; it is computed with `python -m zno_book.reference "
                    "run --only heldout/`")
    if not (data_dir() / split_file(split)).exists():
        return [], (f"{split_file(split)} is not in the data yet: the held-out set (issue 17, item 2) is "
                    "computed with `python -m zno_book.reference run --only heldout/`")
    frames = load_zno(split)
    return frames, heldout_problem(frames)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compute(ensemble: str = "v2", heldout_split: str = HELDOUT_SPLIT, min_members: int = MIN_MEMBERS,
            min_seeds: int = MIN_SEEDS) -> tuple[list[dict], dict]:
    """Gather the inputs of ``ensemble`` from the book's root (:func:`zno_book.paths.book_root`) and decide
    every claim.

    The members (:func:`ensemble_members`), the campaign's collected table of them
    (:func:`campaign_results`), the DFT values of its metrics (:func:`zno_book.campaign.dft_reference`)
    and each member's errors (:func:`member_errors`) on the held-out set (if :func:`heldout_frames` can be
    used; otherwise its parts are not resolved, with the reason) and on :data:`FAR_SPLITS`.

    Parameters
    ----------
    ensemble : str
        A key of :data:`zno_book.campaign.ENSEMBLES` or a loader ``"module:function"``.
    heldout_split : str
        The held-out split of :func:`zno_book.datasets.load_zno`.
    min_members, min_seeds : int
        See :func:`evaluate`.

    Returns
    -------
    rows : list of dict
        :func:`evaluate`.
    provenance : dict
        What the verdicts were computed from: ensemble, member ids per kind, stale campaign results left
        out, the campaign table's size and SHA-256 (of its CSV), the data files' SHA-256, the held-out set's
        size and status, the far sets' sizes, the members' errors, the bootstrap settings and the mliplib
        version.

    Raises
    ------
    MissingResults
        The ensembles or the campaign's results do not exist yet.
    """
    members = ensemble_members(ensemble)
    table, stale = campaign_results(ensemble, members)
    heldout, problem = heldout_frames(heldout_split)
    sets = {"far": [atoms for split in FAR_SPLITS for atoms in load_zno(split)]}
    unavailable = {"heldout": problem} if problem else {}
    if not problem:
        sets["heldout"] = heldout
    errors = member_errors(members, sets)
    rows = evaluate(table, campaign.dft_reference(), errors, CLAIMS, unavailable, min_members, min_seeds)
    data = data_dir()
    used = [*FAR_SPLITS, "eos", "surfaces", "phonons"] + ([heldout_split] if heldout else [])
    provenance = {
        "ensemble": ensemble, "members": {kind: [name for name, _ in named] for kind, named in members.items()},
        "stale_campaign_results": stale,
        "campaign": {"folder": str(campaign.campaign_dir(ensemble).relative_to(book_root())), "rows": len(table),
                     "sha256": hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()},
        "data": {split_file(split): _sha256(data / split_file(split)) for split in used},
        "heldout": {"split": heldout_split, "frames": len(heldout), "status": problem or "used"},
        "far": {"splits": list(FAR_SPLITS), "frames": len(sets["far"])},
        "member_errors": json.loads(errors.to_json(orient="records")),
        "bootstrap": {"resamples": N_RESAMPLES, "seed": SEED, "confidence": CONFIDENCE},
        "complete": {"min_members": min_members, "min_seeds": min_seeds},
        "mliplib": mliplib.__version__,
    }
    return rows, provenance


def verdicts_path(version: str = campaign.CAMPAIGN_VERSION) -> Path:
    """Where :func:`main` writes the verdicts, ``<root>/artefacts/<version>/findings/verdicts.json``.

    Parameters
    ----------
    version : str
        The artefacts' version (default the campaign's, ``zno_book.campaign.CAMPAIGN_VERSION``).

    Returns
    -------
    Path
        Under the book's root, :func:`zno_book.paths.book_root`.
    """
    return book_root() / "artefacts" / version / "findings" / "verdicts.json"


def write(rows: Sequence[dict], path: str | Path, provenance: dict) -> Path:
    """Store the verdict table as JSON: a list of objects, one per part, each also carrying its claim's verdict.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`evaluate`.
    path : str or Path
        The file (``verdicts.json``); the provenance goes beside it, in ``verdicts.provenance.json``.
    provenance : dict
        What the verdicts were computed from (ensemble manifest checksum, data checksums, campaign
        artefact names).

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    verdict_of = claim_verdicts(rows)
    content = [{**row, "claim_verdict": verdict_of[row["claim"]]} for row in rows]
    path.write_text(json.dumps(_finite(content), indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    path.with_suffix(".provenance.json").write_text(json.dumps(_finite(provenance), indent=1, ensure_ascii=False,
                                                               allow_nan=False) + "\n")
    return path


def _finite(value):
    """``value`` with numpy numbers as Python numbers and NaN/inf as None (strict JSON)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def main(argv: list[str] | None = None) -> int:
    """``python -m zno_book.verdicts [--ensemble v2] [--version v2]``: compute and write ``verdicts.json``.

    Runs :func:`compute`, :func:`write` to :func:`verdicts_path` and prints each claim's verdict.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0, or 2 when an input does not exist yet (:class:`MissingResults`; the message, on
        stderr, names the command that makes it).
    """
    parser = argparse.ArgumentParser(prog="python -m zno_book.verdicts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ensemble", default="v2", help="v2 (the trained ensembles), v1 (the shipped committees) "
                        "or module:function")
    parser.add_argument("--version", default=campaign.CAMPAIGN_VERSION, help="artefacts/<version>/findings")
    args = parser.parse_args(argv)
    try:
        rows, provenance = compute(args.ensemble)
    except MissingResults as error:
        print(f"verdicts: {error}", file=sys.stderr)
        return 2
    path = write(rows, verdicts_path(args.version), provenance)
    for claim, verdict in claim_verdicts(rows).items():
        print(f"{verdict:>13}  {claim}")
    print(f"→ {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
