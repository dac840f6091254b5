"""The reference-data plan: every DFT calculation of the ZnO data set as a named, deterministic task.

Tasks run in ``priority`` order (lowest first), so a useful subset exists early: the convergence study,
then a first training set covering every polymorph (tier 1), then the bulk E–V curves, the rest of the
training set, phonons, the smallest clusters and the surfaces, then the thermal snapshots of the
training set, the models' own liquid frames and nanoparticle optima (once sampled), a few GFN1-xTB
liquid frames and the 12-atom cage, and the larger clusters last. A task's name is its identity: the runner
skips names already present in the output files. The held-out set (:func:`heldout_tasks`, last) is
never used for any choice; :func:`tiny_tasks` is a separate smoke-test plan at a low cutoff.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mliplib.properties.structure import shortest_distance
from mliplib.properties.vibrations import phonon_displacements
from zno_book.constants import (
    LIQUID_DENSITY,
    LIQUID_FORMULA_UNITS,
    LIQUID_TEMPERATURE,
    MODEL_KINDS,
    POLYMORPHS,
    SURFACE,
)
from zno_book.reference.recipes import build
from zno_book.structures import polymorph

__all__ = [
    "CLUSTER_MD_FRAMES",
    "EOS_RELAX",
    "EOS_VOLUMES",
    "HELDOUT_CONTACTS",
    "HELDOUT_KINDS",
    "HELDOUT_MIN_DISTANCE",
    "HELDOUT_RATTLES",
    "HELDOUT_THERMAL",
    "LIQUID_DENSITY",
    "LIQUID_FORMULA_UNITS",
    "LIQUID_FRAMES",
    "LIQUID_GFN1_TASKS",
    "LIQUID_MODEL_FRAMES",
    "LIQUID_TEMPERATURE",
    "MODEL_KINDS",
    "MODEL_OPTIMUM_RELAX",
    "PHONON_DISPLACEMENT",
    "PHONON_SUPERCELL",
    "SURFACE",
    "THERMAL_CANDIDATES",
    "THERMAL_CELL",
    "THERMAL_FRAMES",
    "THERMAL_TEMPERATURES",
    "TINY_SETTINGS",
    "Task",
    "all_tasks",
    "cluster_md_candidates",
    "cluster_md_tasks",
    "convergence_tasks",
    "eos_tasks",
    "heldout_tasks",
    "liquid_model_candidates",
    "liquid_model_tasks",
    "liquid_tasks",
    "model_optimum_candidates",
    "model_optimum_tasks",
    "nanoparticle_clusters",
    "nanoparticle_tasks",
    "phonon_tasks",
    "surface_tasks",
    "thermal_sample",
    "tiny_tasks",
    "training_tasks",
]

#: Cells used per phase: small (primitive) for strains, 8 atoms for rattles, 16 atoms for thermal frames.
SMALL = {p: [{"op": "polymorph", "name": p}] for p in POLYMORPHS}
RATTLE_CELL = {
    "wurtzite": SMALL["wurtzite"] + [{"op": "supercell", "reps": [2, 1, 1]}],
    "zincblende": [{"op": "polymorph", "name": "zincblende", "cubic": True}],
    "rocksalt": [{"op": "polymorph", "name": "rocksalt", "cubic": True}],
    "cscl": SMALL["cscl"] + [{"op": "supercell", "reps": [2, 2, 1]}],
    "hbn": SMALL["hbn"] + [{"op": "supercell", "reps": [2, 1, 1]}],
    "bct": SMALL["bct"],
}
#: 16-atom cells for the thermal snapshots (sampled by MD, see zno_book.reference.sampling.sample_thermal)
THERMAL_CELL = {
    "wurtzite": SMALL["wurtzite"] + [{"op": "supercell", "reps": [2, 2, 1]}],
    "zincblende": RATTLE_CELL["zincblende"] + [{"op": "supercell", "reps": [2, 1, 1]}],
    "rocksalt": RATTLE_CELL["rocksalt"] + [{"op": "supercell", "reps": [2, 1, 1]}],
    "cscl": SMALL["cscl"] + [{"op": "supercell", "reps": [2, 2, 2]}],
    "hbn": SMALL["hbn"] + [{"op": "supercell", "reps": [2, 2, 1]}],
    "bct": SMALL["bct"] + [{"op": "supercell", "reps": [2, 1, 1]}],
}
THERMAL_TEMPERATURES = (600.0, 1200.0)  # K
THERMAL_FRAMES = 2  # per phase and temperature
STRAINS = (-0.04, 0.0, 0.04, -0.06, -0.02, 0.02, 0.06, 0.08)  # first three in tier 1
RATTLES = ((0.03, -0.02), (0.06, 0.0), (0.10, 0.02), (0.15, 0.0),  # (sigma Å, isotropic strain)
           (0.03, 0.03), (0.06, -0.03), (0.10, 0.0), (0.15, 0.02))
EOS_VOLUMES = (0.88, 0.92, 0.96, 1.00, 1.04, 1.08, 1.12)  # V/V0
EOS_RELAX = {"wurtzite", "hbn", "bct"}  # phases with free c/a or internal parameters
LIQUID_FRAMES = 24  # sampled by GFN1-xTB (candidates/liquid_gfn1.extxyz)
LIQUID_GFN1_TASKS = 4  # of them labelled by DFT (see liquid_tasks)
PHONON_SUPERCELL = (2, 2, 2)  # 32 atoms; the vibrations chapter checks with the models that it suffices
PHONON_DISPLACEMENT = 0.01  # Å


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {MODEL_KINDS}")


@dataclasses.dataclass(frozen=True)
class Task:
    """One DFT job. kind: "single" (one frame) or "relax" (BFGS; every step stored as a frame).

    relax: {"fmax": eV/Å, "steps": int, "cell": None | "constant_volume"}; settings: overrides of
    :class:`~zno_book.reference.engine.DFTSettings` (convergence study, tiny plan); cost_like: a
    config_type whose measured single points estimate this task's cost (a held-out cell costs what the
    training cell of the same size and broken symmetry costs), None for its own config_type.
    """

    name: str
    dataset: str
    config_type: str
    recipe: tuple
    priority: int
    kind: str = "single"
    relax: dict | None = None
    settings: dict | None = None
    cost_like: str | None = None

    def as_dict(self) -> dict:
        """The task's fields as a dict (:func:`dataclasses.asdict`), JSON-serialisable.

        Returns
        -------
        dict
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> Task:
        """The task whose :meth:`as_dict` is ``fields`` (also after a JSON round trip: the recipe may be a list).

        Parameters
        ----------
        fields : dict
            The task's fields.

        Returns
        -------
        Task
        """
        return cls(**{**fields, "recipe": tuple(fields["recipe"])})


def _task(name, dataset, config_type, recipe, priority, **kw) -> Task:
    return Task(name, dataset, config_type, tuple(recipe), priority, **kw)


def convergence_tasks() -> list[Task]:
    """The convergence study: a sheared, rattled wurtzite and rocksalt cell at five plane-wave cutoffs
    (k density 3.0) and four k-point densities (800 eV), priority 0.

    Returns
    -------
    list of Task
    """
    tasks = []
    for phase in ("wurtzite", "rocksalt"):
        recipe = SMALL[phase] + [{"op": "shear", "magnitude": 0.02, "seed": 0},
                                 {"op": "rattle", "sigma": 0.05, "seed": 0}]
        for ecut in (500, 600, 700, 800, 900):
            tasks.append(_task(f"convergence/{phase}/ecut{ecut}", "convergence", f"convergence_{phase}",
                               recipe, 0, settings={"ecut": ecut, "kpt_density": 3.0}))
        for density in (2.0, 2.5, 3.5, 4.0):
            tasks.append(_task(f"convergence/{phase}/k{density}", "convergence", f"convergence_{phase}",
                               recipe, 0, settings={"ecut": 800, "kpt_density": density}))
    return tasks


THERMAL_CANDIDATES = "candidates/thermal_linear_bp.extxyz"


def thermal_sample(index: int) -> tuple[str, float, int]:
    """Which thermal snapshot a frame of THERMAL_CANDIDATES is (phase-major order).

    Parameters
    ----------
    index : int
        Frame index in the candidate file.

    Returns
    -------
    tuple
        (phase, temperature in K, frame number at that phase and temperature).
    """
    per_phase = len(THERMAL_TEMPERATURES) * THERMAL_FRAMES
    phase, rest = divmod(index, per_phase)
    return POLYMORPHS[phase], THERMAL_TEMPERATURES[rest // THERMAL_FRAMES], rest % THERMAL_FRAMES


def training_tasks() -> list[Task]:
    """The training pool: strained, sheared and rattled cells of every polymorph, the isolated atoms, the
    wurtzite → h-BN path and the thermal snapshots (tier 1 = priority 1, the rest later).

    Returns
    -------
    list of Task
    """
    tasks = []
    for phase in POLYMORPHS:
        for n, eps in enumerate(STRAINS):
            tasks.append(_task(f"train/{phase}/strain{eps:+.2f}", "train", f"{phase}_strain",
                               SMALL[phase] + [{"op": "strain", "strain": eps}], 1 if n < 3 else 3))
        for seed in range(4):
            recipe = SMALL[phase] + [{"op": "shear", "magnitude": 0.03, "seed": seed},
                                     {"op": "rattle", "sigma": 0.03, "seed": seed}]
            tasks.append(_task(f"train/{phase}/shear{seed}", "train", f"{phase}_shear", recipe,
                               1 if seed == 0 else 3))
        for n, (sigma, eps) in enumerate(RATTLES):
            recipe = RATTLE_CELL[phase] + [{"op": "strain", "strain": eps},
                                           {"op": "rattle", "sigma": sigma, "seed": 100 + n}]
            tasks.append(_task(f"train/{phase}/rattle{n}", "train", f"{phase}_rattle", recipe,
                               1 if n < 3 else 3))
    for symbol in ("Zn", "O"):  # E(isolated atom) pins each element's energy constant (see data README)
        tasks.append(_task(f"train/atom/{symbol}", "train", "isolated_atom",
                           [{"op": "atom", "symbol": symbol}, {"op": "box", "vacuum": 5.0}], 2))
    for lam in (0.25, 0.5, 0.75):
        for eps in (0.0, 0.03):
            recipe = [{"op": "path", "lam": lam}, {"op": "strain", "strain": eps},
                      {"op": "rattle", "sigma": 0.03, "seed": int(100 * lam)}]
            tasks.append(_task(f"train/path/lam{lam:.2f}_strain{eps:+.2f}", "train", "wurtzite_hbn_path",
                               recipe, 1 if (lam == 0.5 and eps == 0.0) else 3))
    for n in range(len(POLYMORPHS) * len(THERMAL_TEMPERATURES) * THERMAL_FRAMES):
        phase, temperature, k = thermal_sample(n)
        tasks.append(_task(f"train/{phase}/thermal{temperature:.0f}K_{k}", "train", f"{phase}_thermal",
                           [{"op": "frame", "file": THERMAL_CANDIDATES, "index": n}], 5))
    return tasks


def eos_tasks() -> list[Task]:
    """The energy–volume scans: every polymorph at EOS_VOLUMES, relaxed at constant volume for the phases
    in EOS_RELAX (single points first).

    Returns
    -------
    list of Task
    """
    tasks = []
    for phase in POLYMORPHS:
        for v in EOS_VOLUMES:
            recipe = SMALL[phase] + [{"op": "strain", "strain": round(v ** (1 / 3) - 1, 8)}]
            if phase in EOS_RELAX:
                tasks.append(_task(f"eos/{phase}/v{v:.2f}", "eos", f"{phase}_eos", recipe, 2, kind="relax",
                                   relax={"fmax": 0.01, "steps": 40, "cell": "constant_volume"}))
            else:
                tasks.append(_task(f"eos/{phase}/v{v:.2f}", "eos", f"{phase}_eos", recipe, 2))
    return sorted(tasks, key=lambda t: t.kind == "relax")  # single points first: some curves exist early


def liquid_tasks() -> list[Task]:
    """DFT single points on the first LIQUID_GFN1_TASKS GFN1-xTB "liquid" frames. Only a few: the GFN1
    sampler turned out not to make liquid ZnO (O–O bonded pairs, Zn–Zn at metallic distances; the
    liquid chapter shows it), so these frames are an extreme out-of-domain test, and the models' own
    liquids (:func:`liquid_model_tasks`) are the liquid reference.

    Returns
    -------
    list of Task
    """
    return [_task(f"liquid/frame{k:02d}", "liquid", "liquid",
                  [{"op": "frame", "file": "candidates/liquid_gfn1.extxyz", "index": k}], 6)
            for k in range(LIQUID_GFN1_TASKS)]


def surface_tasks() -> list[Task]:
    """Ion relaxations of the wurtzite bulk cell and of the (10-10) and (11-20) slabs at the SURFACE lattice.

    Returns
    -------
    list of Task
    """
    relax = {"fmax": 0.03, "steps": 40, "cell": None}
    bulk = [{"op": "polymorph", "name": "wurtzite", **SURFACE}]
    tasks = [_task("surfaces/bulk", "surfaces", "surface_bulk", bulk, 4, kind="relax", relax=relax)]
    for miller, layers in (("10-10", 6), ("11-20", 8)):  # slabs: ~11 CPU-min per step; after the thermal frames
        recipe = [{"op": "slab", "miller": miller, "layers": layers, "vacuum": 6.0, **SURFACE}]
        tasks.append(_task(f"surfaces/{miller}", "surfaces", f"surface_{miller}", recipe, 5,
                           kind="relax", relax=relax))
    return tasks


def nanoparticle_tasks() -> list[Task]:
    """The clusters: relaxations of the two rings and the sodalite cage, single points of the wurtzite
    cuts (ZnO)_8, _12 and _16.

    Returns
    -------
    list of Task
    """
    relax = {"fmax": 0.05, "steps": 60, "cell": None}
    clusters = {"ring3": {"op": "ring_cluster", "n_formula": 3},
                "ring6": {"op": "ring_cluster", "n_formula": 6},
                "cage12": {"op": "cage_cluster", "kind": "sodalite12"},
                "wurtzite8": {"op": "wurtzite_cluster", "n_formula": 8},
                "wurtzite12": {"op": "wurtzite_cluster", "n_formula": 12},
                "wurtzite16": {"op": "wurtzite_cluster", "n_formula": 16}}
    tasks = []
    for name, create in clusters.items():
        recipe = [create, {"op": "box", "vacuum": 5.0}]
        small = name in ("ring3", "ring6", "cage12")
        tasks.append(_task(f"nanoparticles/{name}", "nanoparticles", f"cluster_{name.rstrip('0123456789')}",
                           recipe, (4 if name != "cage12" else 6) if small else 7,
                           kind="relax" if small else "single",
                           relax=relax if small else None))
    return tasks


def phonon_tasks() -> list[Task]:
    """Finite displacements (phonopy, symmetry-reduced) of the DFT-relaxed wurtzite cell of the E–V scan
    at V/V0 = 1.00, in a PHONON_SUPERCELL supercell; they wait until that relaxation is done.

    Returns
    -------
    list of Task
    """
    n_displacements = len(phonon_displacements(polymorph("wurtzite"), PHONON_SUPERCELL, PHONON_DISPLACEMENT))
    base = [{"op": "relaxed", "file": "eos.extxyz", "task": "eos/wurtzite/v1.00"}]
    return [_task(f"phonons/wurtzite/disp{k}", "phonons", "phonon_wurtzite",
                  base + [{"op": "phonon_displacement", "supercell": list(PHONON_SUPERCELL), "index": k,
                           "displacement": PHONON_DISPLACEMENT}], 4)
            for k in range(n_displacements)]


def all_tasks() -> list[Task]:
    """Every task of the plan, in priority order (names are unique).

    Returns
    -------
    list of Task
    """
    tasks = (convergence_tasks() + training_tasks() + eos_tasks() + phonon_tasks() + nanoparticle_tasks()
             + surface_tasks() + liquid_tasks())
    tasks += model_optimum_tasks()
    tasks += liquid_model_tasks()
    tasks += cluster_md_tasks()
    tasks += heldout_tasks()
    names = [t.name for t in tasks]
    assert len(names) == len(set(names)), "task names must be unique"
    return sorted(tasks, key=lambda t: t.priority)


# ------------------------------------------------------------------ DFT at the models' nanoparticle optima
#: How a model relaxes each cluster of nanoparticle_tasks (zno_book.reference.sampling.nanoparticle_optima):
#: positions only, to fmax (eV/Å) or at most `steps` optimiser steps, from the task's own start.
MODEL_OPTIMUM_RELAX = {"fmax": 0.05, "steps": 300, "optimizer": "BFGS"}


def nanoparticle_clusters() -> dict[str, list]:
    """Cluster name → start recipe, in the order of :func:`nanoparticle_tasks` (the frame order of the
    candidate files of :func:`model_optimum_tasks`).

    Returns
    -------
    dict of str to list of dict
    """
    return {t.name.split("/", 1)[1]: list(t.recipe) for t in nanoparticle_tasks()}


def model_optimum_candidates(kind: str) -> str:
    """Candidate file (relative to the data folder) holding the optima of model ``kind``, one frame per
    cluster of :func:`nanoparticle_clusters`, written by ``python -m zno_book.reference sample``.

    Parameters
    ----------
    kind : str
        One of MODEL_KINDS.

    Returns
    -------
    str
    """
    _check_kind(kind)
    return f"candidates/nanoparticles_{kind}.extxyz"


def model_optimum_tasks() -> list[Task]:
    """"The honest test": a DFT single point (Γ, the data set's settings) at each model's own optimum of
    each cluster, ``nanoparticles/<cluster>/at_<kind>``. The frames wait for the sampler
    (:func:`zno_book.reference.sampling.sample_nanoparticle_optima`).

    Returns
    -------
    list of Task
    """
    return [_task(f"nanoparticles/{cluster}/at_{kind}", "nanoparticles", "cluster_model_optimum",
                  [{"op": "frame", "file": model_optimum_candidates(kind), "index": k}], 5)
            for kind in MODEL_KINDS for k, cluster in enumerate(nanoparticle_clusters())]

# ------------------------------------------------------------------ the liquid of each model (honest test)
LIQUID_MODEL_FRAMES = 10  # DFT single points per model on frames of its own 36-atom liquid trajectory (issue: 10–20)


def liquid_model_candidates(kind: str) -> str:
    """Candidate file (relative to the data folder) with frames of ``kind``'s own liquid MD, written by
    :func:`zno_book.reference.sampling.sample_liquid_models`.

    Parameters
    ----------
    kind : str
        One of MODEL_KINDS.

    Returns
    -------
    str
    """
    _check_kind(kind)
    return f"candidates/liquid_{kind}.extxyz"


def liquid_model_tasks() -> list[Task]:
    """DFT single points (same settings as everything else) on LIQUID_MODEL_FRAMES frames of each
    model's own liquid trajectory at the reference state; they wait until the sampler has written them.
    Frame-major order (frame k of every model before frame k + 1), so the models' counts grow together.

    Returns
    -------
    list of Task
    """
    return [_task(f"liquid/at_{kind}/frame{k:02d}", "liquid", f"liquid_model_{kind}",
                  [{"op": "frame", "file": liquid_model_candidates(kind), "index": k}], 5)
            for k in range(LIQUID_MODEL_FRAMES) for kind in MODEL_KINDS]


# ------------------------------------------------------------------ DFT on frames of the models' cluster MD
#: DFT single points per model kind on frames of its nanoparticle MD (issue 17: all kinds together
#: ≤ 5 one-core hours; the frames are chosen within that budget by
#: :func:`zno_book.campaign.write_cluster_md_candidates`, from costs measured on the cluster single points).
#: Two, not three: the cost model underestimated the 16-atom cluster 2.9× beside a busy second core, and
#: the third frame of each kind (the most expensive cluster) would not have finished in the session.
CLUSTER_MD_FRAMES = 2


def cluster_md_candidates(kind: str) -> str:
    """Candidate file (relative to the data folder) with frames of the nanoparticle MD of model ``kind``'s
    ensemble (the states before its first unphysical events, or its hottest states), written by
    :func:`zno_book.campaign.write_cluster_md_candidates`.

    Parameters
    ----------
    kind : str
        One of MODEL_KINDS.

    Returns
    -------
    str
    """
    _check_kind(kind)
    return f"candidates/cluster_md_{kind}.extxyz"


def cluster_md_tasks() -> list[Task]:
    """DFT single points (Γ, the data set's settings) on CLUSTER_MD_FRAMES frames of each kind's cluster MD,
    ``nanoparticles/md/<kind>/frame<k>`` (dataset ``nanoparticles``, config_type ``cluster_md_<kind>``);
    they wait until the candidates are written. Frame-major order, like the models' liquid frames.

    Returns
    -------
    list of Task
    """
    return [_task(f"nanoparticles/md/{kind}/frame{k:02d}", "nanoparticles", f"cluster_md_{kind}",
                  [{"op": "frame", "file": cluster_md_candidates(kind), "index": k}], 6)
            for k in range(CLUSTER_MD_FRAMES) for kind in MODEL_KINDS]


# ------------------------------------------------------------------ the held-out set (never used for any choice)
#: σ (Å) of the rattled held-out cells: the training rattles' range (0.03–0.15) and a bit beyond
HELDOUT_RATTLES = (0.05, 0.10, 0.15, 0.18)
#: thermal-like held-out cells per phase: a random isotropic strain (±3 %), a random shear (bound 3 %) and
#: a rattle of σ 0.06–0.12 Å (the 600–1200 K snapshots' displacements), drawn once, written into the recipe
HELDOUT_THERMAL = 4
#: pair → range (Å) of the one short contact of a held-out cell, below the shortest distances of the
#: training frames (Zn–O 1.46 Å once, 1.55 Å next; Zn–Zn and O–O 2.22 Å) but above 1.5 Å, except Zn–O,
#: which stays above 1.5 Å and so below all training frames but one
HELDOUT_CONTACTS = {("Zn", "O"): (1.50, 1.60), ("Zn", "Zn"): (2.00, 2.15), ("O", "O"): (1.90, 2.10)}
HELDOUT_KINDS = ("rattle", "thermal", "contact")
HELDOUT_SEED = 7000  # seeds from HELDOUT_SEED on: none of the training set's (0–107)
#: no two atoms of a held-out cell closer than this (Å): the shortest distance in the training frames
HELDOUT_MIN_DISTANCE = 1.45


def _heldout_steps(kind: str, n: int, seed: int) -> list[dict]:
    """Recipe steps of held-out cell ``n`` of ``kind`` (rattle, thermal, contact), drawn from ``seed``."""
    if kind == "rattle":
        return [{"op": "rattle", "sigma": HELDOUT_RATTLES[n], "seed": seed}]
    rng = np.random.default_rng(seed)
    if kind == "thermal":
        strain, sigma = round(float(rng.uniform(-0.03, 0.03)), 4), round(float(rng.uniform(0.06, 0.12)), 3)
        return [{"op": "strain", "strain": strain}, {"op": "shear", "magnitude": 0.03, "seed": seed},
                {"op": "rattle", "sigma": sigma, "seed": seed}]
    pair, (low, high) = list(HELDOUT_CONTACTS.items())[n]
    return [{"op": "rattle", "sigma": 0.05, "seed": seed},
            {"op": "contact", "pair": list(pair), "distance": round(float(rng.uniform(low, high)), 3), "seed": seed}]


def _heldout_recipe(phase: str, kind: str, n: int) -> list[dict]:
    """The recipe of held-out cell ``n`` of ``kind`` of ``phase``: the first seed (HELDOUT_SEED + 100·phase
    + 10·kind + n, then + 1000, + 2000, ...) whose structure has no two atoms closer than
    HELDOUT_MIN_DISTANCE (a σ = 0.18 Å rattle may put a Zn–O pair at 1.3 Å)."""
    seed = HELDOUT_SEED + 100 * POLYMORPHS.index(phase) + 10 * HELDOUT_KINDS.index(kind) + n
    for attempt in range(10):
        recipe = RATTLE_CELL[phase] + _heldout_steps(kind, n, seed + 1000 * attempt)
        if shortest_distance(build(recipe)) >= HELDOUT_MIN_DISTANCE:
            return recipe
    raise RuntimeError(f"no held-out {phase} {kind} cell {n} without a contact below {HELDOUT_MIN_DISTANCE} Å")


def heldout_tasks() -> list[Task]:
    """The held-out set: single points on 8-atom cells (the training set's RATTLE_CELL) of every
    polymorph, rattled (``heldout/<phase>/rattle<n>``), thermal-like (``thermal<n>``: strain, shear and
    rattle) and with one short contact (``contact_<pair>``, on a cell rattled by 0.05 Å), config_type
    ``heldout_<phase>_<kind>``, dataset ``heldout``; seeded deterministically, priority 8 (last).

    Returns
    -------
    list of Task
    """
    counts = {"rattle": len(HELDOUT_RATTLES), "thermal": HELDOUT_THERMAL, "contact": len(HELDOUT_CONTACTS)}
    tasks = []
    for phase in POLYMORPHS:
        for kind in HELDOUT_KINDS:
            for n in range(counts[kind]):
                label = "contact_" + "".join(list(HELDOUT_CONTACTS)[n]) if kind == "contact" else f"{kind}{n}"
                tasks.append(_task(f"heldout/{phase}/{label}", "heldout", f"heldout_{phase}_{kind}",
                                   _heldout_recipe(phase, kind, n), 8, cost_like=f"{phase}_rattle"))
    return tasks


# ------------------------------------------------------------------ a smoke-test plan (seconds, not data)
#: the tiny plan's settings: a cutoff and k density far below the book's, to test the pipeline only
TINY_SETTINGS = {"ecut": 250.0, "kpt_density": 0.7}


def tiny_tasks() -> list[Task]:
    """A plan of about a minute on one core for testing the generator end to end (``run --plan tiny``, data
    set ``tiny``): rattled 2-atom rocksalt and CsCl single points and one position relaxation of a rattled
    and sheared 2-atom rocksalt cell, all at :data:`TINY_SETTINGS`. Never data of the book.

    Returns
    -------
    list of Task
    """
    tasks = [_task(f"tiny/{phase}/rattle{seed}", "tiny", f"tiny_{phase}",
                   SMALL[phase] + [{"op": "rattle", "sigma": 0.05, "seed": seed}], 0, settings=TINY_SETTINGS)
             for phase in ("rocksalt", "cscl") for seed in (0, 1)]
    relax = SMALL["rocksalt"] + [{"op": "shear", "magnitude": 0.03, "seed": 0},
                                 {"op": "rattle", "sigma": 0.1, "seed": 3}]
    tasks.append(_task("tiny/rocksalt/relax", "tiny", "tiny_rocksalt_relax", relax, 0, kind="relax",
                       relax={"fmax": 0.02, "steps": 8, "cell": None}, settings=TINY_SETTINGS))
    return tasks
