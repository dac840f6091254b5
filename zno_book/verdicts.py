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
member's errors against DFT frames (:func:`member_errors`: kind, member, set, quantity, value, unit).
:func:`evaluate` returns the verdict table; :func:`write` stores it as ``verdicts.json`` (a list of
objects with ``claim``, ``part``, ``metric``, ``unit``, ``direction``, ``test``, ``n`` per kind,
``effect``, ``interval``, ``p``, ``verdict`` and ``claim_verdict``); :func:`tied_ranks` orders the kinds on a metric, with
differences inside the uncertainty counted as ties.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mliplib.statistics import grouped_bootstrap_difference, grouped_bootstrap_interval, mann_whitney
from zno_book.constants import MODEL_KINDS, MODEL_LABELS

__all__ = ["CLAIMS", "Claim", "Part", "claim_verdicts", "evaluate", "member_errors", "tied_ranks", "write"]

#: Resamples of every bootstrap, and its seed (the same inputs give the same verdicts on any machine).
N_RESAMPLES = 4000
SEED = 0
CONFIDENCE = 0.95
VERDICTS = ("reproduced", "contradicted", "not resolved")

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
    """Largest |relative error| of the lattice constants (wurtzite a, c; zinc blende a; rocksalt a), %."""
    return _relative_error(frame, dft, "bulk", LATTICE, FAILED_PROPERTY)


def surface_error(frame, dft, errors) -> Samples:
    """Largest |relative error| of the relaxed surface energies γ(10-10), γ(11-20), % (not intact: 100 %)."""
    return _relative_error(frame, dft, "surfaces", SURFACES, FAILED_PROPERTY)


def vibration_error(frame, dft, errors) -> Samples:
    """1 − overlap of the wurtzite phonon DOS with DFT's (on the DFT structures), in %."""
    overlap = _per_member(frame, "phonons", "overlap_dft:dft_structures")
    return {kind: [100.0 * (1.0 - v) for v in members] for kind, members in overlap.items()}


def crystal_score(frame, dft, errors) -> Samples:
    """Mean of the lattice, surface and vibration errors of a member, %."""
    parts = [lattice_error(frame, dft, errors), surface_error(frame, dft, errors),
             vibration_error(frame, dft, errors)]
    out = {}
    for kind in MODEL_KINDS:
        sizes = {len(p[kind]) for p in parts}
        if len(sizes) != 1:
            raise ValueError(f"{kind}: the crystal tests cover different numbers of members {sizes}")
        out[kind] = [np.array([np.mean([p[kind][m][0] for p in parts])]) for m in range(sizes.pop())]
    return out


def _errors(errors: pd.DataFrame, data_set: str, quantity: str) -> Samples:
    rows = errors[(errors["set"] == data_set) & (errors["quantity"] == quantity)]
    if rows.empty:
        raise ValueError(f"no member errors on the {data_set!r} set for {quantity!r}")
    return {kind: [g["value"].to_numpy(float) for _, g in rows[rows["kind"] == kind].groupby("member", sort=True)]
            for kind in MODEL_KINDS}


def heldout_forces(frame, dft, errors) -> Samples:
    """Force RMSE on the held-out DFT frames (never used for any choice), meV/Å."""
    return _errors(errors, "heldout", "forces_rmse")


def far_forces(frame, dft, errors) -> Samples:
    """Force RMSE on the DFT frames far from the training data (nanoparticles, liquids), meV/Å."""
    return _errors(errors, "far", "forces_rmse")


def unphysical_optima(frame, dft, errors) -> Samples:
    """Fraction of a member's cluster optima flagged unphysical (the nanoparticles chapter's criteria)."""
    rows = frame[(frame["test"] == "clusters") & frame["metric"].str.startswith("flagged:")
                 & (frame["metric"] != "flagged:any")]
    return {kind: [np.array([g["value"].mean()]) for _, g in rows[rows["kind"] == kind].groupby("member", sort=True)]
            for kind in MODEL_KINDS}


def cluster_md_failures(frame, dft, errors) -> Samples:
    """Per member, one 0/1 per cluster-MD run (clusters × temperature schedules × seeds): 1 if not intact."""
    intact = _per_member(frame, "cluster_md", "intact")
    return {kind: [1.0 - v for v in members] for kind, members in intact.items()}


def liquid_survival(frame, dft, errors) -> Samples:
    """Per member, one survival time per MD seed at the target temperature, fs (censored at the run's end,
    so the mean is the restricted mean survival time)."""
    return _per_member(frame, "liquid", "survival_fs")


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
    """

    name: str
    metric: str
    unit: str
    extract: Callable
    kinds: tuple
    direction: str
    statistic: str = "median"
    tolerance: float | None = None

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
             "greater") for other in (PLIP, NNP))),
    Claim("crystals: NNP and PLIP the best", tuple(
        Part(_vs(kind, LBP), "crystal score: mean of the lattice, surface and vibration errors", "%",
             crystal_score, (kind, LBP), "less") for kind in (NNP, PLIP))),
    Claim("nanoparticles: NNP poor", tuple(
        Part(_vs(NNP, other) + f" ({what})", metric, "1", extract, (NNP, other), "greater", statistic="mean")
        for what, metric, extract in (
            ("optimisation", "fraction of cluster optima flagged unphysical", unphysical_optima),
            ("MD", "fraction of cluster-MD runs not intact (300 K, 1000 K, heating ramp)", cluster_md_failures))
        for other in (PLIP, LBP))),
    Claim("liquid: linear models better than the NNP", tuple(
        Part(_vs(kind, NNP), "survival time of the liquid at 3000 K (restricted mean)", "fs", liquid_survival,
             (kind, NNP), "greater", statistic="mean") for kind in (PLIP, LBP))),
    Claim("away from the data: PLIP better than the NNP", (
        Part(_vs(PLIP, NNP), "force RMSE on the DFT frames far from the training data", "meV/Å", far_forces,
             (PLIP, NNP), "less"),)),
    Claim("away from the data: linear-BP better than the NNP", (
        Part(_vs(LBP, NNP), "force RMSE on the DFT frames far from the training data", "meV/Å", far_forces,
             (LBP, NNP), "less"),)),
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


def evaluate(campaign: pd.DataFrame, dft: pd.DataFrame, errors: pd.DataFrame,
             claims: Sequence[Claim] = CLAIMS) -> list[dict]:
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

    Returns
    -------
    list of dict
        One row per part: claim, part, metric, unit, direction, test, n (per kind: members and values),
        effect, interval, p, verdict (and, for comparisons, the statistic of each kind and the
        Mann–Whitney cross-check; for agreements, the tolerance).
    """
    rows = []
    for claim in claims:
        for part in claim.parts:
            samples = part.extract(campaign, dft, errors)
            missing = [k for k in part.kinds if len(samples.get(k, [])) < 2]
            if missing:
                raise ValueError(f"{claim.claim!r} / {part.name!r}: fewer than two members of {missing}")
            result = _agreement_row(part, samples) if len(part.kinds) == 1 else _comparison_row(part, samples)
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
    path.write_text(json.dumps(content, indent=1, ensure_ascii=False, default=float) + "\n")
    path.with_suffix(".provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    return path
