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

import numpy as np
from ase import Atoms
import numba
from numba import njit, prange

from mliplib.descriptors.base import Descriptor, Gradients, species_numbers
from mliplib.neighbors import Pairs

#: Pairs closer than this (Å) are treated as overlapping atoms (an error, not a descriptor value).
MIN_DISTANCE = 1e-8

_MODE_VALUES, _MODE_GRADIENTS, _MODE_FORCES = 0, 1, 2
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
            raise ValueError(f"{name}: zeta must be ≥ 1 (for zeta < 1 the derivative of (1 + λ cos θ)^zeta diverges "
                             f"at the collinear triplets present in every crystal); got zeta = {zeta[zeta < 1].tolist()}")
        if np.any(np.abs(lam) != 1):
            raise ValueError(f"{name}: lambda must be +1 or -1; got lambda = {lam[np.abs(lam) != 1].tolist()}")
    return arr


class BehlerParrinello(Descriptor):
    """Behler–Parrinello symmetry functions G1, G2, G4, G5 (DScribe ACSF definitions and column order).

    Args:
        species: element symbols or atomic numbers the descriptor knows (sorted by atomic number).
        cutoff: rc in Å, > 0.
        g2: rows (eta [Å⁻²], rs [Å]).
        g4: rows (eta [Å⁻²], zeta ≥ 1, lambda = ±1); the r_jk-dependent angular function.
        g5: rows (eta [Å⁻²], zeta ≥ 1, lambda = ±1); the angular function without r_jk.

    ``compute(atoms)`` → G (n_atoms, n_features); ``compute(atoms, gradients=True)`` → (G, Gradients);
    ``forces_and_virial(atoms, dE_dG)`` contracts on the fly without storing per-pair gradients.
    A ``neighbors`` argument must be a :class:`mliplib.neighbors.Pairs` built for the *same* atoms with a
    cutoff ≥ ``self.cutoff`` (e.g. from :class:`mliplib.neighbors.NeighborList` with a skin); pairs at or
    beyond ``self.cutoff`` are ignored. A list with a *shorter* cutoff cannot be detected and silently
    gives wrong values — do not pass one.
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
            raise ValueError(f"g2: rs must be ≥ 0 Å (it is a distance); got rs = {self.g2[self.g2[:, 1] < 0, 1].tolist()}")
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
        self._g2_eta = np.ascontiguousarray(self.g2[:, 0])
        self._g2_rs = np.ascontiguousarray(self.g2[:, 1])

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
    def default_zno(cls) -> "BehlerParrinello":
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
        """
        rc, n = 6.0, 8
        grid = [rc / n ** (k / n) for k in range(n + 1)]  # grid[0] = rc
        g2 = [(float(f"{1.0 / (grid[k - 1] - grid[k]) ** 2:.3g}"), round(grid[k], 3)) for k in range(1, n + 1)]
        g4 = [(0.005, 1, 1), (0.005, 1, -1), (0.005, 4, 1), (0.005, 4, -1), (0.05, 1, 1), (0.05, 1, -1)]
        return cls(["Zn", "O"], rc, g2=g2, g4=g4)

    def to_dict(self) -> dict:
        return {"kind": "BehlerParrinello", "species": self.species, "cutoff": self.cutoff,
                "g2": self.g2.tolist(), "g4": self.g4.tolist(), "g5": self.g5.tolist()}

    def dscribe_kwargs(self) -> dict:
        """Keyword arguments of ``dscribe.descriptors.ACSF`` that give the same functions and columns."""
        kw = {"r_cut": self.cutoff, "species": self.species}
        for key, rows in (("g2_params", self.g2), ("g4_params", self.g4), ("g5_params", self.g5)):
            if len(rows):
                kw[key] = rows.tolist()
        return kw

    def to_dscribe_order(self, G: np.ndarray) -> np.ndarray:
        """Columns in DScribe ACSF order. Our native layout *is* DScribe's (see the module docstring:
        per neighbour species [G1, G2…], then per species pair a ≥ b, its = a(a+1)/2 + b, [G4…, G5…]),
        so this is the identity map (returns a copy) — kept so callers need not rely on that fact."""
        G = np.asarray(G, dtype=np.float64)
        if G.shape[-1] != self.n_features:
            raise ValueError(f"G has {G.shape[-1]} columns, this descriptor has {self.n_features} features")
        return G.copy()

    def __repr__(self) -> str:
        return (f"BehlerParrinello(species={self.species}, cutoff={self.cutoff}, n_g2={len(self.g2)}, "
                f"n_g4={len(self.g4)}, n_g5={len(self.g5)}, n_features={self.n_features})")

    # ------------------------------------------------------------------ input handling
    def _pairs(self, atoms: Atoms, neighbors) -> Pairs:
        """Validated pair list restricted to r < cutoff; raises on overlapping atoms."""
        n = len(atoms)
        if neighbors is None:
            pairs = self.neighbors(atoms)
        else:
            if not isinstance(neighbors, Pairs):
                raise ValueError(f"neighbors must be a mliplib.neighbors.Pairs (from neighbor_list or "
                                 f"NeighborList.update) with cutoff ≥ {self.cutoff} Å; got {type(neighbors).__name__}")
            i, j = np.asarray(neighbors.i), np.asarray(neighbors.j)
            vec = np.asarray(neighbors.vectors, dtype=np.float64)
            if vec.shape != (len(i), 3) or len(j) != len(i):
                raise ValueError("neighbors: i, j and vectors have inconsistent lengths")
            if len(i) and (i.min() < 0 or j.min() < 0 or max(i.max(), j.max()) >= n):
                raise ValueError(f"neighbors refer to atoms outside 0..{n - 1}: it was built for another structure")
            if np.any(np.diff(i) < 0):
                raise ValueError("neighbors.i must be sorted ascending (CSR order) as neighbor_list returns it")
            if len(i):
                expect = atoms.positions[j] - atoms.positions[i] + np.asarray(neighbors.shifts) @ atoms.cell.array
                if not np.allclose(expect, vec, rtol=0, atol=1e-6):
                    raise ValueError("neighbors.vectors do not match the atoms' positions and cell: the list is stale "
                                     "or for another structure; use NeighborList.update(atoms) or neighbor_list(atoms, rc)")
            pairs = Pairs(i.astype(np.int64, copy=False), j.astype(np.int64, copy=False),
                          np.asarray(neighbors.shifts), vec)
        d = pairs.distances()
        if len(d) and d.min() < MIN_DISTANCE:
            p = int(np.argmin(d))
            a, b = int(pairs.i[p]), int(pairs.j[p])
            what = f"atoms {a} and {b}" if a != b else f"atom {a} and its periodic image"
            raise ValueError(f"{what} overlap (distance {d[p]:.3g} Å < {MIN_DISTANCE} Å); "
                             f"remove duplicate atoms before computing descriptors")
        keep = d < self.cutoff
        if not keep.all():
            pairs = Pairs(pairs.i[keep], pairs.j[keep], pairs.shifts[keep], pairs.vectors[keep])
        return pairs

    def _run(self, atoms: Atoms, mode: int, neighbors=None, dE_dG=None):
        n = len(atoms)
        species = self.species_index(atoms)
        pairs = self._pairs(atoms, neighbors)
        offsets = pairs.offsets(n)
        vectors = np.ascontiguousarray(pairs.vectors, dtype=np.float64)
        n_pairs = len(pairs.i)
        G = np.zeros((n, self.n_features))
        grad = np.zeros((n_pairs if mode == _MODE_GRADIENTS else 0, self.n_features, 3))
        gpair = np.zeros((n_pairs if mode == _MODE_FORCES else 0, 3))
        if dE_dG is None:
            dE_dG = np.zeros((0, self.n_features))
        if n:
            _bp_kernel(mode, offsets, np.ascontiguousarray(pairs.j, dtype=np.int64), species, vectors,
                       len(self.species_z), self.cutoff, self._g2_eta, self._g2_rs,
                       self._ang_eta, self._ang_zeta, self._ang_lam, self._ang_zint,
                       self._g4_e, self._g4_a, self._g5_e, self._g5_a, dE_dG, G, grad, gpair,
                       min(n, 8 * numba.get_num_threads()))
        return G, pairs, vectors, grad, gpair

    # ------------------------------------------------------------------ public API
    def compute(self, atoms: Atoms, gradients: bool = False, neighbors=None):
        """G (n_atoms, n_features); with ``gradients=True`` also :class:`Gradients` (per pair, r < cutoff)."""
        if not gradients:
            return self._run(atoms, _MODE_VALUES, neighbors)[0]
        G, pairs, vectors, grad, _ = self._run(atoms, _MODE_GRADIENTS, neighbors)
        return G, Gradients(np.ascontiguousarray(pairs.i, dtype=np.int64),
                            np.ascontiguousarray(pairs.j, dtype=np.int64), vectors, grad, len(atoms))

    def forces_and_virial(self, atoms: Atoms, dE_dG: np.ndarray, neighbors=None):
        """Forces (n_atoms, 3) [eV/Å] and virial W (3, 3) [eV] (ASE stress = −W/V) for ∂E/∂G (n_atoms, n_features).

        The per-pair vector ∂E/∂r_ij = Σ_f ∂E/∂G_if ∂G_if/∂r_ij is accumulated inside the kernel, so
        memory is O(n_pairs·3), not O(n_pairs·n_features·3).
        """
        n = len(atoms)
        dE_dG = np.ascontiguousarray(dE_dG, dtype=np.float64)
        if dE_dG.shape != (n, self.n_features):
            raise ValueError(f"dE_dG must have shape (n_atoms, n_features) = ({n}, {self.n_features}); got {dE_dG.shape}")
        _, pairs, vectors, _, gpair = self._run(atoms, _MODE_FORCES, neighbors, dE_dG)
        return _scatter(np.ascontiguousarray(pairs.i, dtype=np.int64),
                        np.ascontiguousarray(pairs.j, dtype=np.int64), vectors, gpair, n)


# ---------------------------------------------------------------------- kernels
@njit(cache=True)
def _scatter(i, j, vectors, gpair, n_atoms):
    forces = np.zeros((n_atoms, 3))
    virial = np.zeros((3, 3))
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        for x in range(3):
            g = gpair[p, x]
            forces[a, x] += g
            forces[b, x] -= g
            for y in range(3):
                virial[y, x] -= vectors[p, y] * g
    return forces, virial


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


@njit(cache=True, parallel=True, fastmath=_FAST)
def _bp_kernel(mode, offsets, jj, species, vectors, n_species, rc, g2_eta, g2_rs,
               ang_eta, ang_zeta, ang_lam, ang_zint, g4_e, g4_a, g5_e, g5_a, dE_dG, G, grad, gpair, n_chunks):
    """mode 0: G only; 1: G and grad[p, f, :] = ∂G_if/∂r_p; 2: G and gpair[p] = Σ_f dE_dG[i, f] ∂G_if/∂r_p.

    Atoms are processed in ``n_chunks`` contiguous chunks, in parallel, with one scratch allocation per
    chunk. All pairs are assumed to satisfy MIN_DISTANCE ≤ r < rc (filtered by the caller). Per centre, the
    pairs are reordered by neighbour species so that, for a fixed first neighbour t, the second neighbours q < t
    of one species form a contiguous range whose features share one output block; the inner loops over q
    are written over flat scratch arrays so the compiler can vectorise them.
    """
    n_atoms = offsets.shape[0] - 1
    n2 = g2_eta.shape[0]
    n4 = g4_e.shape[0]
    n5 = g5_e.shape[0]
    ne = ang_eta.shape[0]
    na = ang_zeta.shape[0]
    rad_width = 1 + n2
    ang_base = n_species * rad_width
    ang_width = n4 + n5
    rc2 = rc * rc
    k_pi = math.pi / rc
    sin_c = _SIN_C
    cos_c = _COS_C
    exp_c = _EXP_C
    pow2 = _POW2
    ang_pref = np.empty(na)
    for k in range(na):
        ang_pref[k] = 2.0 ** (1.0 - ang_zeta[k])
    nkt = n4 + n5
    max_m = 0
    for i in range(n_atoms):
        max_m = max(max_m, offsets[i + 1] - offsets[i])
    cap = _CHUNK + max_m
    # scratch is allocated once per chunk of atoms, not once per atom
    for chunk in prange(n_chunks):
        bstart = np.empty(n_species + 1, np.int64)
        fill = np.empty(n_species + 1, np.int64)
        gp = np.empty(max_m, np.int64)
        px = np.empty(max_m)
        py = np.empty(max_m)
        pz = np.empty(max_m)
        r = np.empty(max_m)
        ux = np.empty(max_m)
        uy = np.empty(max_m)
        uz = np.empty(max_m)
        fc = np.empty(max_m)
        dfc = np.empty(max_m)
        acc = np.empty((max_m, 3))  # mode 2: per-pair ∂E/∂r accumulators (local order)
        dsum = np.empty(max_m)
        P = np.empty((ne, max_m))
        D = np.empty((ne, max_m))
        T = np.empty(cap, np.int64)
        Q = np.empty(cap, np.int64)
        R2 = np.empty(cap)
        COS = np.empty(cap)
        RA = np.empty(cap)
        RB = np.empty(cap)
        INVRA = np.empty(cap)
        INVRB = np.empty(cap)
        RJK = np.empty(cap)
        FCC = np.empty(cap)
        U = np.empty(cap)
        PT = np.empty((ne, cap))   # P_t
        PQ = np.empty((ne, cap))   # P_q
        DTX = np.empty((ne, cap))  # D_t · P_q
        DQX = np.empty((ne, cap))  # P_t · D_q
        PdX = np.empty((ne, cap))  # P_t · P_q · (∂X/∂r_jk) / r_jk
        W4 = np.empty((ne, cap))   # P_t · P_q · X (G4)
        WA4 = np.empty((ne, cap))  # D_t · P_q · X
        WB4 = np.empty((ne, cap))  # P_t · D_q · X
        W5 = np.empty((ne, cap))   # P_t · P_q (G5)
        CIA = np.empty(cap)        # cos / r_a
        CIB = np.empty(cap)        # cos / r_b
        XC = np.empty(cap)         # (∂fc/∂r_jk) / r_jk
        EX = np.empty((ne, cap))
        A = np.empty((na, cap))
        dA = np.empty((na, cap))
        CAa = np.empty((nkt, cap))
        CBa = np.empty((nkt, cap))
        CAb = np.empty((nkt, cap))
        CBb = np.empty((nkt, cap))
        WAa = np.empty(cap)
        WBa = np.empty(cap)
        WAb = np.empty(cap)
        WBb = np.empty(cap)
        LG = np.empty((max_m if mode == 1 else 0, nkt, 3))  # block-local gradient rows
        for i in range(chunk * n_atoms // n_chunks, (chunk + 1) * n_atoms // n_chunks):
            s0 = offsets[i]
            m = offsets[i + 1] - s0
            # ---- per-pair tables, in species-sorted local order
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
                px[t] = vx
                py[t] = vy
                pz[t] = vz
                r[t] = rr
                ux[t] = vx / rr
                uy[t] = vy / rr
                uz[t] = vz / rr
            for t in range(m):
                fc[t] = _fc_poly(r[t], k_pi, sin_c)
            for t in range(m):
                dfc[t] = _dfc_poly(r[t], k_pi, cos_c)
            # ---- radial terms, one neighbour species (= one output block) at a time
            for b in range(n_species):
                t0 = bstart[b]
                t1 = bstart[b + 1]
                base = b * rad_width
                gsum = 0.0
                for t in range(t0, t1):
                    gsum += fc[t]
                G[i, base] += gsum
                if mode == 1:
                    for t in range(t0, t1):
                        p = gp[t]
                        grad[p, base, 0] = dfc[t] * ux[t]
                        grad[p, base, 1] = dfc[t] * uy[t]
                        grad[p, base, 2] = dfc[t] * uz[t]
                elif mode == 2:
                    w = dE_dG[i, base]
                    for t in range(t0, t1):
                        dsum[t] = w * dfc[t]
                for k in range(n2):
                    f = base + 1 + k
                    eta = g2_eta[k]
                    rs = g2_rs[k]
                    w = dE_dG[i, f] if mode == 2 else 0.0
                    gsum = 0.0
                    for t in range(t0, t1):
                        d = r[t] - rs
                        ex = _exp_nonpos(-eta * d * d, exp_c, pow2)
                        gsum += ex * fc[t]
                        if mode == 1:
                            der = ex * (dfc[t] - 2.0 * eta * d * fc[t])
                            p = gp[t]
                            grad[p, f, 0] = der * ux[t]
                            grad[p, f, 1] = der * uy[t]
                            grad[p, f, 2] = der * uz[t]
                        elif mode == 2:
                            dsum[t] += w * ex * (dfc[t] - 2.0 * eta * d * fc[t])
                    G[i, f] += gsum
            if mode == 2:
                for t in range(m):
                    acc[t, 0] = dsum[t] * ux[t]
                    acc[t, 1] = dsum[t] * uy[t]
                    acc[t, 2] = dsum[t] * uz[t]
            if ang_width == 0 or m < 2:
                if mode == 2:
                    for t in range(m):
                        for x in range(3):
                            gpair[gp[t], x] = acc[t, x]
                continue
            # per-pair radial factors of the angular functions: P = e^(−η r²) fc, D = dP/dr
            for e in range(ne):
                eta = ang_eta[e]
                for t in range(m):
                    ex = _exp_nonpos(-eta * r[t] * r[t], exp_c, pow2)
                    P[e, t] = ex * fc[t]
                    D[e, t] = ex * (dfc[t] - 2.0 * eta * r[t] * fc[t])
            # ---- angular terms over unique pairs {t, q} (q < t in local order), one species-pair block
            # (a ≥ b) at a time, in chunks of ≤ _CHUNK triplets so the scratch arrays stay in L1 cache and the
            # loops over triplets are long enough to vectorise. X = e^(−η r_jk²) fc(r_jk) for G4 (EX · FCC), 1 for G5.
            compact = n5 == 0  # G4 only: keep just the triplets with r_jk < rc
            for a_ in range(n_species):
                for b_ in range(a_ + 1):
                    its = a_ * (a_ + 1) // 2 + b_
                    off = ang_base + its * ang_width
                    ta0 = bstart[a_]
                    ta1 = bstart[a_ + 1]
                    if ta1 - ta0 == 0 or bstart[b_ + 1] - bstart[b_] == 0:
                        continue
                    if mode == 1:  # only rows of species a_ and b_ receive contributions
                        for sb in range(2):
                            s_ = a_ if sb == 0 else b_
                            for t in range(bstart[s_], bstart[s_ + 1]):
                                for k in range(nkt):
                                    for x in range(3):
                                        LG[t, k, x] = 0.0
                    cnt = 0
                    t = ta0
                    while True:
                        done = t >= ta1
                        q0 = bstart[b_]
                        q1 = min(bstart[b_ + 1], t)
                        if (done or cnt + (q1 - q0) > _CHUNK) and cnt > 0:
                            # ======== process the chunk of cnt triplets (T[c], Q[c])
                            nc = cnt
                            for c in range(nc):
                                COS[c] = min(1.0, max(-1.0, ux[T[c]] * ux[Q[c]] + uy[T[c]] * uy[Q[c]]
                                                      + uz[T[c]] * uz[Q[c]]))
                            for c in range(nc):
                                RA[c] = r[T[c]]
                            for c in range(nc):
                                RB[c] = r[Q[c]]
                            for e in range(ne):
                                for c in range(nc):
                                    PT[e, c] = P[e, T[c]]
                                for c in range(nc):
                                    PQ[e, c] = P[e, Q[c]]
                            if n4 > 0:
                                for c in range(nc):
                                    RJK[c] = math.sqrt(min(R2[c], rc2))
                                for c in range(nc):
                                    FCC[c] = _fc_poly(RJK[c], k_pi, sin_c) if R2[c] < rc2 else 0.0
                                for e in range(ne):
                                    eta = ang_eta[e]
                                    for c in range(nc):
                                        EX[e, c] = _exp_nonpos(-eta * R2[c], exp_c, pow2)
                                    for c in range(nc):
                                        W4[e, c] = PT[e, c] * PQ[e, c] * (EX[e, c] * FCC[c])
                            if n5 > 0:
                                for e in range(ne):
                                    for c in range(nc):
                                        W5[e, c] = PT[e, c] * PQ[e, c]
                            if mode != 0:
                                for c in range(nc):
                                    INVRA[c] = 1.0 / RA[c]
                                for c in range(nc):
                                    INVRB[c] = 1.0 / RB[c]
                                for c in range(nc):
                                    CIA[c] = COS[c] * INVRA[c]
                                for c in range(nc):
                                    CIB[c] = COS[c] * INVRB[c]
                                for e in range(ne):
                                    for c in range(nc):
                                        DTX[e, c] = D[e, T[c]] * PQ[e, c]
                                    for c in range(nc):
                                        DQX[e, c] = D[e, Q[c]] * PT[e, c]
                                if n4 > 0:
                                    for c in range(nc):
                                        XC[c] = (_dfc_poly(RJK[c], k_pi, cos_c) if R2[c] < rc2 else 0.0) / RJK[c]
                                    for e in range(ne):
                                        eta = ang_eta[e]
                                        for c in range(nc):
                                            xk = EX[e, c] * FCC[c]
                                            WA4[e, c] = DTX[e, c] * xk
                                            WB4[e, c] = DQX[e, c] * xk
                                        for c in range(nc):
                                            PdX[e, c] = (PT[e, c] * PQ[e, c] * EX[e, c]
                                                         * (XC[c] - 2.0 * eta * FCC[c]))
                            for k in range(na):
                                lam = ang_lam[k]
                                pref = ang_pref[k]
                                zi = ang_zint[k]
                                for c in range(nc):
                                    U[c] = 1.0 + lam * COS[c]
                                if zi > 0:
                                    for c in range(nc):
                                        dA[k, c] = pref
                                    for _ in range(zi - 1):
                                        for c in range(nc):
                                            dA[k, c] *= U[c]
                                else:
                                    for c in range(nc):
                                        dA[k, c] = pref * U[c] ** (ang_zeta[k] - 1.0)
                                for c in range(nc):
                                    A[k, c] = dA[k, c] * U[c]
                                zl = ang_zeta[k] * lam
                                for c in range(nc):
                                    dA[k, c] *= zl
                            if mode == 2:
                                for c in range(nc):
                                    WAa[c] = 0.0
                                for c in range(nc):
                                    WBa[c] = 0.0
                                for c in range(nc):
                                    WAb[c] = 0.0
                                for c in range(nc):
                                    WBb[c] = 0.0
                            for kind in range(2):
                                nk = n4 if kind == 0 else n5
                                for k in range(nk):
                                    if kind == 0:
                                        e = g4_e[k]
                                        ak = g4_a[k]
                                        kk = k
                                    else:
                                        e = g5_e[k]
                                        ak = g5_a[k]
                                        kk = n4 + k
                                    f = off + kk
                                    # G4: R = P_t P_q X; G5: R = P_t P_q
                                    if kind == 0:
                                        gsum = 0.0
                                        for c in range(nc):
                                            gsum += A[ak, c] * W4[e, c]
                                    else:
                                        gsum = 0.0
                                        for c in range(nc):
                                            gsum += A[ak, c] * W5[e, c]
                                    G[i, f] += gsum
                                    if mode == 0:
                                        continue
                                    # ∂T/∂r_ij = Ta, ∂T/∂r_ik = Tb, ∂T/∂cos = Tcos, h = (∂T/∂r_jk)/r_jk;
                                    # grad_ij = (Ta − Tcos cos/ra + h ra) â + (Tcos/ra − h rb) b̂
                                    # grad_ik = (Tcos/rb − h ra) â + (Tb − Tcos cos/rb + h rb) b̂
                                    if kind == 0:
                                        for c in range(nc):
                                            Ak = A[ak, c]
                                            Tcos = dA[ak, c] * W4[e, c]
                                            h = Ak * PdX[e, c]
                                            CAa[kk, c] = Ak * WA4[e, c] - Tcos * CIA[c] + h * RA[c]
                                            CBa[kk, c] = Tcos * INVRA[c] - h * RB[c]
                                            CAb[kk, c] = Tcos * INVRB[c] - h * RA[c]
                                            CBb[kk, c] = Ak * WB4[e, c] - Tcos * CIB[c] + h * RB[c]
                                    else:
                                        for c in range(nc):
                                            Ak = A[ak, c]
                                            Tcos = dA[ak, c] * W5[e, c]
                                            CAa[kk, c] = Ak * DTX[e, c] - Tcos * CIA[c]
                                            CBa[kk, c] = Tcos * INVRA[c]
                                            CAb[kk, c] = Tcos * INVRB[c]
                                            CBb[kk, c] = Ak * DQX[e, c] - Tcos * CIB[c]
                                    if mode == 2:
                                        w = dE_dG[i, f]
                                        for c in range(nc):
                                            WAa[c] += w * CAa[kk, c]
                                        for c in range(nc):
                                            WBa[c] += w * CBa[kk, c]
                                        for c in range(nc):
                                            WAb[c] += w * CAb[kk, c]
                                        for c in range(nc):
                                            WBb[c] += w * CBb[kk, c]
                            if mode == 1:
                                for c in range(nc):
                                    tt = T[c]
                                    qq = Q[c]
                                    axt, ayt, azt = ux[tt], uy[tt], uz[tt]
                                    bxq, byq, bzq = ux[qq], uy[qq], uz[qq]
                                    for k in range(nkt):
                                        aa = CAa[k, c]
                                        ba = CBa[k, c]
                                        ab = CAb[k, c]
                                        bb = CBb[k, c]
                                        LG[tt, k, 0] += aa * axt + ba * bxq
                                        LG[tt, k, 1] += aa * ayt + ba * byq
                                        LG[tt, k, 2] += aa * azt + ba * bzq
                                        LG[qq, k, 0] += ab * axt + bb * bxq
                                        LG[qq, k, 1] += ab * ayt + bb * byq
                                        LG[qq, k, 2] += ab * azt + bb * bzq
                            elif mode == 2:
                                for c in range(nc):
                                    tt = T[c]
                                    qq = Q[c]
                                    axt, ayt, azt = ux[tt], uy[tt], uz[tt]
                                    bxq, byq, bzq = ux[qq], uy[qq], uz[qq]
                                    acc[tt, 0] += WAa[c] * axt + WBa[c] * bxq
                                    acc[tt, 1] += WAa[c] * ayt + WBa[c] * byq
                                    acc[tt, 2] += WAa[c] * azt + WBa[c] * bzq
                                    acc[qq, 0] += WAb[c] * axt + WBb[c] * bxq
                                    acc[qq, 1] += WAb[c] * ayt + WBb[c] * byq
                                    acc[qq, 2] += WAb[c] * azt + WBb[c] * bzq
                            # ======== end of chunk
                            cnt = 0
                        if done:
                            break
                        # append the second neighbours of t (branch-free compaction when G4 only)
                        pxt, pyt, pzt = px[t], py[t], pz[t]
                        if compact:
                            for q in range(q0, q1):
                                dx = px[q] - pxt
                                dy = py[q] - pyt
                                dz = pz[q] - pzt
                                d2 = dx * dx + dy * dy + dz * dz
                                T[cnt] = t
                                Q[cnt] = q
                                R2[cnt] = d2
                                cnt += 1 if d2 < rc2 else 0
                        else:
                            for q in range(q0, q1):
                                dx = px[q] - pxt
                                dy = py[q] - pyt
                                dz = pz[q] - pzt
                                T[cnt] = t
                                Q[cnt] = q
                                R2[cnt] = dx * dx + dy * dy + dz * dz
                                cnt += 1
                        t += 1
                    if mode == 1:
                        # rows of pairs of species a_ or b_ received contributions; each (pair, block) row is
                        # written once and grad comes zeroed, so a plain store (no read of the fresh memory)
                        for sb in range(2):
                            s_ = a_ if sb == 0 else b_
                            if sb == 1 and b_ == a_:
                                break
                            for t in range(bstart[s_], bstart[s_ + 1]):
                                p = gp[t]
                                for k in range(nkt):
                                    for x in range(3):
                                        grad[p, off + k, x] = LG[t, k, x]
            if mode == 2:
                for t in range(m):
                    for x in range(3):
                        gpair[gp[t], x] = acc[t, x]
