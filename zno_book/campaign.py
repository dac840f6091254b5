"""The campaign (issue 17, items 5 and 6): every property and far-from-data test on every member of
each model kind's ensemble, with repeated MD seeds, as driver tasks; and the tidy table of the results.

Input: a list of members per kind (each an :mod:`mliplib` potential; its identity is its content digest,
:meth:`~mliplib.models.Potential.digest`), from a loader named in :data:`ENSEMBLES`: ``"v1"`` — the
5-member committees of the shipped v1 models (:func:`v1_committee`; linear members on 80 % subsamples,
NNP members with other seeds), the pilot; ``"v2"`` — ``zno_book.ensembles.load_ensemble(kind)``, the
M ≥ 8 members per kind trained with one recipe (a list of potentials or an object with ``members_``).

Tests per member, each one :class:`~zno_book.driver.Task` named ``<kind>/<member>/<test>[/<seed>]`` whose
result is an ``.npz`` under ``artefacts/v2/campaign/<ensemble>/`` (a :class:`~zno_book.driver.FolderStore`;
a rerun skips what exists; ``<member>`` is ``m<index>-<digest[:8]>``, so a retrained member gets new
names), computed with the settings of the chapters that report them:

- ``bulk``: :func:`~mliplib.properties.bulk.bulk_summary` of the six polymorphs (the bulk chapter):
  a, c, u, V0, B0 and E0 − E0(wurtzite);
- ``surfaces``: relaxed γ of (10-10) and (11-20) at the DFT lattice and slab thickness (fmax 0.01 eV/Å,
  300 BFGS steps) with the surfaces chapter's status classes (intact, rearranged, atom detached,
  collapsed, relaxation aborted) and which face is lower;
- ``phonons``: the wurtzite phonon DOS in the DFT's 2×2×2 supercell on the model's own relaxed cell and
  on the DFT structures (sum rule imposed), overlap with the DFT DOS, lowest and highest frequency;
- ``clusters``: each cluster's optimum (:func:`~zno_book.reference.sampling.nanoparticle_optima`), the
  nanoparticles chapter's unphysical flags, RMSD to the DFT-relaxed cluster, energy above the bulk;
- ``liquid/<density>gcc-<T>K/seed<k>``: the staged liquid protocol (:class:`~zno_book.liquid.StagedLiquidProtocol`):
  survival, temperature, pressure, diffusion, g(r);
- ``cluster_md/<cluster>/<schedule>/seed<k>``: nanoparticle MD (:data:`~zno_book.clusters.CLUSTER_MD`)
  from the member's optimum of the cluster: intact or not, first unphysical event, structure reached.

:func:`collect` reads the stored results into one tidy table (kind, member, test, seed, metric, value,
unit); :func:`summary` gives per-kind medians with intervals over members × seeds; :func:`survival_curves`
the Kaplan–Meier curves; :func:`dft_reference` the DFT numbers of the same metrics;
:func:`write_cluster_md_candidates` the frames of the cluster MD sent to DFT. Command line::

    python -m zno_book.campaign run --ensemble v1 --executor local --workers 1
    python -m zno_book.campaign collect --ensemble v1
    python -m zno_book.campaign candidates --ensemble v1 --seeds 0,1
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.io import read, write
from ase.neighborlist import neighbor_list

from mliplib.builders import in_box
from mliplib.properties.bulk import bulk_summary, lattice_parameters, n_formula_units
from mliplib.properties.nanoparticles import align, relax_cluster
from mliplib.properties.relax import relax
from mliplib.properties.structure import shortest_distance
from mliplib.properties.surfaces import (
    relaxed_surface_energy,
    surface_energies_from_frames,
)
from mliplib.properties.vibrations import (
    phonon_dos,
    phonon_dos_from_forces,
    phonon_dos_on_mesh,
    spectrum_overlap,
)
from mliplib.statistics import SurvivalCurve, kaplan_meier, median_interval
from zno_book import clusters, driver, executors, zoo
from zno_book.constants import MODEL_KINDS, POLYMORPHS, SURFACE
from zno_book.datasets import load_zno
from zno_book.liquid import (
    StagedLiquidProtocol,
    run_staged_liquid,
    staged_liquid_metrics,
)
from zno_book.paths import book_root, data_dir
from zno_book.reference import recipes
from zno_book.reference.plan import (
    CLUSTER_MD_FRAMES,
    MODEL_OPTIMUM_RELAX,
    PHONON_DISPLACEMENT,
    PHONON_SUPERCELL,
    cluster_md_candidates,
    nanoparticle_clusters,
    surface_tasks,
)
from zno_book.reference.sampling import (
    DFT_MAX_BOX,
    DFT_MIN_DISTANCE,
    nanoparticle_optima,
)
from zno_book.structures import nonpolar_slab, polymorph, polymorphs

__all__ = [
    "CAMPAIGN_VERSION",
    "CLUSTERS",
    "COSTS",
    "ENSEMBLES",
    "REFERENCE_LIQUID",
    "SEEDS",
    "SLAB_STATUSES",
    "TESTS",
    "campaign_dir",
    "cluster_md_dft_check",
    "collect",
    "dft_cost_seconds",
    "dft_reference",
    "liquid_test",
    "load_member",
    "main",
    "member_ids",
    "members",
    "run_bulk",
    "run_cluster_md",
    "run_clusters",
    "run_liquid",
    "run_phonons",
    "run_surfaces",
    "summary",
    "survival_curves",
    "tasks",
    "v1_committee",
    "write_cluster_md_candidates",
]

CAMPAIGN_VERSION = "v2"
#: ensemble name → loader ``"module:function"``, called with a model kind
ENSEMBLES = {"v1": "zno_book.campaign:v1_committee", "v2": "zno_book.ensembles:load_ensemble"}
#: The tests run on every member.
TESTS = ("bulk", "surfaces", "phonons", "clusters", "liquid", "cluster_md")
#: MD seeds per member (issue 17: ≥ 4)
SEEDS = (0, 1, 2, 3)
#: The nanoparticles of the cluster tests (the nanoparticles chapter's clusters).
CLUSTERS = tuple(nanoparticle_clusters())
#: one-core seconds per task, measured on the pilot (for the driver's ETA only); MD: per 1000 steps
COSTS = {"bulk": 10.0, "surfaces": 5.0, "phonons": 5.0, "clusters": 5.0, "liquid": 10.0, "cluster_md": 2.5}

#: the surfaces chapter's settings: relaxation, and the classes of what became of a slab
SURFACE_FMAX, SURFACE_STEPS, SLAB_BOND, SLAB_INTACT = 0.01, 300, 2.5, 1.0
#: The surfaces chapter's status classes of a relaxed slab.
SLAB_STATUSES = ("intact", "rearranged", "atom detached", "collapsed", "relaxation aborted")
#: the vibrations chapter's settings
PHONON_RELAX = {"fmax": 1e-3, "steps": 300}
PHONON_MESH, PHONON_SIGMA, IMAGINARY_TOL, DFT_SYMPREC = (24, 24, 16), 0.1, 0.05, 1e-3
#: the nanoparticles chapter's bulk reference (relaxed wurtzite, eV per ZnO)
CLUSTER_BULK_RELAX = {"fmax": 0.01, "steps": 200}


def campaign_dir(ensemble: str, root: str | Path | None = None) -> Path:
    """The results folder ``<root>/artefacts/v2/campaign/<ensemble>`` (root: :func:`zno_book.paths.book_root`;
    a loader ``"module:function"`` gets the folder ``module-function``).

    Parameters
    ----------
    ensemble : str
        Ensemble name (see :func:`members`).
    root : str or Path, optional
        The book's root.

    Returns
    -------
    Path
    """
    return book_root(root) / "artefacts" / CAMPAIGN_VERSION / "campaign" / ensemble.replace(":", "-")


# -------------------------------------------------------------------------------------------- members


def v1_committee(kind: str) -> list:
    """The members of the shipped v1 committee of ``kind`` (5 potentials; never retrained here).

    Parameters
    ----------
    kind : str
        One of the model kinds.

    Returns
    -------
    list of mliplib.models.Potential
    """
    return list(zoo.load_or_train(kind, committee=True, retrain=False, progress=False).members_)


@functools.cache
def members(ensemble: str, kind: str) -> tuple:
    """The members of ``kind`` in ``ensemble`` (loaded once per process).

    Parameters
    ----------
    ensemble : str
        A key of :data:`ENSEMBLES`, or a loader ``"module:function"`` of your own.
    kind : str
        Model kind.

    Returns
    -------
    tuple of mliplib.models.Potential
    """
    name = ENSEMBLES.get(ensemble, ensemble)
    try:
        loader = driver.resolve(name)
    except ImportError as error:
        raise ImportError(f"cannot load the {ensemble!r} ensemble: {error}. The v2 ensembles come from "
                          "zno_book.ensembles.load_ensemble (issue 17, item 4); use --ensemble v1 for the shipped "
                          "committees") from None
    loaded = loader(kind)
    found = tuple(getattr(loaded, "members_", loaded))
    if not found or not all(hasattr(m, "calculator") and hasattr(m, "digest") for m in found):
        raise TypeError(f"{name}({kind!r}) must give mliplib potentials (a list, or an object with members_)")
    return found


def member_ids(ensemble: str, kind: str) -> list[str]:
    """``m<index>-<digest[:8]>`` of each member (the ``<member>`` part of the task names).

    Parameters
    ----------
    ensemble : str
        Ensemble name.
    kind : str
        Model kind.

    Returns
    -------
    list of str
    """
    return [f"m{k:02d}-{m.digest()[:8]}" for k, m in enumerate(members(ensemble, kind))]


def load_member(ensemble: str, kind: str, member: str):
    """The member called ``member`` (``m<index>-<digest[:8]>``), checked against its digest.

    Parameters
    ----------
    ensemble : str
        Ensemble name.
    kind : str
        Model kind.
    member : str
        Its id (:func:`member_ids`).

    Returns
    -------
    mliplib.models.Potential
    """
    index, _, digest = member.partition("-")
    found = members(ensemble, kind)
    k = int(index.lstrip("m"))
    if k >= len(found) or not found[k].digest().startswith(digest):
        raise RuntimeError(f"{ensemble}/{kind}: member {member} is not in the ensemble any more (it was retrained?); "
                           f"current members: {member_ids(ensemble, kind)}. Make the tasks again.")
    return found[k]


# ---------------------------------------------------------------------------------------- the tests


def _timed(test):
    """Add the task's CPU time (``cpu_time_s``: one-core seconds, whatever else runs on the machine) and
    wall time (``wall_time_s``) to its result."""
    @functools.wraps(test)
    def timed(*args, **kwargs) -> dict:
        cpu, wall = time.process_time(), time.perf_counter()
        result = test(*args, **kwargs)
        return {**result, "cpu_time_s": time.process_time() - cpu, "wall_time_s": time.perf_counter() - wall}

    return timed



@_timed
def run_bulk(ensemble: str, kind: str, member: str) -> dict:
    """The bulk chapter's table for one member: zero-pressure relaxation then E–V scan of each polymorph.

    Parameters
    ----------
    ensemble, kind, member : str
        Which member (see :func:`load_member`).

    Returns
    -------
    dict
        ``phase`` (6,) and per phase ``a``, ``c`` (Å), ``u``, ``volume`` (Å³/ZnO), ``b0`` (GPa), ``e0``
        (eV/ZnO), ``de`` (E0 − E0(wurtzite), eV/ZnO), ``error`` ("" if the phase was stable).
    """
    rows = bulk_summary(calc=load_member(ensemble, kind, member).calculator(), structures=polymorphs(),
                        errors="record")
    out = {"phase": np.array([r["phase"] for r in rows])}
    for key in ("a", "c", "u", "volume", "b0", "e0", "de"):
        out[key] = np.array([r[key] for r in rows], dtype=float)
    out["error"] = np.array([r.get("error", "") for r in rows])
    return out


@functools.lru_cache(maxsize=1)
def _training_min_distance() -> float:
    """Shortest interatomic distance in any training frame (the surfaces chapter's 'collapsed')."""
    frames = [a for a in load_zno("all_train") if len(a) > 1]
    return float(min(np.min(a.get_all_distances(mic=True)[np.triu_indices(len(a), 1)]) for a in frames))


def slab_status(relaxed: Atoms, failure: str, max_displacement: float) -> tuple[str, float]:
    """The surfaces chapter's class of a relaxed slab (the first that applies, in the order of
    :data:`SLAB_STATUSES` reversed) and its shortest interatomic distance (Å).

    Parameters
    ----------
    relaxed : ase.Atoms
        The relaxed slab.
    failure : str
        The relaxation's failure ("" or "none" if none).
    max_displacement : float
        Largest displacement of an atom during the relaxation (Å).

    Returns
    -------
    tuple of (str, float)
    """
    distances = relaxed.get_all_distances(mic=True)[np.triu_indices(len(relaxed), 1)]
    if failure not in ("", "none"):
        return "relaxation aborted", float(distances.min())
    if distances.min() < _training_min_distance():
        return "collapsed", float(distances.min())
    if np.bincount(neighbor_list("i", relaxed, SLAB_BOND), minlength=len(relaxed)).min() == 0:
        return "atom detached", float(distances.min())
    return ("rearranged" if max_displacement >= SLAB_INTACT else "intact"), float(distances.min())


@functools.lru_cache(maxsize=1)
def _dft_slabs() -> dict:
    """{surface: (layers, vacuum)} of the DFT slabs (the plan's recipes)."""
    found = {}
    for task in surface_tasks():
        step = task.recipe[0]
        if step["op"] == "slab":
            found[step["miller"]] = (int(step["layers"]), float(step["vacuum"]))
    return found


@_timed
def run_surfaces(ensemble: str, kind: str, member: str) -> dict:
    """Relaxed surface energies of the two DFT slabs at the DFT lattice, with their status.

    Parameters
    ----------
    ensemble, kind, member : str
        Which member.

    Returns
    -------
    dict
        ``surface`` (2,), ``layers``, ``gamma_unrelaxed``, ``gamma_relaxed`` (J/m²; NaN if the relaxation
        failed), ``status`` (one of :data:`SLAB_STATUSES`), ``max_displacement``, ``shortest`` (Å).
    """
    calc = load_member(ensemble, kind, member).calculator()
    rows = []
    for miller, (layers, vacuum) in _dft_slabs().items():
        result = relaxed_surface_energy(calc, nonpolar_slab(miller, layers, vacuum, **SURFACE),
                                        polymorph("wurtzite", **SURFACE), fmax=SURFACE_FMAX, steps=SURFACE_STEPS)
        failure = result.slab_log.failure or result.bulk_log.failure or ""
        status, shortest = slab_status(result.relaxed_slab, failure, result.max_displacement)
        rows.append((miller, layers, result.gamma_unrelaxed, result.gamma_relaxed, status,
                     result.max_displacement, shortest))
    names = ("surface", "layers", "gamma_unrelaxed", "gamma_relaxed", "status", "max_displacement", "shortest")
    return {name: np.array(column) for name, column in zip(names, zip(*rows))}


@functools.lru_cache(maxsize=1)
def _dft_phonons():
    """(unit cell, displaced DFT frames, DFT DOS with the sum rule) as the vibrations chapter builds them."""
    frames = load_zno("phonons")
    recipe = json.loads(frames[0].info["recipe"])
    unit = recipes.build([s for s in recipe if s["op"] != "phonon_displacement"], root=data_dir())
    dos = phonon_dos_from_forces(unit, PHONON_SUPERCELL, frames, displacement=PHONON_DISPLACEMENT, mesh=PHONON_MESH,
                                 sigma=PHONON_SIGMA, symprec=DFT_SYMPREC)
    return unit, frames, _with_sum_rule(dos)


def _with_sum_rule(dos):
    dos.phonopy.symmetrize_force_constants()
    return phonon_dos_on_mesh(dos, PHONON_MESH, sigma=PHONON_SIGMA)


def _labelled(frames: list, calc) -> list:
    out = []
    for frame in frames:
        copy = frame.copy()
        copy.calc = calc
        copy.arrays["forces"] = copy.get_forces()
        copy.calc = None
        out.append(copy)
    return out


@_timed
def run_phonons(ensemble: str, kind: str, member: str) -> dict:
    """Wurtzite phonons of one member with the vibrations chapter's settings: on the DFT structures (the
    DFT's displaced 2×2×2 supercells, sum rule imposed) and on the member's own relaxed cell (same
    supercell); each DOS compared with the DFT one.

    Parameters
    ----------
    ensemble, kind, member : str
        Which member.

    Returns
    -------
    dict
        ``overlap_dft_structures``, ``overlap_own_cell`` (1 = identical DOS), ``min_frequency_*`` and
        ``max_frequency_*`` (THz; negative: imaginary), the own cell's ``a``, ``c``, ``u``,
        ``relax_converged``, and the DOS (``frequencies_*``, ``dos_*``; THz, 1/THz). Own-cell numbers are
        NaN if the relaxation failed (``error`` says why).
    """
    calc = load_member(ensemble, kind, member).calculator()
    unit, frames, dft = _dft_phonons()
    out = {}
    on_dft = _with_sum_rule(phonon_dos_from_forces(unit, PHONON_SUPERCELL, _labelled(frames, calc),
                                                   displacement=PHONON_DISPLACEMENT, mesh=PHONON_MESH,
                                                   sigma=PHONON_SIGMA, symprec=DFT_SYMPREC))
    spectra = {"dft_structures": on_dft}
    cell, log = relax(polymorph("wurtzite"), calc, fmax=PHONON_RELAX["fmax"], cell=True, steps=PHONON_RELAX["steps"])
    out["relax_converged"], out["error"] = int(log.converged), log.failure or ""
    if not log.failure:
        out.update({k: v for k, v in lattice_parameters(cell, "wurtzite").items() if k in ("a", "c", "u")})
        spectra["own_cell"] = phonon_dos(cell, calc, PHONON_SUPERCELL, displacement=PHONON_DISPLACEMENT,
                                         mesh=PHONON_MESH, sigma=PHONON_SIGMA)
    for where in ("dft_structures", "own_cell"):
        dos = spectra.get(where)
        out[f"overlap_{where}"] = (spectrum_overlap(dft.frequencies, dft.dos, dos.dos, frequencies2=dos.frequencies)
                                   if dos else np.nan)
        out[f"min_frequency_{where}"] = dos.min_frequency if dos else np.nan
        out[f"max_frequency_{where}"] = dos.max_frequency if dos else np.nan
        out[f"frequencies_{where}"] = dos.frequencies if dos else np.zeros(0)
        out[f"dos_{where}"] = dos.dos if dos else np.zeros(0)
    out["max_frequency_dft"] = dft.max_frequency
    return out


@functools.lru_cache(maxsize=1)
def _dft_relaxed_clusters() -> dict:
    """{cluster: final frame of its DFT relaxation} for the clusters DFT relaxed."""
    tasks = {}
    for frame in load_zno("nanoparticles"):
        if not clusters.made_by_a_model(frame):
            tasks.setdefault(frame.info["task"], []).append(frame)
    return {frames[-1].info["task"].split("/")[1]: frames[-1] for frames in tasks.values()
            if frames[-1].info.get("relax_final")}


@_timed
def run_clusters(ensemble: str, kind: str, member: str) -> dict:
    """Each cluster's optimum with one member (the nanoparticles chapter: same starts, BFGS settings,
    flags and bulk reference).

    Parameters
    ----------
    ensemble, kind, member : str
        Which member.

    Returns
    -------
    dict
        ``cluster`` (6,), ``flagged`` (1: any of cluster_diagnostics' problems, or the relaxation
        stopped), ``problems`` (text), ``shortest`` (Å), ``n_fragments``, ``mean_cn``, ``energy`` (eV),
        ``excess_energy`` (eV/ZnO above the member's relaxed wurtzite), ``relaxation_energy`` (eV/ZnO),
        ``rmsd_dft`` (Å to the DFT-relaxed cluster; NaN where there is none), ``converged``, ``steps``,
        ``bulk_energy`` (eV/ZnO) and ``positions_<cluster>`` (Å) of each optimum.
    """
    model = load_member(ensemble, kind, member)
    frames, energies = nanoparticle_optima(kind, model=model, fingerprint=model.digest(), progress=False,
                                           relax_settings=MODEL_OPTIMUM_RELAX)
    crystal, log = relax(polymorph("wurtzite"), model.calculator(), **CLUSTER_BULK_RELAX)
    bulk = crystal.get_potential_energy() / n_formula_units(crystal) if log.failure is None else np.nan
    dft = _dft_relaxed_clusters()
    rows = []
    for frame in frames:
        name, info = frame.info["cluster"], frame.info
        d = clusters.cluster_diagnostics(frame, energy=info["model_energy"], bulk_energy=bulk,
                                         start_energy=energies[name][0])
        if info["model_failure"] != "none":
            d["problems"].insert(0, f"relaxation stopped: {info['model_failure']}")
        finite = bool(np.all(np.isfinite(frame.positions)))
        rmsd = align(frame, dft[name], permute=True).rmsd if name in dft and finite else np.nan
        rows.append((name, int(bool(d["problems"])), "; ".join(d["problems"]), d["shortest"], d["n_fragments"],
                     d["mean_cn"], info["model_energy"], d["excess_energy"], d["relaxation_energy"], rmsd,
                     int(info["model_converged"]), int(info["model_steps"])))
    names = ("cluster", "flagged", "problems", "shortest", "n_fragments", "mean_cn", "energy", "excess_energy",
             "relaxation_energy", "rmsd_dft", "converged", "steps")
    out = {name: np.array(column) for name, column in zip(names, zip(*rows))}
    out["bulk_energy"] = bulk
    out.update({f"positions_{f.info['cluster']}": f.positions for f in frames})
    return out


@_timed
def run_liquid(ensemble: str, kind: str, member: str, protocol: dict) -> dict:
    """One staged liquid run (:func:`~zno_book.liquid.run_staged_liquid`) of one member.

    Parameters
    ----------
    ensemble, kind, member : str
        Which member.
    protocol : dict
        :class:`~zno_book.liquid.StagedLiquidProtocol` parameters (the seed among them).

    Returns
    -------
    dict
        :func:`~zno_book.liquid.staged_liquid_metrics` (and, as every test, ``cpu_time_s``, ``wall_time_s``).
    """
    calc = load_member(ensemble, kind, member).calculator()
    p = StagedLiquidProtocol(**protocol)
    return staged_liquid_metrics(run_staged_liquid(calc, p), p, calc)


@_timed
def run_cluster_md(ensemble: str, kind: str, member: str, cluster: str, protocol: dict, seed: int) -> dict:
    """One nanoparticle MD run (:func:`~zno_book.clusters.run_cluster_md`) of one member from its own optimum
    of the cluster (relaxed from the plan's start as in :func:`run_clusters`), so that the run starts at
    rest on the member's surface instead of releasing the energy of a start that is not its minimum
    (measured: from the plan's starts, most 300 K runs overheated within 100 fs). A member whose optimum is
    unphysical fails at once.

    Parameters
    ----------
    ensemble, kind, member : str
        Which member.
    cluster : str
        One of :data:`CLUSTERS`.
    protocol : dict
        :class:`~zno_book.clusters.ClusterMDProtocol` parameters.
    seed : int
        Velocities and noise.

    Returns
    -------
    dict
        :func:`~zno_book.clusters.cluster_md_metrics` (and ``cpu_time_s``, ``wall_time_s``).
    """
    calc = load_member(ensemble, kind, member).calculator()
    start, _ = relax_cluster(recipes.build(nanoparticle_clusters()[cluster]), calc, **MODEL_OPTIMUM_RELAX)
    p = clusters.ClusterMDProtocol(**protocol)
    return clusters.cluster_md_metrics(clusters.run_cluster_md(start, calc, p, seed), start, p)


# ---------------------------------------------------------------------------------------------- tasks


def liquid_test(protocol: StagedLiquidProtocol) -> str:
    """The test name of a liquid state point, e.g. ``liquid/4.90gcc-3000K`` (the reference state).

    Parameters
    ----------
    protocol : StagedLiquidProtocol
        The protocol.

    Returns
    -------
    str
    """
    return f"liquid/{protocol.density:.2f}gcc-{protocol.temperature:.0f}K"


#: the test name of the reference liquid (36 atoms, 4.9 g/cm³, 3000 K)
REFERENCE_LIQUID = liquid_test(StagedLiquidProtocol())


def tasks(ensemble: str = "v1", kinds: Iterable[str] = MODEL_KINDS, tests: Iterable[str] = TESTS,
          seeds: Iterable[int] = SEEDS, cluster_names: Iterable[str] = CLUSTERS,
          schedules: dict[str, clusters.ClusterMDProtocol] | None = None, member_indices: Iterable[int] | None = None,
          liquid: StagedLiquidProtocol | None = None) -> list[driver.Task]:
    """The campaign's driver tasks: the static tests, then the liquid runs, then the cluster MD seed by
    seed, each interleaved over members and kinds (a partial run covers every kind alike).

    Parameters
    ----------
    ensemble : str
        A key of :data:`ENSEMBLES` (or a loader ``"module:function"``).
    kinds : iterable of str
        Model kinds.
    tests : iterable of str
        Among :data:`TESTS`.
    seeds : iterable of int
        MD seeds (liquid and cluster MD).
    cluster_names : iterable of str
        Clusters of the MD.
    schedules : dict of str to ClusterMDProtocol, optional
        The cluster MD runs by name (default :data:`~zno_book.clusters.CLUSTER_MD`).
    member_indices : iterable of int, optional
        Only these members (default all).
    liquid : StagedLiquidProtocol, optional
        The liquid protocol (default ``StagedLiquidProtocol()``; its seed is replaced by each seed).

    Returns
    -------
    list of zno_book.driver.Task
    """
    tests, kinds = list(tests), list(kinds)
    unknown = sorted(set(tests) - set(TESTS))
    if unknown:
        raise ValueError(f"unknown tests {unknown}; choose among {TESTS}")
    ids = {kind: member_ids(ensemble, kind) for kind in kinds}
    if member_indices is not None:
        ids = {kind: [ids[kind][k] for k in member_indices if k < len(ids[kind])] for kind in kinds}
    pairs = [(kind, member) for kind in kinds for member in ids[kind]]
    pairs = sorted(pairs, key=lambda p: (ids[p[0]].index(p[1]), kinds.index(p[0])))  # member-major, kinds alike
    common = {"ensemble": ensemble}
    out = []
    for test in ("bulk", "surfaces", "phonons", "clusters"):
        if test in tests:
            out += [driver.Task(f"{kind}/{member}/{test}", f"zno_book.campaign:run_{test}",
                                {**common, "kind": kind, "member": member}, cost=COSTS[test])
                    for kind, member in pairs]
    base = liquid or StagedLiquidProtocol()
    for seed in seeds if "liquid" in tests else ():
        protocol = StagedLiquidProtocol(**{**base.as_dict(), "seed": int(seed)}).as_dict()
        out += [driver.Task(f"{kind}/{member}/{liquid_test(base)}/seed{seed}", "zno_book.campaign:run_liquid",
                            {**common, "kind": kind, "member": member, "protocol": protocol},
                            cost=COSTS["liquid"] * base.total_steps / 1000) for kind, member in pairs]
    for seed in seeds:
        if "cluster_md" in tests:
            for schedule, p in (clusters.CLUSTER_MD if schedules is None else schedules).items():
                for cluster in cluster_names:
                    out += [driver.Task(f"{kind}/{member}/cluster_md/{cluster}/{schedule}/seed{seed}",
                                        "zno_book.campaign:run_cluster_md",
                                        {**common, "kind": kind, "member": member, "cluster": cluster,
                                         "protocol": p.as_dict(), "seed": int(seed)},
                                        cost=COSTS["cluster_md"] * p.steps / 1000) for kind, member in pairs]
    return out


# -------------------------------------------------------------------------------------------- results

BULK_UNITS = {"a": "Å", "c": "Å", "u": "1", "volume": "Å³/ZnO", "b0": "GPa", "de": "meV/ZnO"}


def _bulk_rows(r: dict) -> list[tuple]:
    rows = []
    for k, phase in enumerate(r["phase"]):
        stable = str(r["error"][k]) == ""
        rows.append(("stable:" + phase, float(stable), "1"))
        for key, unit in BULK_UNITS.items():
            value = float(r[key][k]) * (1e3 if key == "de" else 1.0)
            if stable and not (key == "u" and np.isnan(value)):
                rows.append((f"{key}:{phase}", value, unit))
    return rows


def _surface_rows(r: dict) -> list[tuple]:
    rows, gamma = [], {}
    for k, face in enumerate(r["surface"]):
        status = str(r["status"][k])
        intact = status == "intact"
        rows += [(f"intact:{face}", float(intact), "1"),
                 (f"gamma_unrelaxed:{face}", float(r["gamma_unrelaxed"][k]), "J/m²")]
        rows += [(f"status={s}:{face}", float(status == s), "1") for s in SLAB_STATUSES]
        if intact:  # the chapter: a slab that did not stay intact has no relaxed γ to compare
            gamma[face] = float(r["gamma_relaxed"][k])
            rows.append((f"gamma_relaxed:{face}", gamma[face], "J/m²"))
    if len(gamma) == 2:
        rows.append(("lower_face_is_10-10", float(gamma["10-10"] < gamma["11-20"]), "1"))
    return rows


def _phonon_rows(r: dict) -> list[tuple]:
    rows = []
    for where in ("dft_structures", "own_cell"):
        if np.isfinite(r[f"overlap_{where}"]):
            rows += [(f"overlap_dft:{where}", float(r[f"overlap_{where}"]), "1"),
                     (f"min_frequency:{where}", float(r[f"min_frequency_{where}"]), "THz"),
                     (f"max_frequency:{where}", float(r[f"max_frequency_{where}"]), "THz"),
                     (f"imaginary:{where}", float(r[f"min_frequency_{where}"] < -IMAGINARY_TOL), "1")]
    rows += [(f"{key}:wurtzite_relaxed", float(r[key]), "Å" if key != "u" else "1") for key in ("a", "c", "u")
             if key in r]
    return rows


def _cluster_rows(r: dict) -> list[tuple]:
    rows = []
    units = {"flagged": "1", "shortest": "Å", "n_fragments": "1", "mean_cn": "1", "energy": "eV",
             "excess_energy": "eV/ZnO", "rmsd_dft": "Å"}
    for k, name in enumerate(r["cluster"]):
        for key, unit in units.items():
            value = float(r[key][k])
            if np.isfinite(value):
                rows.append((f"{key}:{name}", value, unit))
    rows.append(("flagged:any", float(np.sum(r["flagged"])), "count"))
    return rows


LIQUID_UNITS = {"survival_fs": "fs", "censored": "1", "event_time_fs": "fs", "max_T_block_heating_K": "K",
                "max_T_block_target_K": "K", "max_T_K": "K", "mean_T_liquid_K": "K", "overshoot": "1",
                "pressure_mean_GPa": "GPa", "pressure_error_GPa": "GPa", "shortest_A": "Å", "D_Zn_A2_ps": "Å²/ps",
                "D_Zn_A2_ps_error": "Å²/ps", "D_O_A2_ps": "Å²/ps", "D_O_A2_ps_error": "Å²/ps", "cn_ZnO": "1"}
EVENT_KINDS = ("none", "min_distance", "energy_jump", "max_temperature", "non_finite", "calculator_error",
               "fragmentation")


def _liquid_rows(r: dict) -> list[tuple]:
    rows = [(key, float(r[key]), unit) for key, unit in LIQUID_UNITS.items() if key in r and np.isfinite(r[key])]
    rows.append(("heating_failed", float(r["event_kind"] != "none" and r["event_stage"].startswith("heat")), "1"))
    rows += [(f"event={kind}", float(r["event_kind"] == kind), "1") for kind in EVENT_KINDS[:-1]]
    return rows


CLUSTER_MD_UNITS = {"intact": "1", "survival_fs": "fs", "censored": "1", "first_event_fs": "fs", "max_T_K": "K",
                    "rmsd_A": "Å", "mean_cn": "1"}


def _cluster_md_rows(r: dict) -> list[tuple]:
    rows = [(key, float(r[key]), unit) for key, unit in CLUSTER_MD_UNITS.items() if np.isfinite(r[key])]
    rows += [(f"event={kind}", float(r["first_event_kind"] == kind), "1") for kind in EVENT_KINDS]
    rows += [(f"cn_fraction:{c}", float(x), "1") for c, x in enumerate(r["cn_fractions"]) if np.isfinite(x)]
    return rows


CONVERTERS = {"bulk": _bulk_rows, "surfaces": _surface_rows, "phonons": _phonon_rows, "clusters": _cluster_rows,
              "liquid": _liquid_rows, "cluster_md": _cluster_md_rows}
COLUMNS = ["kind", "member", "test", "seed", "metric", "value", "unit"]


def _parse(name: str) -> tuple[str, str, str, int]:
    """kind, member, test, seed (−1 for tests without seeds) of a task name."""
    kind, member, *rest = name.split("/")
    seed = -1
    if rest[-1].startswith("seed"):
        seed = int(rest.pop()[4:])
    return kind, member, "/".join(rest), seed


def collect(ensemble: str = "v1", root: str | Path | None = None) -> pd.DataFrame:
    """Every stored result of ``ensemble`` as one tidy table.

    Parameters
    ----------
    ensemble : str
        Ensemble name.
    root : str or Path, optional
        The book's root.

    Returns
    -------
    pandas.DataFrame
        Columns kind, member, test (e.g. "bulk", "liquid/4.90gcc-3000K", "cluster_md/ring3/ramp"), seed (−1 where there
        is none), metric (e.g. "a:wurtzite", "survival_fs", "event=min_distance"), value (float; 0/1 for
        yes/no), unit; every task also has its one-core cost, metric ``cpu_time_s``.
    """
    store = driver.FolderStore(campaign_dir(ensemble, root))
    rows, protocols = [], {}
    for name in sorted(store.done()):
        kind, member, test, seed = _parse(name)
        result = store.load(name)
        if "protocol" in result:  # the runs of one test share their protocol (but the seed)
            protocol = {k: v for k, v in json.loads(result["protocol"]).items() if k != "seed"}
            if protocols.setdefault(test, protocol) != protocol:
                raise ValueError(f"{name} was run with another protocol than the other runs of {test} in "
                                 f"{store.root}: {protocol} vs {protocols[test]}; move the old results away")
        for metric, value, unit in CONVERTERS[test.split("/")[0]](result):
            rows.append((kind, member, test, seed, metric, value, unit))
        rows.append((kind, member, test, seed, "cpu_time_s", float(result["cpu_time_s"]), "s"))
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per kind, test and metric: the distribution over members × seeds.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`collect` (or a selection of it).
    confidence : float
        Of the intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by kind, test, metric, unit: ``n``, ``members``, ``mean`` (for 0/1 metrics: the
        fraction), ``median``, ``low``/``high`` (the central ``confidence`` range of the values: the
        spread of the ensemble) and ``median_low``/``median_high`` (order-statistic interval of the
        median; ``median_coverage`` is its exact coverage, below ``confidence`` for small n).
    """
    alpha = 1 - confidence
    out = []
    for (kind, test, metric, unit), group in frame.groupby(["kind", "test", "metric", "unit"], sort=False):
        values = group["value"].to_numpy(dtype=float)
        interval = median_interval(values, confidence)
        low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
        out.append({"kind": kind, "test": test, "metric": metric, "unit": unit, "n": values.size,
                    "members": group["member"].nunique(), "mean": values.mean(), "median": interval.estimate,
                    "low": low, "high": high, "median_low": interval.low, "median_high": interval.high,
                    "median_coverage": interval.coverage})
    return pd.DataFrame(out).set_index(["kind", "test", "metric", "unit"])


def survival_curves(frame: pd.DataFrame, test: str = REFERENCE_LIQUID,
                    confidence: float = 0.95) -> dict[str, SurvivalCurve]:
    """Kaplan–Meier curves per kind of the runs of ``test`` (``survival_fs`` with ``censored``).

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`collect`.
    test : str
        A liquid test (default: the reference state) or a cluster MD test such as "cluster_md/ring3/ramp".
    confidence : float
        Of the bands.

    Returns
    -------
    dict of str to mliplib.statistics.SurvivalCurve
    """
    runs = frame[(frame["test"] == test) & frame["metric"].isin(["survival_fs", "censored"])]
    wide = runs.pivot_table(index=["kind", "member", "seed"], columns="metric", values="value")
    return {kind: kaplan_meier(group["survival_fs"], group["censored"] == 0, confidence)
            for kind, group in wide.groupby(level="kind", sort=False)}


def dft_reference() -> pd.DataFrame:
    """The DFT numbers of the campaign's metrics, from the data set (bulk: the chapter's E–V fits;
    surfaces: the relaxed DFT slabs; phonons: the DFT DOS).

    Returns
    -------
    pandas.DataFrame
        Columns test, metric, value, unit (metric names as in :func:`collect`).
    """
    rows = []
    curves = bulk_summary(frames=load_zno("eos"), phases=list(POLYMORPHS), errors="record")
    rows += [("bulk", metric, value, unit) for metric, value, unit in _bulk_rows(
        {"phase": np.array([r["phase"] for r in curves]), "error": np.array([r.get("error", "") for r in curves]),
         **{k: np.array([r[k] for r in curves]) for k in ("a", "c", "u", "volume", "b0", "e0", "de")}})
        if not metric.startswith("stable")]
    gammas = surface_energies_from_frames(load_zno("surfaces"))
    rows += [("surfaces", f"gamma_relaxed:{face}", v["gamma_relaxed"], "J/m²") for face, v in gammas.items()]
    if {"10-10", "11-20"} <= set(gammas):
        rows.append(("surfaces", "lower_face_is_10-10",
                     float(gammas["10-10"]["gamma_relaxed"] < gammas["11-20"]["gamma_relaxed"]), "1"))
    dft = _dft_phonons()[2]
    rows += [("phonons", "min_frequency:dft_structures", dft.min_frequency, "THz"),
             ("phonons", "max_frequency:dft_structures", dft.max_frequency, "THz")]
    return pd.DataFrame(rows, columns=["test", "metric", "value", "unit"])


# ------------------------------------------------------------------------------- DFT of the cluster MD


@functools.lru_cache(maxsize=1)
def _dft_cost_fit() -> np.ndarray:
    """Least-squares fit of log(wall time) = a + b log(atoms) + c log(box volume) to the measured DFT
    single points of clusters in the data set."""
    rows = [(np.log(len(f)), np.log(f.get_volume()), np.log(float(f.info["wall_time_s"])))
            for f in load_zno("nanoparticles") if "relax_step" not in f.info and f.info.get("wall_time_s", 0) > 0]
    x = np.array(rows)
    if len(x) < 3:
        raise RuntimeError("fewer than 3 timed cluster single points in the data set: no cost model")
    design = np.column_stack([np.ones(len(x)), x[:, 0], x[:, 1]])
    return np.linalg.lstsq(design, x[:, 2], rcond=None)[0]


def dft_cost_seconds(atoms: Atoms) -> float:
    """Estimated one-core cost (s) of a DFT single point of a cluster in its box, from the measured ones.

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster in its box.

    Returns
    -------
    float
    """
    a, b, c = _dft_cost_fit()
    return float(np.exp(a + b * np.log(len(atoms)) + c * np.log(atoms.get_volume())))


def _md_snapshots(store: driver.FolderStore, kind: str, label: str, events: bool,
                  seeds: Iterable[int] | None = None) -> list[Atoms]:
    """The ``label`` snapshot of each stored cluster MD run of ``kind`` (MD seeds ``seeds``, default all) with
    (``events``) or without a first unphysical event, in a box with the clusters' vacuum, that DFT can take."""
    vacuum = next(step["vacuum"] for step in next(iter(nanoparticle_clusters().values())) if step["op"] == "box")
    found = []
    for name in sorted(store.done()):
        if not name.startswith(f"{kind}/") or "/cluster_md/" not in name:
            continue
        _, member, test, seed = _parse(name)
        if seeds is not None and seed not in seeds:
            continue
        r = store.load(name)
        if (r["first_event_kind"] != "none") != events:
            continue
        k = list(r["snapshot_labels"]).index(label)
        atoms = in_box(Atoms(numbers=r["numbers"], positions=r["snapshot_positions"][k]), vacuum)
        if shortest_distance(atoms) < DFT_MIN_DISTANCE or atoms.cell.lengths().max() > DFT_MAX_BOX:
            continue
        _, cluster, schedule = test.split("/")
        atoms.info.update(kind=kind, member=member, cluster=cluster, schedule=schedule, seed=seed, snapshot=label,
                          time_fs=float(r["snapshot_time_fs"][k]), temperature_K=float(r["snapshot_temperature_K"][k]),
                          model_energy=float(r["snapshot_energy_eV"][k]), first_event=str(r["first_event_kind"]),
                          first_event_fs=float(r["first_event_fs"]), estimated_cost_s=dft_cost_seconds(atoms))
        found.append(atoms)
    return found


def _pick(candidates: list[Atoms], n: int, budget_s: float) -> list[Atoms]:
    """Up to ``n`` frames within ``budget_s``: one per cluster in turn (cheapest cluster first, the
    earliest event or hottest frame within a cluster), so the frames cover different clusters."""
    by_cluster = {}
    for atoms in sorted(candidates, key=lambda a: (a.info["first_event_fs"], -a.info["temperature_K"])):
        by_cluster.setdefault(atoms.info["cluster"], []).append(atoms)
    order = sorted(by_cluster, key=lambda c: min(a.info["estimated_cost_s"] for a in by_cluster[c]))
    chosen, spent = [], 0.0
    while len(chosen) < n and any(by_cluster.values()):
        for cluster in order:
            if by_cluster[cluster] and len(chosen) < n:
                atoms = by_cluster[cluster].pop(0)
                if spent + atoms.info["estimated_cost_s"] <= budget_s:
                    chosen.append(atoms)
                    spent += atoms.info["estimated_cost_s"]
    return chosen


def write_cluster_md_candidates(ensemble: str = "v1", kinds: Iterable[str] = MODEL_KINDS,
                                budget_s: float = 5 * 3600.0, seeds: Iterable[int] | None = None,
                                root: str | Path | None = None,
                                data_root: str | Path | None = None) -> dict[str, list[Atoms]]:
    """Choose the cluster MD frames that DFT checks and write ``data/zno/candidates/cluster_md_<kind>.extxyz``
    (the tasks of :func:`~zno_book.reference.plan.cluster_md_tasks`).

    Per kind :data:`~zno_book.reference.plan.CLUSTER_MD_FRAMES` frames, the DFT cost of all of them
    within ``budget_s`` (split equally between kinds; costs from :func:`dft_cost_seconds`): the states
    just before the first unphysical events of its runs (different clusters, the cheapest first), or
    where there are too few of those, the hottest states of runs that stayed intact.

    Parameters
    ----------
    ensemble : str
        Ensemble name.
    kinds : iterable of str
        Model kinds.
    budget_s : float
        One-core seconds for all kinds.
    seeds : iterable of int, optional
        Pick only from the runs of these MD seeds (default: every stored run). Give them, so that the
        pick does not change as more seeds are run.
    root : str or Path, optional
        The book's root (results).
    data_root : str or Path, optional
        The data folder.

    Returns
    -------
    dict of str to list of ase.Atoms
        The frames written per kind (info: kind, member, cluster, schedule, seed, snapshot, time_fs,
        temperature_K, model_energy, first_event, first_event_fs, estimated_cost_s).
    """
    store = driver.FolderStore(campaign_dir(ensemble, root))
    kinds = list(kinds)
    seeds = None if seeds is None else {int(s) for s in seeds}
    folder = Path(data_root) if data_root is not None else data_dir()
    written = {}
    for kind in kinds:
        share = budget_s / len(kinds)
        frames = _pick(_md_snapshots(store, kind, "before_event", True, seeds), CLUSTER_MD_FRAMES, share)
        spent = sum(a.info["estimated_cost_s"] for a in frames)
        frames += _pick(_md_snapshots(store, kind, "hottest", False, seeds), CLUSTER_MD_FRAMES - len(frames),
                        share - spent)
        if not frames:
            raise RuntimeError(f"no cluster MD results of {kind} in {store.root}: run the campaign first")
        path = folder / cluster_md_candidates(kind)
        text = io.StringIO()
        write(text, frames, format="extxyz")
        driver.write_atomic(path, lambda handle, text=text: handle.write(text.getvalue().encode()))
        written[kind] = frames
    return written


def _candidate_of(frame: Atoms, folder: Path) -> Atoms:
    """The candidate a cluster-MD DFT frame was computed on (the file and index of its recipe), with the MD's
    record in ``info``; checked to be the structure DFT computed."""
    (step,) = json.loads(frame.info["recipe"])
    candidate = read(folder / step["file"], index=step["index"])
    if len(candidate) != len(frame) or np.abs(candidate.positions - frame.positions).max() > 1e-6:
        raise ValueError(f"{frame.info['task']}: frame {step['index']} of {step['file']} is not the structure DFT "
                         "computed (were the candidates picked again?): restore the file from git, or run the DFT "
                         "of the new candidates")
    return candidate


def cluster_md_dft_check(ensemble: str = "v2", frames: list[Atoms] | None = None,
                         data_root: str | Path | None = None) -> pd.DataFrame:
    """Every member of a kind against DFT at the frames of that kind's cluster MD (the single points of
    :func:`~zno_book.reference.plan.cluster_md_tasks` on the frames :func:`write_cluster_md_candidates` chose).

    Parameters
    ----------
    ensemble : str
        Ensemble name (its members are compared; the frames name the member whose MD made them).
    frames : list of ase.Atoms, optional
        The DFT frames (default: those of the nanoparticle data set with ``config_type`` ``cluster_md_<kind>``).
        The MD's record of each (kind, member, run, time, the member's energy) is read from the candidate its
        recipe names, which must be the same structure.
    data_root : str or Path, optional
        The data folder of the candidates.

    Returns
    -------
    pandas.DataFrame
        One row per frame and member of the frame's kind: kind, task, cluster, schedule, seed, snapshot,
        time_fs, temperature_K (of the MD at the frame), source (the member whose MD made the frame), member,
        dft_max_force (eV/Å, largest atomic force), dft_above_relaxed (meV/atom above the DFT-relaxed
        cluster; NaN where DFT did not relax it), energy_error (meV/atom, member − DFT), forces_rmse (meV/Å),
        energy_drift (meV/atom, the source member now − its energy stored by the MD: 0 up to rounding).
        Empty if there are no such frames yet.
    """
    if frames is None:
        frames = [f for f in load_zno("nanoparticles") if str(f.info["config_type"]).startswith("cluster_md_")]
    folder = Path(data_root) if data_root is not None else data_dir()
    relaxed = _dft_relaxed_clusters()
    rows, loaded = [], {}
    for atoms in frames:
        md = _candidate_of(atoms, folder).info
        kind = md["kind"]
        if kind not in loaded:
            loaded[kind] = list(zip(member_ids(ensemble, kind), members(ensemble, kind)))
        if md["member"] not in dict(loaded[kind]):
            raise ValueError(f"{atoms.info['task']} was made by {kind}/{md['member']}, not a member of the "
                             f"{ensemble!r} ensemble: retrained? Pick new frames with `python -m zno_book.campaign "
                             "candidates` and run their DFT")
        n, dft_energy, dft_forces = len(atoms), float(atoms.info["energy"]), atoms.arrays["forces"]
        max_force = float(np.linalg.norm(dft_forces, axis=1).max())
        reference = relaxed.get(md["cluster"])
        above = (1e3 * (dft_energy / n - float(reference.info["energy"]) / len(reference))
                 if reference is not None else np.nan)
        for name, model in loaded[kind]:
            probe = atoms.copy()
            probe.calc = model.calculator()
            energy, forces = probe.get_potential_energy(), probe.get_forces()
            rows.append({"task": atoms.info["task"], **{k: md[k] for k in ("kind", "cluster", "schedule", "seed",
                                                                            "snapshot", "time_fs", "temperature_K")},
                         "source": md["member"], "member": name,
                         "dft_max_force": max_force,
                         "dft_above_relaxed": above,
                         "energy_error": 1e3 * (energy - dft_energy) / n,
                         "forces_rmse": 1e3 * float(np.sqrt(np.mean(np.square(forces - dft_forces)))),
                         "energy_drift": (1e3 * (energy - float(md["model_energy"])) / n
                                          if name == md["member"] else np.nan)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m zno_book.campaign {run,collect,candidates} --ensemble NAME ...`` (see the module docstring).

    ``run`` runs the campaign's tasks on the driver (resumable); ``collect`` writes ``campaign.csv`` (the
    tidy table of :func:`collect`) and ``summary.csv`` into the campaign's folder; ``candidates`` runs
    :func:`write_cluster_md_candidates` on the runs of ``--seeds`` and prints the frames picked per kind
    with their estimated cost (one-core hours).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0, or 1 if a task of ``run`` failed.
    """
    parser = argparse.ArgumentParser(prog="python -m zno_book.campaign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "collect", "candidates"])
    parser.add_argument("--ensemble", default="v1", help="v1 (the shipped committees), v2, or module:function")
    parser.add_argument("--kinds", default=",".join(MODEL_KINDS))
    parser.add_argument("--tests", default=",".join(TESTS))
    parser.add_argument("--members", default=None, help="member indices, e.g. 0,1 (default: all)")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--liquid-density", type=float, default=None, help="g/cm³ (default: the reference 4.9)")
    parser.add_argument("--liquid-temperature", type=float, default=None, help="K (default: the reference 3000)")
    parser.add_argument("--executor", choices=executors.KINDS, default="local")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--address", default=None, help="a running Dask scheduler (with --executor dask)")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    if args.command == "run":
        members_ = [int(k) for k in args.members.split(",")] if args.members else None
        state = {k: v for k, v in (("density", args.liquid_density), ("temperature", args.liquid_temperature))
                 if v is not None}
        todo = tasks(args.ensemble, kinds, args.tests.split(","), [int(s) for s in args.seeds.split(",")],
                     member_indices=members_, liquid=StagedLiquidProtocol(**state))
        workers = 1 if args.executor == "serial" else args.workers
        report = driver.run(todo, driver.FolderStore(campaign_dir(args.ensemble)),
                            executors.factory(args.executor, workers, args.address), workers=workers)
        return 0 if report.ok else 1
    if args.command == "collect":
        frame = collect(args.ensemble)
        folder = campaign_dir(args.ensemble)
        frame.to_csv(folder / "campaign.csv", index=False)
        summary(frame).to_csv(folder / "summary.csv")
        print(f"{len(frame)} rows from {frame.groupby(['kind', 'member']).ngroups} members → {folder}/campaign.csv, "
              "summary.csv")
        return 0
    written = write_cluster_md_candidates(args.ensemble, kinds, seeds=[int(s) for s in args.seeds.split(",")])
    for kind, frames in written.items():
        print(f"{kind}: {len(frames)} frames, ≈{sum(a.info['estimated_cost_s'] for a in frames) / 3600:.2f} one-core "
              f"hours: " + ", ".join(f"{a.info['cluster']}/{a.info['schedule']} {a.info['snapshot']}" for a in frames))
    return 0


if __name__ == "__main__":
    # run the importable module's main, so that pickled references name zno_book.campaign, not __main__
    from zno_book.campaign import main as importable_main

    sys.exit(importable_main())
