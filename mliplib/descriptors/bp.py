"""Behler–Parrinello atom-centred symmetry functions with analytic per-pair gradients.

Definitions are exactly those of DScribe's ``ACSF`` (``dscribe/ext/acsf.cpp``), so values agree with
``dscribe.descriptors.ACSF`` number for number (tests check rtol 1e-10):

    fc(r) = ½ (cos(π r / rc) + 1)                                    for r < rc, else 0
    G1    = Σ_j fc(r_ij)                                             (always emitted, as in DScribe)
    G2    = Σ_j exp(−η (r_ij − Rs)²) fc(r_ij)
    G4    = 2^(1−ζ) Σ_{j<k} (1 + λ cos θ_ijk)^ζ exp(−η (r_ij² + r_ik² + r_jk²)) fc(r_ij) fc(r_ik) fc(r_jk)
    G5    = 2^(1−ζ) Σ_{j<k} (1 + λ cos θ_ijk)^ζ exp(−η (r_ij² + r_ik²)) fc(r_ij) fc(r_ik)

G4 triplets with r_jk ≥ rc contribute nothing; G4/G5 have no radial shift Rs. One deliberate difference:
cos θ is clamped to [−1, 1], so an atom between two opposite images (cos θ rounding to −1 − ε) gives a
finite value where DScribe, for non-integer ζ, returns NaN. The angular sums run
over *unique* (unordered) neighbour pairs {j, k} — periodic images count as distinct neighbours.
Functions are resolved by neighbour species: radial ones per neighbour element, angular ones per
unordered pair of neighbour elements. The centre's own element is **not** encoded
(``centre_resolved = False``): a model keeps one weight vector / network per centre element.

Feature layout (identical to DScribe's, so :meth:`BehlerParrinello.to_dscribe_order` is the identity).
With species sorted by atomic number, s = 0..S−1, n2 G2, n4 G4 and n5 G5 parameter rows:

    for s in species:                    [G1[s], G2[s]_1 … G2[s]_n2]                (S·(1+n2) columns)
    for (a, b) with a ≥ b, in the order its = a(a+1)/2 + b:
                                         [G4[a-b]_1 … G4[a-b]_n4, G5[a-b]_1 … G5[a-b]_n5]

e.g. for ZnO (O = 8 < Zn = 30): G1[O], G2[O]…, G1[Zn], G2[Zn]…, then the O-O, Zn-O, Zn-Zn blocks.

Gradients are per neighbour pair (see :mod:`mliplib.descriptors.base`): ``values[p, f] = ∂G_{i_p f}/∂r_{i_p j_p}``.
For the angular terms r_jk = r_ik − r_ij, so the dependence on r_jk is folded into the two pair
vectors of the centre and no third-atom term is needed.

Units: lengths Å, η in Å⁻², ζ and λ dimensionless.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from mliplib.descriptors.base import (
    FORCES,
    GRADIENTS,
    VALUES,
    Descriptor,
    species_numbers,
)

#: Let the compiler reassociate sums (vectorised reductions) and fuse multiply-adds; no NaN/inf assumptions.
_FAST = {"reassoc", "contract", "arcp"}
#: Triplets processed per batch in the angular kernel (scratch arrays stay in L1 cache).
_CHUNK = 128


def _fmt(x: float) -> str:
    """Two decimals when exact, otherwise enough digits to tell parameters apart."""
    s = f"{x:.2f}"
    return s if float(s) == x else f"{x:.6g}"


def _param_rows(rows, width: int, name: str, columns: str) -> np.ndarray:
    if rows is None:
        return np.zeros((0, width))
    try:
        arr = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a list of ({columns}) rows of numbers; got {rows!r}") from err
    if arr.size == 0:
        return np.zeros((0, width))
    if arr.ndim == 1 and arr.shape[0] == width:
        raise ValueError(f"{name} must be a list of ({columns}) rows, e.g. {name}=[{tuple(arr.tolist())}]; "
                         f"got a single flat row {rows!r}")
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{name} must have shape (n, {width}) with rows ({columns}); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values: {rows!r}")
    if np.any(arr[:, 0] < 0):
        bad = arr[arr[:, 0] < 0, 0]
        raise ValueError(f"{name}: eta must be ≥ 0 Å⁻² (a negative eta makes the Gaussian grow with distance); "
                         f"got eta = {bad.tolist()}")
    return arr


def _angular_rows(rows, name: str) -> np.ndarray:
    arr = _param_rows(rows, 3, name, "eta, zeta, lambda")
    if len(arr):
        zeta, lam = arr[:, 1], arr[:, 2]
        if np.any(zeta < 1):
            raise ValueError(f"{name}: zeta must be ≥ 1 (for zeta < 1 the derivative of (1 + λ cos θ)^zeta "
                             f"diverges at the collinear triplets present in every crystal); "
                             f"got zeta = {zeta[zeta < 1].tolist()}")
        if np.any(np.abs(lam) != 1):
            raise ValueError(f"{name}: lambda must be +1 or -1; got lambda = {lam[np.abs(lam) != 1].tolist()}")
    return arr


class BehlerParrinello(Descriptor):
    """Behler–Parrinello symmetry functions G1, G2, G4, G5 (DScribe ACSF definitions and column order).

    Parameters
    ----------
    species : sequence of str or int
        Element symbols or atomic numbers the descriptor knows (stored sorted by atomic number).
    cutoff : float
        rc in Å, > 0.
    g2 : sequence of (eta, rs) or None
        Radial functions: eta in Å⁻² (≥ 0), rs in Å (≥ 0).
    g4 : sequence of (eta, zeta, lambda) or None
        Angular functions with the r_jk factor: eta in Å⁻² (≥ 0), zeta ≥ 1, lambda = ±1.
    g5 : sequence of (eta, zeta, lambda) or None
        Angular functions without r_jk, same ranges.

    Notes
    -----
    Evaluation is inherited from :class:`~mliplib.descriptors.base.Descriptor`: ``compute(atoms)`` → G
    (n_atoms, n_features); ``compute(atoms, gradients=True)`` → (G, Gradients);
    ``forces_and_virial(atoms, dE_dG)`` and ``values_forces_and_virial(atoms, dE_dG)`` contract on the
    fly in one kernel pass without storing per-pair gradients. A ``neighbors`` list is checked against
    the atoms and must be complete to at least ``cutoff`` (:func:`mliplib.neighbors.check_pairs`).
    """

    centre_resolved = False

    def __init__(self, species, cutoff, g2=None, g4=None, g5=None):
        self.species_z = species_numbers(species)
        try:
            cutoff = float(cutoff)
        except (TypeError, ValueError) as err:
            raise ValueError(f"cutoff must be a positive length in Å, got {cutoff!r}") from err
        if not (cutoff > 0 and np.isfinite(cutoff)):
            raise ValueError(f"cutoff must be a positive finite length in Å, got {cutoff}")
        self.cutoff = cutoff
        self.g2 = _param_rows(g2, 2, "g2", "eta, rs")
        if len(self.g2) and np.any(self.g2[:, 1] < 0):
            negative = self.g2[self.g2[:, 1] < 0, 1].tolist()
            raise ValueError(f"g2: rs must be ≥ 0 Å (it is a distance); got rs = {negative}")
        self.g4 = _angular_rows(g4, "g4")
        self.g5 = _angular_rows(g5, "g5")
        self._build_tables()
        self.feature_names = self._names()

    # ------------------------------------------------------------------ set-up
    def _build_tables(self):
        ang = np.concatenate([self.g4, self.g5])
        etas = sorted(set(ang[:, 0].tolist()))
        shapes = sorted(set(map(tuple, ang[:, 1:].tolist())))
        self._ang_eta = np.array(etas, dtype=np.float64)
        self._ang_zeta = np.array([z for z, _ in shapes], dtype=np.float64)
        self._ang_lam = np.array([lam for _, lam in shapes], dtype=np.float64)
        self._ang_zint = np.array([int(z) if float(z).is_integer() and z <= 64 else -1 for z, _ in shapes],
                                  dtype=np.int64)

        def index(rows):
            e = np.array([etas.index(r[0]) for r in rows.tolist()], dtype=np.int64)
            a = np.array([shapes.index((r[1], r[2])) for r in rows.tolist()], dtype=np.int64)
            return e, a

        self._g4_e, self._g4_a = index(self.g4)
        self._g5_e, self._g5_a = index(self.g5)
        self._params = _Params(len(self.species_z), self.cutoff, np.ascontiguousarray(self.g2[:, 0]),
                               np.ascontiguousarray(self.g2[:, 1]), self._ang_eta, self._ang_zeta, self._ang_lam,
                               self._ang_zint, 2.0 ** (1.0 - self._ang_zeta), self._g4_e, self._g4_a,
                               self._g5_e, self._g5_a)

    def _names(self) -> list[str]:
        sym = self.species
        names = []
        for s in sym:
            names.append(f"G1[{s}]")
            names += [f"G2[{s}](eta={_fmt(e)},rs={_fmt(r)})" for e, r in self.g2.tolist()]
        for a in range(len(sym)):
            for b in range(a + 1):
                pair = f"{sym[a]}-{sym[b]}"
                for kind, rows in (("G4", self.g4), ("G5", self.g5)):
                    names += [f"{kind}[{pair}](eta={_fmt(e)},zeta={_fmt(z)},lambda={int(lam):+d})"
                              for e, z, lam in rows.tolist()]
        return names

    @classmethod
    def default_zno(cls) -> BehlerParrinello:
        """A general-purpose ZnO set: rc = 6 Å, 36 functions (18 radial + 18 angular).

        Radial (8 G2 per neighbour element + G1): shifted Gaussians on the geometric grid of
        Imbalzano et al., J. Chem. Phys. 148, 241730 (2018): Rs_k = rc / n^(k/n), k = 1..8, i.e.
        Rs = 4.63, 3.57, 2.75, 2.12, 1.64, 1.26, 0.97, 0.75 Å, each with η_k = 1/(Rs_(k−1) − Rs_k)²
        (Rs_0 = rc), so neighbouring Gaussians overlap at ~e^(−1/4) and together cover 0.75–6 Å. The grid
        is densest at short range, where the energy varies fastest: the Zn–O bond (1.98 Å), compressed
        bonds, and the close contacts (< 1.5 Å) a potential must learn to repel in MD. G1 (the smooth
        coordination count) carries the long-range tail to 6 Å.

        Angular (G4, per neighbour-element pair O-O, Zn-O, Zn-Zn): η = 0.005 Å⁻² (nearly flat, counts
        all triplets within the cutoff) with (ζ, λ) = (1, ±1), (4, ±1), and η = 0.05 Å⁻² (first-shell
        weighted: e^(−0.9) for a Zn–O–O tetrahedral triplet vs ≲ e^(−4) for the second shell) with
        (ζ, λ) = (1, ±1). λ = −1, ζ = 4 resolves the tetrahedral 109.5° (wurtzite/zincblende) from the
        90°/180° angles of rocksalt. No G5: G4 keeps the triplet sum local (r_jk < rc), which is
        the standard Behler choice for condensed phases and ~2× cheaper.

        Returns
        -------
        BehlerParrinello
        """
        rc, n = 6.0, 8
        grid = [rc / n ** (k / n) for k in range(n + 1)]  # grid[0] = rc
        g2 = [(float(f"{1.0 / (grid[k - 1] - grid[k]) ** 2:.3g}"), round(grid[k], 3)) for k in range(1, n + 1)]
        g4 = [(0.005, 1, 1), (0.005, 1, -1), (0.005, 4, 1), (0.005, 4, -1), (0.05, 1, 1), (0.05, 1, -1)]
        return cls(["Zn", "O"], rc, g2=g2, g4=g4)

    def to_dict(self) -> dict:
        """Parameters as JSON-serialisable values, ``{"kind": "BehlerParrinello", ...}``; see
        :func:`~mliplib.descriptors.base.descriptor_from_dict`."""
        return {"kind": "BehlerParrinello", "species": self.species, "cutoff": self.cutoff,
                "g2": self.g2.tolist(), "g4": self.g4.tolist(), "g5": self.g5.tolist()}

    def dscribe_kwargs(self) -> dict:
        """Keyword arguments of ``dscribe.descriptors.ACSF`` that give the same functions and columns.

        Returns
        -------
        dict
            ``r_cut``, ``species`` and the non-empty ``g2_params``, ``g4_params``, ``g5_params``.
        """
        kw = {"r_cut": self.cutoff, "species": self.species}
        for key, rows in (("g2_params", self.g2), ("g4_params", self.g4), ("g5_params", self.g5)):
            if len(rows):
                kw[key] = rows.tolist()
        return kw

    def to_dscribe_order(self, G: np.ndarray) -> np.ndarray:
        """Columns in DScribe ACSF order.

        Our native layout *is* DScribe's (see the module docstring: per neighbour species [G1, G2…], then
        per species pair a ≥ b, its = a(a+1)/2 + b, [G4…, G5…]), so this is the identity map (returns a
        copy), kept so callers need not rely on that fact.

        Parameters
        ----------
        G : numpy.ndarray, shape (..., n_features)

        Returns
        -------
        numpy.ndarray, shape (..., n_features)
        """
        G = np.asarray(G, dtype=np.float64)
        if G.shape[-1] != self.n_features:
            raise ValueError(f"G has {G.shape[-1]} columns, this descriptor has {self.n_features} features")
        return G.copy()

    def __repr__(self) -> str:
        return (f"BehlerParrinello(species={self.species}, cutoff={self.cutoff}, n_g2={len(self.g2)}, "
                f"n_g4={len(self.g4)}, n_g5={len(self.g5)}, n_features={self.n_features})")

    # ------------------------------------------------------------------ kernel
    def _evaluate(self, mode, species, offsets, j, vectors, dE_dG, G, grad, gpair):
        _bp_kernel(mode, offsets, j, species, vectors, self._params, dE_dG, G, grad, gpair,
                   min(len(species), 8 * numba.get_num_threads()))


# ---------------------------------------------------------------------- polynomial kernels
# Polynomial kernels for the transcendental functions of the inner loops: calls to libm stop the
# compiler from vectorising a loop, these do not. exp agrees with libm to ≤ 1 ulp, fc and dfc/dr with
# the cos/sin formulas to ≤ 3e-16 absolute, the rounding of those formulas themselves (tests/test_bp.py).
# Taylor coefficients of sin(y) and cos(y), |y| ≤ π/2 (truncation error < 2e-17).
_SIN_C = np.array([(-1.0) ** n / math.factorial(2 * n + 1) for n in range(11)])
_COS_C = np.array([(-1.0) ** n / math.factorial(2 * n) for n in range(12)])
# exp(x) = 2^k · exp(r), |r| ≤ ln2/2, Taylor to r^13 (truncation error < 1e-17); 2^k from a table.
_EXP_C = np.array([1.0 / math.factorial(n) for n in range(14)])
_POW2 = np.array([2.0 ** k for k in range(-1074, 1)])
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@njit(cache=True, inline="always", fastmath=_FAST)
def _exp_nonpos(x, exp_c, pow2):
    """exp(x) for x ≤ 0 (x < −740 gives ~4e-322 instead of 0)."""
    x = max(x, -740.0)
    kf = math.floor(x * _LOG2E + 0.5)
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    p = exp_c[13]
    for n in range(12, -1, -1):
        p = p * r + exp_c[n]
    return p * pow2[kf + 1074]


@njit(cache=True, inline="always", fastmath=_FAST)
def _fc_poly(r, k_pi, sin_c):
    """fc(r) = ½(cos(πr/rc) + 1) for 0 ≤ r ≤ rc, by polynomial (vectorisable; within 3e-16 of the libm formula)."""
    y = k_pi * r - 0.5 * math.pi  # cos(x) = −sin(y), |y| ≤ π/2
    z = y * y
    s = sin_c[10]
    for n in range(9, -1, -1):
        s = s * z + sin_c[n]
    return 0.5 * (1.0 - s * y)


@njit(cache=True, inline="always", fastmath=_FAST)
def _dfc_poly(r, k_pi, cos_c):
    """dfc/dr = −½ (π/rc) sin(πr/rc) for 0 ≤ r ≤ rc (sin(x) = cos(y), y = x − π/2)."""
    y = k_pi * r - 0.5 * math.pi
    z = y * y
    c = cos_c[11]
    for n in range(10, -1, -1):
        c = c * z + cos_c[n]
    return -0.5 * k_pi * c



# ---------------------------------------------------------------------- kernels
#
# One centre at a time (``_centre``): its pairs sorted by neighbour species into a per-pair table
# (``_environment``), the radial functions (``_radial``), then the angular ones, one species-pair block
# at a time (``_angular_block``), over triplets gathered in chunks of ≤ _CHUNK (``_gather_triplets``) so
# that the scratch stays in L1 cache and the loops over triplets are long enough to vectorise. A chunk
# goes through small steps, each a loop over its triplets: geometry and radial factors
# (``_triplet_factors``), angular shapes (``_triplet_shapes``), values (``_add_values``), derivative
# factors (``_derivative_factors``), then either the coefficients of every function
# (``_triplet_coefficients``) scattered into per-pair gradient rows (``_scatter_gradients``, mode
# GRADIENTS), or the coefficients contracted with ∂E/∂G as they are computed
# (``_contracted_coefficients``) and scattered into per-pair ∂E/∂r (``_scatter_forces``, mode FORCES).
#
# How the steps stay as fast as one monolithic loop nest (measured, benchmarks/README.md): they are
# inlined into one function by LLVM (``forceinline``); they run without reference counting (``_nrt``
# False: they allocate nothing, and reading an array out of the scratch tuple would otherwise cost an
# atomic increment and decrement inside the loops); and every scratch array is an allocation of its own
# (``_Scratch``), so the compiler knows no two overlap and vectorises the loops over triplets (rows of a
# shared 2-D scratch array were 10–20 % slower).

_STEP = {"cache": True, "fastmath": _FAST, "forceinline": True, "_nrt": False}


class _Params(NamedTuple):
    """The descriptor's parameters as the kernels take them (flat arrays and numbers)."""

    n_species: int
    rc: float
    g2_eta: np.ndarray
    g2_rs: np.ndarray
    ang_eta: np.ndarray  # distinct η of the angular functions
    ang_zeta: np.ndarray  # distinct (ζ, λ) shapes of the angular functions
    ang_lam: np.ndarray
    ang_zint: np.ndarray  # ζ as an integer ≤ 64, or −1
    ang_pref: np.ndarray  # 2^(1 − ζ)
    g4_e: np.ndarray  # per G4 function: index into ang_eta and into the shapes
    g4_a: np.ndarray
    g5_e: np.ndarray  # per G5 function: the same
    g5_a: np.ndarray


class _Scratch(NamedTuple):
    """Scratch of one chunk of centres. Per local pair t (species-sorted order, max_m of them), per triplet
    c of a chunk (cap of them), per η e, per (ζ, λ) shape k, per angular function kk of a block."""

    bstart: np.ndarray  # (n_species + 1,): species b occupies local pairs bstart[b]:bstart[b + 1]
    fill: np.ndarray  # (n_species + 1,): cursors of the species sort
    gp: np.ndarray  # [t]: index of the pair in the pair list
    x: np.ndarray  # [t]: r_ij components (Å), distance, unit vector, fc, dfc/dr
    y: np.ndarray
    z: np.ndarray
    r: np.ndarray
    ux: np.ndarray
    uy: np.ndarray
    uz: np.ndarray
    fc: np.ndarray
    dfc: np.ndarray
    dsum: np.ndarray  # [t]: mode FORCES, radial ∂E/∂r
    acc: np.ndarray  # [t, 3]: mode FORCES, ∂E/∂r
    P: np.ndarray  # [e, t]: e^(−η r²) fc
    D: np.ndarray  # [e, t]: dP/dr
    T: np.ndarray  # [c]: the two local pairs t > q of the triplet
    Q: np.ndarray
    r2: np.ndarray  # [c]: r_jk²
    cos: np.ndarray  # [c]: cos θ clamped to [−1, 1]
    ra: np.ndarray  # [c]: r of T and of Q, their inverses, cos/ra, cos/rb
    rb: np.ndarray
    inv_ra: np.ndarray
    inv_rb: np.ndarray
    cia: np.ndarray
    cib: np.ndarray
    rjk: np.ndarray  # [c]: r_jk (capped at rc), fc(r_jk), (dfc/dr)(r_jk)/r_jk
    fcc: np.ndarray
    xc: np.ndarray
    u: np.ndarray  # [c]: 1 + λ cos θ of the current shape
    waa: np.ndarray  # [c]: mode FORCES, the coefficients below contracted with ∂E/∂G
    wba: np.ndarray
    wab: np.ndarray
    wbb: np.ndarray
    pt: np.ndarray  # [e, c]: P_t, P_q, D_t P_q, P_t D_q
    pq: np.ndarray
    dtx: np.ndarray
    dqx: np.ndarray
    ex: np.ndarray  # [e, c]: e^(−η r_jk²)
    w4: np.ndarray  # [e, c]: P_t P_q X with X = e^(−η r_jk²) fc(r_jk) (G4); D_t P_q X; P_t D_q X
    wa4: np.ndarray
    wb4: np.ndarray
    pdx: np.ndarray  # [e, c]: P_t P_q (∂X/∂r_jk)/r_jk
    w5: np.ndarray  # [e, c]: P_t P_q (G5)
    A: np.ndarray  # [k, c]: 2^(1−ζ) (1 + λ cos θ)^ζ and its derivative by cos θ
    dA: np.ndarray
    caa: np.ndarray  # [kk, c]: ∂T/∂r_ij = caa â + cba b̂, ∂T/∂r_ik = cab â + cbb b̂ (â, b̂: unit vectors of T, Q)
    cba: np.ndarray
    cab: np.ndarray
    cbb: np.ndarray
    LG: np.ndarray  # [t, kk, 3]: mode GRADIENTS, the block's gradient rows


@njit(cache=True, forceinline=True)
def _scratch(mode, max_m, n_species, ne, na, nkt):
    """Allocate the scratch of one chunk of centres (once per chunk, not per centre)."""
    cap = _CHUNK + max_m
    ints, pair, tri, etri = np.int64, np.empty, np.empty, np.empty
    lg_rows = max_m if mode == GRADIENTS else 0
    return _Scratch(np.empty(n_species + 1, ints), np.empty(n_species + 1, ints), np.empty(max_m, ints),
                    pair(max_m), pair(max_m), pair(max_m), pair(max_m), pair(max_m), pair(max_m), pair(max_m),
                    pair(max_m), pair(max_m), pair(max_m), pair((max_m, 3)), pair((ne, max_m)), pair((ne, max_m)),
                    np.empty(cap, ints), np.empty(cap, ints),
                    tri(cap), tri(cap), tri(cap), tri(cap), tri(cap), tri(cap), tri(cap), tri(cap),
                    tri(cap), tri(cap), tri(cap), tri(cap), tri(cap), tri(cap), tri(cap), tri(cap),
                    etri((ne, cap)), etri((ne, cap)), etri((ne, cap)), etri((ne, cap)), etri((ne, cap)),
                    etri((ne, cap)), etri((ne, cap)), etri((ne, cap)), etri((ne, cap)), etri((ne, cap)),
                    np.empty((na, cap)), np.empty((na, cap)),
                    np.empty((nkt, cap)), np.empty((nkt, cap)), np.empty((nkt, cap)), np.empty((nkt, cap)),
                    np.empty((lg_rows, nkt, 3)))


@njit(**_STEP)
def _environment(i, offsets, jj, species, vectors, n_species, k_pi, s):
    """Sort the pairs of centre i by neighbour species (stable) and tabulate them. Returns their number."""
    bstart, fill, gp, x, y, z = s.bstart, s.fill, s.gp, s.x, s.y, s.z
    r, ux, uy, uz, fc, dfc = s.r, s.ux, s.uy, s.uz, s.fc, s.dfc
    s0 = offsets[i]
    m = offsets[i + 1] - s0
    for b in range(n_species + 1):
        bstart[b] = 0
    for t in range(m):
        bstart[species[jj[s0 + t]] + 1] += 1
    for b in range(n_species):
        bstart[b + 1] += bstart[b]
    for b in range(n_species + 1):
        fill[b] = bstart[b]
    for t in range(m):
        b = species[jj[s0 + t]]
        gp[fill[b]] = s0 + t
        fill[b] += 1
    for t in range(m):
        p = gp[t]
        vx, vy, vz = vectors[p, 0], vectors[p, 1], vectors[p, 2]
        rr = math.sqrt(vx * vx + vy * vy + vz * vz)
        x[t] = vx
        y[t] = vy
        z[t] = vz
        r[t] = rr
        ux[t] = vx / rr
        uy[t] = vy / rr
        uz[t] = vz / rr
    for t in range(m):
        fc[t] = _fc_poly(r[t], k_pi, _SIN_C)
    for t in range(m):
        dfc[t] = _dfc_poly(r[t], k_pi, _COS_C)
    return m


@njit(**_STEP)
def _radial(i, mode, params, dE_dG, G, grad, s):
    """G1 and G2 of centre i, one neighbour species (one output block) at a time, and by mode their
    per-pair gradients (``grad``) or the radial part of ∂E/∂r (``dsum``)."""
    dsum, bstart, fc, gp, dfc, ux = s.dsum, s.bstart, s.fc, s.gp, s.dfc, s.ux
    uy, uz, r = s.uy, s.uz, s.r
    width = 1 + params.g2_eta.shape[0]
    for b in range(params.n_species):
        t0, t1 = bstart[b], bstart[b + 1]
        base = b * width
        gsum = 0.0
        for t in range(t0, t1):
            gsum += fc[t]
        G[i, base] += gsum
        if mode == GRADIENTS:
            for t in range(t0, t1):
                p = gp[t]
                grad[p, base, 0] = dfc[t] * ux[t]
                grad[p, base, 1] = dfc[t] * uy[t]
                grad[p, base, 2] = dfc[t] * uz[t]
        elif mode == FORCES:
            w = dE_dG[i, base]
            for t in range(t0, t1):
                dsum[t] = w * dfc[t]
        for k in range(params.g2_eta.shape[0]):
            f = base + 1 + k
            eta, rs = params.g2_eta[k], params.g2_rs[k]
            w = dE_dG[i, f] if mode == FORCES else 0.0
            gsum = 0.0
            for t in range(t0, t1):
                d = r[t] - rs
                ex = _exp_nonpos(-eta * d * d, _EXP_C, _POW2)
                gsum += ex * fc[t]
                if mode == GRADIENTS:
                    der = ex * (dfc[t] - 2.0 * eta * d * fc[t])
                    p = gp[t]
                    grad[p, f, 0] = der * ux[t]
                    grad[p, f, 1] = der * uy[t]
                    grad[p, f, 2] = der * uz[t]
                elif mode == FORCES:
                    dsum[t] += w * ex * (dfc[t] - 2.0 * eta * d * fc[t])
            G[i, f] += gsum


@njit(**_STEP)
def _pair_factors(m, ang_eta, s):
    """Per pair and η, the radial factor of the angular functions P = e^(−η r²) fc and D = dP/dr."""
    r, P, fc, D, dfc = s.r, s.P, s.fc, s.D, s.dfc
    for e in range(ang_eta.shape[0]):
        eta = ang_eta[e]
        for t in range(m):
            ex = _exp_nonpos(-eta * r[t] * r[t], _EXP_C, _POW2)
            P[e, t] = ex * fc[t]
            D[e, t] = ex * (dfc[t] - 2.0 * eta * r[t] * fc[t])


@njit(**_STEP)
def _gather_triplets(t, q0, q1, compact, rc2, cnt, s):
    """Append the triplets (t, q), q0 ≤ q < q1, to the chunk, with r_jk²; with ``compact`` (G4 only)
    just those with r_jk < rc, without a data-dependent branch. Returns the new count."""
    x, y, z, T, Q, r2 = s.x, s.y, s.z, s.T, s.Q, s.r2
    xt, yt, zt = x[t], y[t], z[t]
    if compact:
        for q in range(q0, q1):
            dx = x[q] - xt
            dy = y[q] - yt
            dz = z[q] - zt
            d2 = dx * dx + dy * dy + dz * dz
            T[cnt] = t
            Q[cnt] = q
            r2[cnt] = d2
            cnt += 1 if d2 < rc2 else 0
    else:
        for q in range(q0, q1):
            dx = x[q] - xt
            dy = y[q] - yt
            dz = z[q] - zt
            T[cnt] = t
            Q[cnt] = q
            r2[cnt] = dx * dx + dy * dy + dz * dz
            cnt += 1
    return cnt


@njit(**_STEP)
def _triplet_factors(nc, n4, n5, k_pi, rc2, ang_eta, s):
    """cos θ, the two distances, and per η the radial products P_t P_q X (G4) and P_t P_q (G5)."""
    T, Q, cos, ux, uy, uz = s.T, s.Q, s.cos, s.ux, s.uy, s.uz
    ra, r, rb, pt, P, pq = s.ra, s.r, s.rb, s.pt, s.P, s.pq
    rjk, r2, fcc, ex, w4, w5 = s.rjk, s.r2, s.fcc, s.ex, s.w4, s.w5
    for c in range(nc):
        cos[c] = min(1.0, max(-1.0, ux[T[c]] * ux[Q[c]] + uy[T[c]] * uy[Q[c]] + uz[T[c]] * uz[Q[c]]))
    for c in range(nc):
        ra[c] = r[T[c]]
    for c in range(nc):
        rb[c] = r[Q[c]]
    for e in range(ang_eta.shape[0]):
        for c in range(nc):
            pt[e, c] = P[e, T[c]]
        for c in range(nc):
            pq[e, c] = P[e, Q[c]]
    if n4 > 0:
        for c in range(nc):
            rjk[c] = math.sqrt(min(r2[c], rc2))
        for c in range(nc):
            fcc[c] = _fc_poly(rjk[c], k_pi, _SIN_C) if r2[c] < rc2 else 0.0
        for e in range(ang_eta.shape[0]):
            eta = ang_eta[e]
            for c in range(nc):
                ex[e, c] = _exp_nonpos(-eta * r2[c], _EXP_C, _POW2)
            for c in range(nc):
                w4[e, c] = pt[e, c] * pq[e, c] * (ex[e, c] * fcc[c])
    if n5 > 0:
        for e in range(ang_eta.shape[0]):
            for c in range(nc):
                w5[e, c] = pt[e, c] * pq[e, c]


@njit(**_STEP)
def _triplet_shapes(nc, params, s):
    """Per (ζ, λ) shape: A = 2^(1−ζ) (1 + λ cos θ)^ζ and dA/dcos θ (integer ζ by repeated products)."""
    u, cos, dA, A = s.u, s.cos, s.dA, s.A
    for k in range(params.ang_zeta.shape[0]):
        lam, pref, zi = params.ang_lam[k], params.ang_pref[k], params.ang_zint[k]
        for c in range(nc):
            u[c] = 1.0 + lam * cos[c]
        if zi > 0:
            for c in range(nc):
                dA[k, c] = pref
            for _ in range(zi - 1):
                for c in range(nc):
                    dA[k, c] *= u[c]
        else:
            for c in range(nc):
                dA[k, c] = pref * u[c] ** (params.ang_zeta[k] - 1.0)
        for c in range(nc):
            A[k, c] = dA[k, c] * u[c]
        zl = params.ang_zeta[k] * lam
        for c in range(nc):
            dA[k, c] *= zl


@njit(**_STEP)
def _function(kk, params):
    """(is G4, η index, shape index) of angular function kk of a block (the G4 first, then the G5)."""
    n4 = params.g4_e.shape[0]
    if kk < n4:
        return True, params.g4_e[kk], params.g4_a[kk]
    return False, params.g5_e[kk - n4], params.g5_a[kk - n4]


@njit(**_STEP)
def _add_values(i, off, nc, nkt, params, G, s):
    """G[i, off + kk] += Σ_triplets A W for every angular function kk of the block."""
    A, w4, w5 = s.A, s.w4, s.w5
    for kk in range(nkt):
        g4, e, a = _function(kk, params)
        gsum = 0.0
        if g4:
            for c in range(nc):
                gsum += A[a, c] * w4[e, c]
        else:
            for c in range(nc):
                gsum += A[a, c] * w5[e, c]
        G[i, off + kk] += gsum


@njit(**_STEP)
def _derivative_factors(nc, n4, k_pi, rc2, ang_eta, s):
    """Per-triplet factors shared by the derivative coefficients of the functions of one η."""
    T, Q, inv_ra, ra, inv_rb, rb = s.T, s.Q, s.inv_ra, s.ra, s.inv_rb, s.rb
    cia, cos, cib, dtx, D, pq = s.cia, s.cos, s.cib, s.dtx, s.D, s.pq
    dqx, pt, xc, rjk, r2, ex = s.dqx, s.pt, s.xc, s.rjk, s.r2, s.ex
    fcc, wa4, wb4, pdx = s.fcc, s.wa4, s.wb4, s.pdx
    for c in range(nc):
        inv_ra[c] = 1.0 / ra[c]
    for c in range(nc):
        inv_rb[c] = 1.0 / rb[c]
    for c in range(nc):
        cia[c] = cos[c] * inv_ra[c]
    for c in range(nc):
        cib[c] = cos[c] * inv_rb[c]
    for e in range(ang_eta.shape[0]):
        for c in range(nc):
            dtx[e, c] = D[e, T[c]] * pq[e, c]
        for c in range(nc):
            dqx[e, c] = D[e, Q[c]] * pt[e, c]
    if n4 > 0:
        for c in range(nc):
            xc[c] = (_dfc_poly(rjk[c], k_pi, _COS_C) if r2[c] < rc2 else 0.0) / rjk[c]
        for e in range(ang_eta.shape[0]):
            eta = ang_eta[e]
            for c in range(nc):
                xk = ex[e, c] * fcc[c]
                wa4[e, c] = dtx[e, c] * xk
                wb4[e, c] = dqx[e, c] * xk
            for c in range(nc):
                pdx[e, c] = pt[e, c] * pq[e, c] * ex[e, c] * (xc[c] - 2.0 * eta * fcc[c])


@njit(cache=True, fastmath=_FAST, inline="always")
def _g4_coefficients(Ak, dAk, w4, pdx, wa4, wb4, cia, cib, ra, rb, inv_ra, inv_rb):
    """(caa, cba, cab, cbb) of one G4 triplet term T = A(cos θ) P_t P_q X. With ∂T/∂r_ij = Ta, ∂T/∂r_ik = Tb,
    ∂T/∂cos θ = Tcos and h = (∂T/∂r_jk)/r_jk (r_jk = r_ik − r_ij):
    grad_ij = (Ta − Tcos cos/ra + h ra) â + (Tcos/ra − h rb) b̂ and
    grad_ik = (Tcos/rb − h ra) â + (Tb − Tcos cos/rb + h rb) b̂."""
    tcos = dAk * w4
    h = Ak * pdx
    return (Ak * wa4 - tcos * cia + h * ra, tcos * inv_ra - h * rb, tcos * inv_rb - h * ra,
            Ak * wb4 - tcos * cib + h * rb)


@njit(cache=True, fastmath=_FAST, inline="always")
def _g5_coefficients(Ak, dAk, w5, dtx, dqx, cia, cib, inv_ra, inv_rb):
    """(caa, cba, cab, cbb) of one G5 triplet term T = A(cos θ) P_t P_q (no r_jk dependence, h = 0)."""
    tcos = dAk * w5
    return Ak * dtx - tcos * cia, tcos * inv_ra, tcos * inv_rb, Ak * dqx - tcos * cib


@njit(**_STEP)
def _triplet_coefficients(nc, nkt, params, s):
    """Store caa, cba, cab, cbb of every angular function kk of the block and triplet c (mode GRADIENTS)."""
    A, dA, w4, pdx, wa4, wb4 = s.A, s.dA, s.w4, s.pdx, s.wa4, s.wb4
    w5, dtx, dqx, cia, cib, ra = s.w5, s.dtx, s.dqx, s.cia, s.cib, s.ra
    rb, inv_ra, inv_rb, caa, cba, cab = s.rb, s.inv_ra, s.inv_rb, s.caa, s.cba, s.cab
    cbb = s.cbb
    for kk in range(nkt):
        g4, e, a = _function(kk, params)
        if g4:
            for c in range(nc):
                aa, ba, ab, bb = _g4_coefficients(A[a, c], dA[a, c], w4[e, c], pdx[e, c], wa4[e, c], wb4[e, c],
                                                  cia[c], cib[c], ra[c], rb[c], inv_ra[c], inv_rb[c])
                caa[kk, c] = aa
                cba[kk, c] = ba
                cab[kk, c] = ab
                cbb[kk, c] = bb
        else:
            for c in range(nc):
                aa, ba, ab, bb = _g5_coefficients(A[a, c], dA[a, c], w5[e, c], dtx[e, c], dqx[e, c], cia[c], cib[c],
                                                  inv_ra[c], inv_rb[c])
                caa[kk, c] = aa
                cba[kk, c] = ba
                cab[kk, c] = ab
                cbb[kk, c] = bb


@njit(**_STEP)
def _contracted_coefficients(i, off, nc, nkt, params, dE_dG, s):
    """waa … wbb = Σ_kk ∂E/∂G_{i, off+kk} × (caa … cbb of function kk), per triplet (mode FORCES); the
    per-function coefficients are never stored."""
    A, dA, w4, pdx, wa4, wb4 = s.A, s.dA, s.w4, s.pdx, s.wa4, s.wb4
    w5, dtx, dqx, cia, cib, ra = s.w5, s.dtx, s.dqx, s.cia, s.cib, s.ra
    rb, inv_ra, inv_rb, waa, wba, wab = s.rb, s.inv_ra, s.inv_rb, s.waa, s.wba, s.wab
    wbb = s.wbb
    for c in range(nc):
        waa[c] = 0.0
        wba[c] = 0.0
        wab[c] = 0.0
        wbb[c] = 0.0
    for kk in range(nkt):
        w = dE_dG[i, off + kk]
        g4, e, a = _function(kk, params)
        if g4:
            for c in range(nc):
                aa, ba, ab, bb = _g4_coefficients(A[a, c], dA[a, c], w4[e, c], pdx[e, c], wa4[e, c], wb4[e, c],
                                                  cia[c], cib[c], ra[c], rb[c], inv_ra[c], inv_rb[c])
                waa[c] += w * aa
                wba[c] += w * ba
                wab[c] += w * ab
                wbb[c] += w * bb
        else:
            for c in range(nc):
                aa, ba, ab, bb = _g5_coefficients(A[a, c], dA[a, c], w5[e, c], dtx[e, c], dqx[e, c], cia[c], cib[c],
                                                  inv_ra[c], inv_rb[c])
                waa[c] += w * aa
                wba[c] += w * ba
                wab[c] += w * ab
                wbb[c] += w * bb


@njit(**_STEP)
def _scatter_gradients(nc, nkt, s):
    """Add every triplet's contribution to the block's gradient rows LG[local pair, function, :]."""
    T, Q, ux, uy, uz, caa = s.T, s.Q, s.ux, s.uy, s.uz, s.caa
    cba, cab, cbb, LG = s.cba, s.cab, s.cbb, s.LG
    for c in range(nc):
        tt, qq = T[c], Q[c]
        axt, ayt, azt = ux[tt], uy[tt], uz[tt]
        bxq, byq, bzq = ux[qq], uy[qq], uz[qq]
        for k in range(nkt):
            aa, ba, ab, bb = caa[k, c], cba[k, c], cab[k, c], cbb[k, c]
            LG[tt, k, 0] += aa * axt + ba * bxq
            LG[tt, k, 1] += aa * ayt + ba * byq
            LG[tt, k, 2] += aa * azt + ba * bzq
            LG[qq, k, 0] += ab * axt + bb * bxq
            LG[qq, k, 1] += ab * ayt + bb * byq
            LG[qq, k, 2] += ab * azt + bb * bzq


@njit(**_STEP)
def _scatter_forces(nc, s):
    """Add the triplets' contracted ∂E/∂r (waa â + wba b̂ to pair T, wab â + wbb b̂ to pair Q) to acc."""
    waa, wba, wab, wbb, T, Q = s.waa, s.wba, s.wab, s.wbb, s.T, s.Q
    ux, uy, uz, acc = s.ux, s.uy, s.uz, s.acc
    for c in range(nc):
        tt, qq = T[c], Q[c]
        axt, ayt, azt = ux[tt], uy[tt], uz[tt]
        bxq, byq, bzq = ux[qq], uy[qq], uz[qq]
        acc[tt, 0] += waa[c] * axt + wba[c] * bxq
        acc[tt, 1] += waa[c] * ayt + wba[c] * byq
        acc[tt, 2] += waa[c] * azt + wba[c] * bzq
        acc[qq, 0] += wab[c] * axt + wbb[c] * bxq
        acc[qq, 1] += wab[c] * ayt + wbb[c] * byq
        acc[qq, 2] += wab[c] * azt + wbb[c] * bzq


@njit(**_STEP)
def _chunk(i, mode, off, nc, params, k_pi, rc2, dE_dG, G, s):
    """Values and, by mode, derivative contributions of the nc gathered triplets of one block."""
    n4, nkt = params.g4_e.shape[0], params.g4_e.shape[0] + params.g5_e.shape[0]
    _triplet_factors(nc, n4, params.g5_e.shape[0], k_pi, rc2, params.ang_eta, s)
    _triplet_shapes(nc, params, s)
    _add_values(i, off, nc, nkt, params, G, s)
    if mode == VALUES:
        return
    _derivative_factors(nc, n4, k_pi, rc2, params.ang_eta, s)
    if mode == GRADIENTS:
        _triplet_coefficients(nc, nkt, params, s)
        _scatter_gradients(nc, nkt, s)
    else:
        _contracted_coefficients(i, off, nc, nkt, params, dE_dG, s)
        _scatter_forces(nc, s)


@njit(**_STEP)
def _angular_block(i, mode, a_, b_, params, k_pi, rc2, dE_dG, G, grad, s):
    """G4/G5 of centre i over the triplets with neighbours of species a_ ≥ b_ (unique pairs q < t in local
    order), gathered chunk by chunk; in mode GRADIENTS the block's per-pair rows end in ``grad``."""
    bstart, LG, gp = s.bstart, s.LG, s.gp
    nkt = params.g4_e.shape[0] + params.g5_e.shape[0]
    off = params.n_species * (1 + params.g2_eta.shape[0]) + (a_ * (a_ + 1) // 2 + b_) * nkt
    ta0, ta1 = bstart[a_], bstart[a_ + 1]
    if ta1 == ta0 or bstart[b_ + 1] == bstart[b_]:
        return
    n_blocks = 1 if a_ == b_ else 2
    if mode == GRADIENTS:  # only rows of species a_ and b_ receive contributions
        for sb in range(n_blocks):
            for t in range(bstart[a_ if sb == 0 else b_], bstart[(a_ if sb == 0 else b_) + 1]):
                for k in range(nkt):
                    for x in range(3):
                        LG[t, k, x] = 0.0
    compact = params.g5_e.shape[0] == 0  # G4 only: keep just the triplets with r_jk < rc
    cnt = 0
    for t in range(ta0, ta1 + 1):
        q0, q1 = bstart[b_], min(bstart[b_ + 1], t)
        if (t == ta1 or cnt + (q1 - q0) > _CHUNK) and cnt > 0:
            _chunk(i, mode, off, cnt, params, k_pi, rc2, dE_dG, G, s)
            cnt = 0
        if t < ta1:
            cnt = _gather_triplets(t, q0, q1, compact, rc2, cnt, s)
    if mode == GRADIENTS:  # each (pair, block) row is written once and grad comes zeroed: a plain store
        for sb in range(n_blocks):
            for t in range(bstart[a_ if sb == 0 else b_], bstart[(a_ if sb == 0 else b_) + 1]):
                p = gp[t]
                for k in range(nkt):
                    for x in range(3):
                        grad[p, off + k, x] = LG[t, k, x]


@njit(**_STEP)
def _centre(i, mode, offsets, jj, species, vectors, params, dE_dG, G, grad, gpair, s):
    """Every function of centre i, and by mode its per-pair gradients or per-pair ∂E/∂r."""
    acc, dsum, ux, uy, uz, gp = s.acc, s.dsum, s.ux, s.uy, s.uz, s.gp
    k_pi = math.pi / params.rc
    rc2 = params.rc * params.rc
    m = _environment(i, offsets, jj, species, vectors, params.n_species, k_pi, s)
    _radial(i, mode, params, dE_dG, G, grad, s)
    if mode == FORCES:
        for t in range(m):
            acc[t, 0] = dsum[t] * ux[t]
            acc[t, 1] = dsum[t] * uy[t]
            acc[t, 2] = dsum[t] * uz[t]
    if params.g4_e.shape[0] + params.g5_e.shape[0] > 0 and m >= 2:
        _pair_factors(m, params.ang_eta, s)
        for a_ in range(params.n_species):
            for b_ in range(a_ + 1):
                _angular_block(i, mode, a_, b_, params, k_pi, rc2, dE_dG, G, grad, s)
    if mode == FORCES:
        for t in range(m):
            for x in range(3):
                gpair[gp[t], x] = acc[t, x]


@njit(cache=True, parallel=True, fastmath=_FAST)
def _bp_kernel(mode, offsets, jj, species, vectors, params, dE_dG, G, grad, gpair, n_chunks):
    """Fill G and, by mode, grad[p, f, :] = ∂G_if/∂r_p (GRADIENTS) or gpair[p] = Σ_f dE_dG[i, f] ∂G_if/∂r_p
    (FORCES). Atoms are processed in ``n_chunks`` contiguous chunks, in parallel, with one scratch
    allocation per chunk; every centre writes only its own row of G and its own pairs (no races). All
    pairs satisfy MIN_DISTANCE ≤ r < rc (:meth:`Descriptor.pairs`)."""
    n_atoms = offsets.shape[0] - 1
    max_m = 0
    for i in range(n_atoms):
        max_m = max(max_m, offsets[i + 1] - offsets[i])
    nkt = params.g4_e.shape[0] + params.g5_e.shape[0]
    for chunk in prange(n_chunks):
        s = _scratch(mode, max_m, params.n_species, params.ang_eta.shape[0], params.ang_zeta.shape[0], nkt)
        for i in range(chunk * n_atoms // n_chunks, (chunk + 1) * n_atoms // n_chunks):
            _centre(i, mode, offsets, jj, species, vectors, params, dE_dG, G, grad, gpair, s)
