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

import numpy as np
from ase import Atoms
import numba
from numba import njit, prange

from mliplib.descriptors.base import FORCES, GRADIENTS, VALUES, Descriptor, species_numbers

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
# factors and coefficients (``_derivative_factors``, ``_triplet_coefficients``) and their scatter into
# per-pair gradient rows (``_scatter_gradients``, mode GRADIENTS) or per-pair ∂E/∂r (``_scatter_forces``,
# mode FORCES). Scratch lives in a few 2-D arrays (``_Scratch``) whose rows are named by the constants below.

#: rows of the per-pair table ``nb`` (_N_NB, max pairs), in species-sorted local order
_X, _Y, _Z, _R, _UX, _UY, _UZ, _FC, _DFC, _DSUM = range(10)
_N_NB = 10
#: rows of the per-triplet scratch ``tri`` (_N_TRI, cap)
_R2, _COS, _RA, _RB, _INVRA, _INVRB, _RJK, _FCC, _CIA, _CIB, _XC, _U, _WAA, _WBA, _WAB, _WBB = range(16)
_N_TRI = 16
#: rows of the per-η, per-triplet scratch ``etri`` (_N_ETRI, n_eta, cap): P_t, P_q, D_t P_q, P_t D_q,
#: P_t P_q (∂X/∂r_jk)/r_jk, P_t P_q X (G4), D_t P_q X, P_t D_q X, P_t P_q (G5), e^(−η r_jk²)
_PT, _PQ, _DTX, _DQX, _PDX, _W4, _WA4, _WB4, _W5, _EX = range(10)
_N_ETRI = 10
#: rows of the derivative coefficients ``coef`` (4, n_angular_functions, cap) of a triplet term T:
#: ∂T/∂r_ij = CAa â + CBa b̂ and ∂T/∂r_ik = CAb â + CBb b̂, â and b̂ the unit vectors of its two pairs
_CAA, _CBA, _CAB, _CBB = range(4)


class _Params(NamedTuple):
    """The descriptor's parameters as the kernels take them (flat arrays and numbers)."""

    n_species: int
    rc: float
    g2_eta: np.ndarray
    g2_rs: np.ndarray
    ang_eta: np.ndarray  # distinct η of the angular functions
    ang_zeta: np.ndarray  # distinct (ζ, λ) shapes
    ang_lam: np.ndarray
    ang_zint: np.ndarray  # ζ as an integer ≤ 64, or −1
    ang_pref: np.ndarray  # 2^(1 − ζ)
    g4_e: np.ndarray  # per G4 function: index into ang_eta, and into the shapes
    g4_a: np.ndarray
    g5_e: np.ndarray
    g5_a: np.ndarray


class _Scratch(NamedTuple):
    """Scratch arrays of one chunk of centres (see the row constants above)."""

    bstart: np.ndarray  # (2, n_species + 1): block starts of the species-sorted pairs, and fill cursors
    gp: np.ndarray  # (max_m,): pair index of each local pair
    nb: np.ndarray  # (_N_NB, max_m): per-pair table
    acc: np.ndarray  # (max_m, 3): mode FORCES, per-pair ∂E/∂r
    PD: np.ndarray  # (2, n_eta, max_m): per pair and η, P = e^(−η r²) fc and D = dP/dr
    TQ: np.ndarray  # (2, cap): the two local pairs of each triplet of a chunk
    tri: np.ndarray  # (_N_TRI, cap)
    etri: np.ndarray  # (_N_ETRI, n_eta, cap)
    shapes: np.ndarray  # (2, n_shapes, cap): A = 2^(1−ζ) (1 + λ cos)^ζ and dA/dcos
    coef: np.ndarray  # (4, n_angular, cap)
    LG: np.ndarray  # (max_m or 0, n_angular, 3): mode GRADIENTS, block-local gradient rows


@njit(cache=True)
def _scratch(mode, max_m, n_species, ne, na, nkt):
    """Scratch arrays of one chunk of centres (allocated once per chunk, not per centre)."""
    cap = _CHUNK + max_m
    return _Scratch(np.empty((2, n_species + 1), np.int64), np.empty(max_m, np.int64), np.empty((_N_NB, max_m)),
                    np.empty((max_m, 3)), np.empty((2, ne, max_m)), np.empty((2, cap), np.int64),
                    np.empty((_N_TRI, cap)), np.empty((_N_ETRI, ne, cap)), np.empty((2, na, cap)),
                    np.empty((4, nkt, cap)), np.empty((max_m if mode == GRADIENTS else 0, nkt, 3)))


@njit(cache=True, fastmath=_FAST)
def _environment(i, offsets, jj, species, vectors, n_species, k_pi, bstart, gp, nb):
    """Pairs of centre i in a stable sort by neighbour species: pair indices ``gp`` (species b at
    bstart[0, b]:bstart[0, b+1]) and the table ``nb`` (vector, r, unit vector, fc, dfc/dr). Returns their number."""
    s0 = offsets[i]
    m = offsets[i + 1] - s0
    start, fill = bstart[0], bstart[1]
    for b in range(n_species + 1):
        start[b] = 0
    for t in range(m):
        start[species[jj[s0 + t]] + 1] += 1
    for b in range(n_species):
        start[b + 1] += start[b]
    for b in range(n_species + 1):
        fill[b] = start[b]
    for t in range(m):
        b = species[jj[s0 + t]]
        gp[fill[b]] = s0 + t
        fill[b] += 1
    x, y, z, r, ux, uy, uz, fc, dfc = nb[_X], nb[_Y], nb[_Z], nb[_R], nb[_UX], nb[_UY], nb[_UZ], nb[_FC], nb[_DFC]
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


@njit(cache=True, fastmath=_FAST)
def _radial(i, mode, m, bstart, gp, nb, n_species, g2_eta, g2_rs, dE_dG, G, grad):
    """G1 and G2 of centre i, one neighbour species (one output block) at a time; by mode also their
    per-pair gradients (into ``grad``) or the radial part of ∂E/∂r (into row _DSUM of ``nb``)."""
    r, fc, dfc, ux, uy, uz, dsum = nb[_R], nb[_FC], nb[_DFC], nb[_UX], nb[_UY], nb[_UZ], nb[_DSUM]
    width = 1 + g2_eta.shape[0]
    for b in range(n_species):
        t0, t1 = bstart[0, b], bstart[0, b + 1]
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
        for k in range(g2_eta.shape[0]):
            f = base + 1 + k
            eta, rs = g2_eta[k], g2_rs[k]
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


@njit(cache=True, fastmath=_FAST)
def _pair_factors(m, ang_eta, nb, PD):
    """Per pair and η, the radial factor of the angular functions P = e^(−η r²) fc and D = dP/dr."""
    r, fc, dfc = nb[_R], nb[_FC], nb[_DFC]
    for e in range(ang_eta.shape[0]):
        eta = ang_eta[e]
        for t in range(m):
            ex = _exp_nonpos(-eta * r[t] * r[t], _EXP_C, _POW2)
            PD[0, e, t] = ex * fc[t]
            PD[1, e, t] = ex * (dfc[t] - 2.0 * eta * r[t] * fc[t])


@njit(cache=True, fastmath=_FAST)
def _gather_triplets(t, q0, q1, compact, rc2, nb, TQ, tri, cnt):
    """Append the triplets (t, q), q0 ≤ q < q1, to the chunk (with r_jk² in row _R2); with ``compact``
    (G4 only) only those with r_jk < rc, without a data-dependent branch. Returns the new count."""
    x, y, z, r2 = nb[_X], nb[_Y], nb[_Z], tri[_R2]
    T, Q = TQ[0], TQ[1]
    xt, yt, zt = x[t], y[t], z[t]
    for q in range(q0, q1):
        dx = x[q] - xt
        dy = y[q] - yt
        dz = z[q] - zt
        d2 = dx * dx + dy * dy + dz * dz
        T[cnt] = t
        Q[cnt] = q
        r2[cnt] = d2
        cnt += 1 if (d2 < rc2 or not compact) else 0
    return cnt


@njit(cache=True, fastmath=_FAST)
def _triplet_factors(nc, n4, n5, k_pi, rc2, ang_eta, nb, PD, TQ, tri, etri):
    """cos θ (clamped to [−1, 1]), the two distances, and per η the radial products of G4 (P_t P_q X,
    X = e^(−η r_jk²) fc(r_jk)) and G5 (P_t P_q) of the nc triplets of a chunk."""
    T, Q = TQ[0], TQ[1]
    ux, uy, uz, r = nb[_UX], nb[_UY], nb[_UZ], nb[_R]
    cos, ra, rb, r2, rjk, fcc = tri[_COS], tri[_RA], tri[_RB], tri[_R2], tri[_RJK], tri[_FCC]
    for c in range(nc):
        cos[c] = min(1.0, max(-1.0, ux[T[c]] * ux[Q[c]] + uy[T[c]] * uy[Q[c]] + uz[T[c]] * uz[Q[c]]))
    for c in range(nc):
        ra[c] = r[T[c]]
    for c in range(nc):
        rb[c] = r[Q[c]]
    for e in range(ang_eta.shape[0]):
        pt, pq = etri[_PT, e], etri[_PQ, e]
        for c in range(nc):
            pt[c] = PD[0, e, T[c]]
        for c in range(nc):
            pq[c] = PD[0, e, Q[c]]
    if n4 > 0:
        for c in range(nc):
            rjk[c] = math.sqrt(min(r2[c], rc2))
        for c in range(nc):
            fcc[c] = _fc_poly(rjk[c], k_pi, _SIN_C) if r2[c] < rc2 else 0.0
        for e in range(ang_eta.shape[0]):
            eta = ang_eta[e]
            ex, w4, pt, pq = etri[_EX, e], etri[_W4, e], etri[_PT, e], etri[_PQ, e]
            for c in range(nc):
                ex[c] = _exp_nonpos(-eta * r2[c], _EXP_C, _POW2)
            for c in range(nc):
                w4[c] = pt[c] * pq[c] * (ex[c] * fcc[c])
    if n5 > 0:
        for e in range(ang_eta.shape[0]):
            w5, pt, pq = etri[_W5, e], etri[_PT, e], etri[_PQ, e]
            for c in range(nc):
                w5[c] = pt[c] * pq[c]


@njit(cache=True, fastmath=_FAST)
def _triplet_shapes(nc, ang_zeta, ang_lam, ang_zint, ang_pref, tri, shapes):
    """Per (ζ, λ) shape: A = 2^(1−ζ) (1 + λ cos θ)^ζ and dA/dcos θ (integer ζ by repeated products)."""
    cos, u = tri[_COS], tri[_U]
    for k in range(ang_zeta.shape[0]):
        lam, pref, zi = ang_lam[k], ang_pref[k], ang_zint[k]
        A, dA = shapes[0, k], shapes[1, k]
        for c in range(nc):
            u[c] = 1.0 + lam * cos[c]
        if zi > 0:
            for c in range(nc):
                dA[c] = pref
            for _ in range(zi - 1):
                for c in range(nc):
                    dA[c] *= u[c]
        else:
            for c in range(nc):
                dA[c] = pref * u[c] ** (ang_zeta[k] - 1.0)
        for c in range(nc):
            A[c] = dA[c] * u[c]
        zl = ang_zeta[k] * lam
        for c in range(nc):
            dA[c] *= zl


@njit(cache=True, fastmath=_FAST)
def _function(kk, n4, g4_e, g4_a, g5_e, g5_a):
    """(is G4, η index, shape index) of angular function kk of a block (G4 first, then G5)."""
    if kk < n4:
        return True, g4_e[kk], g4_a[kk]
    return False, g5_e[kk - n4], g5_a[kk - n4]


@njit(cache=True, fastmath=_FAST)
def _add_values(i, off, nc, n4, nkt, g4_e, g4_a, g5_e, g5_a, shapes, etri, G):
    """G[i, off + kk] += Σ_triplets A W for every angular function kk of the block."""
    for kk in range(nkt):
        g4, e, a = _function(kk, n4, g4_e, g4_a, g5_e, g5_a)
        A, W = shapes[0, a], etri[_W4 if g4 else _W5, e]
        gsum = 0.0
        for c in range(nc):
            gsum += A[c] * W[c]
        G[i, off + kk] += gsum


@njit(cache=True, fastmath=_FAST)
def _derivative_factors(nc, n4, k_pi, rc2, ang_eta, PD, TQ, tri, etri):
    """Per-triplet factors shared by the derivative coefficients of all functions of one η."""
    T, Q = TQ[0], TQ[1]
    cos, ra, rb, r2, rjk, fcc = tri[_COS], tri[_RA], tri[_RB], tri[_R2], tri[_RJK], tri[_FCC]
    inv_ra, inv_rb, cia, cib, xc = tri[_INVRA], tri[_INVRB], tri[_CIA], tri[_CIB], tri[_XC]
    for c in range(nc):
        inv_ra[c] = 1.0 / ra[c]
    for c in range(nc):
        inv_rb[c] = 1.0 / rb[c]
    for c in range(nc):
        cia[c] = cos[c] * inv_ra[c]
    for c in range(nc):
        cib[c] = cos[c] * inv_rb[c]
    for e in range(ang_eta.shape[0]):
        dtx, dqx, pt, pq = etri[_DTX, e], etri[_DQX, e], etri[_PT, e], etri[_PQ, e]
        for c in range(nc):
            dtx[c] = PD[1, e, T[c]] * pq[c]
        for c in range(nc):
            dqx[c] = PD[1, e, Q[c]] * pt[c]
    if n4 > 0:
        for c in range(nc):
            xc[c] = (_dfc_poly(rjk[c], k_pi, _COS_C) if r2[c] < rc2 else 0.0) / rjk[c]
        for e in range(ang_eta.shape[0]):
            eta = ang_eta[e]
            dtx, dqx, pt, pq = etri[_DTX, e], etri[_DQX, e], etri[_PT, e], etri[_PQ, e]
            ex, wa4, wb4, pdx = etri[_EX, e], etri[_WA4, e], etri[_WB4, e], etri[_PDX, e]
            for c in range(nc):
                xk = ex[c] * fcc[c]
                wa4[c] = dtx[c] * xk
                wb4[c] = dqx[c] * xk
            for c in range(nc):
                pdx[c] = pt[c] * pq[c] * ex[c] * (xc[c] - 2.0 * eta * fcc[c])


@njit(cache=True, fastmath=_FAST)
def _triplet_coefficients(nc, n4, nkt, g4_e, g4_a, g5_e, g5_a, tri, etri, shapes, coef):
    """CAa, CBa, CAb, CBb of every angular function: with ∂T/∂r_ij = Ta, ∂T/∂r_ik = Tb, ∂T/∂cos = Tcos and
    h = (∂T/∂r_jk)/r_jk, grad_ij = (Ta − Tcos cos/ra + h ra) â + (Tcos/ra − h rb) b̂ and
    grad_ik = (Tcos/rb − h ra) â + (Tb − Tcos cos/rb + h rb) b̂ (r_jk = r_ik − r_ij)."""
    ra, rb, inv_ra, inv_rb, cia, cib = tri[_RA], tri[_RB], tri[_INVRA], tri[_INVRB], tri[_CIA], tri[_CIB]
    for kk in range(nkt):
        g4, e, a = _function(kk, n4, g4_e, g4_a, g5_e, g5_a)
        A, dA = shapes[0, a], shapes[1, a]
        caa, cba, cab, cbb = coef[_CAA, kk], coef[_CBA, kk], coef[_CAB, kk], coef[_CBB, kk]
        if g4:
            w4, pdx, wa4, wb4 = etri[_W4, e], etri[_PDX, e], etri[_WA4, e], etri[_WB4, e]
            for c in range(nc):
                Ak = A[c]
                tcos = dA[c] * w4[c]
                h = Ak * pdx[c]
                caa[c] = Ak * wa4[c] - tcos * cia[c] + h * ra[c]
                cba[c] = tcos * inv_ra[c] - h * rb[c]
                cab[c] = tcos * inv_rb[c] - h * ra[c]
                cbb[c] = Ak * wb4[c] - tcos * cib[c] + h * rb[c]
        else:
            w5, dtx, dqx = etri[_W5, e], etri[_DTX, e], etri[_DQX, e]
            for c in range(nc):
                Ak = A[c]
                tcos = dA[c] * w5[c]
                caa[c] = Ak * dtx[c] - tcos * cia[c]
                cba[c] = tcos * inv_ra[c]
                cab[c] = tcos * inv_rb[c]
                cbb[c] = Ak * dqx[c] - tcos * cib[c]


@njit(cache=True, fastmath=_FAST)
def _scatter_gradients(nc, nkt, nb, TQ, coef, LG):
    """Add every triplet's contribution to the block-local gradient rows LG[local pair, function, :]."""
    T, Q = TQ[0], TQ[1]
    ux, uy, uz = nb[_UX], nb[_UY], nb[_UZ]
    for c in range(nc):
        tt, qq = T[c], Q[c]
        axt, ayt, azt = ux[tt], uy[tt], uz[tt]
        bxq, byq, bzq = ux[qq], uy[qq], uz[qq]
        for k in range(nkt):
            aa, ba, ab, bb = coef[_CAA, k, c], coef[_CBA, k, c], coef[_CAB, k, c], coef[_CBB, k, c]
            LG[tt, k, 0] += aa * axt + ba * bxq
            LG[tt, k, 1] += aa * ayt + ba * byq
            LG[tt, k, 2] += aa * azt + ba * bzq
            LG[qq, k, 0] += ab * axt + bb * bxq
            LG[qq, k, 1] += ab * ayt + bb * byq
            LG[qq, k, 2] += ab * azt + bb * bzq


@njit(cache=True, fastmath=_FAST)
def _scatter_forces(i, off, nc, nkt, dE_dG, nb, TQ, tri, coef, acc):
    """Contract the coefficients with ∂E/∂G of the block's functions and add the triplets' ∂E/∂r to acc."""
    T, Q = TQ[0], TQ[1]
    ux, uy, uz = nb[_UX], nb[_UY], nb[_UZ]
    waa, wba, wab, wbb = tri[_WAA], tri[_WBA], tri[_WAB], tri[_WBB]
    for c in range(nc):
        waa[c] = 0.0
    for c in range(nc):
        wba[c] = 0.0
    for c in range(nc):
        wab[c] = 0.0
    for c in range(nc):
        wbb[c] = 0.0
    for kk in range(nkt):
        w = dE_dG[i, off + kk]
        caa, cba, cab, cbb = coef[_CAA, kk], coef[_CBA, kk], coef[_CAB, kk], coef[_CBB, kk]
        for c in range(nc):
            waa[c] += w * caa[c]
        for c in range(nc):
            wba[c] += w * cba[c]
        for c in range(nc):
            wab[c] += w * cab[c]
        for c in range(nc):
            wbb[c] += w * cbb[c]
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


@njit(cache=True, fastmath=_FAST)
def _chunk(i, mode, off, nc, params, k_pi, rc2, dE_dG, G, scratch):
    """Values and, by mode, derivative contributions of the nc gathered triplets of one block."""
    s = scratch
    n4, n5 = params.g4_e.shape[0], params.g5_e.shape[0]
    _triplet_factors(nc, n4, n5, k_pi, rc2, params.ang_eta, s.nb, s.PD, s.TQ, s.tri, s.etri)
    _triplet_shapes(nc, params.ang_zeta, params.ang_lam, params.ang_zint, params.ang_pref, s.tri, s.shapes)
    _add_values(i, off, nc, n4, n4 + n5, params.g4_e, params.g4_a, params.g5_e, params.g5_a, s.shapes, s.etri, G)
    if mode == VALUES:
        return
    _derivative_factors(nc, n4, k_pi, rc2, params.ang_eta, s.PD, s.TQ, s.tri, s.etri)
    _triplet_coefficients(nc, n4, n4 + n5, params.g4_e, params.g4_a, params.g5_e, params.g5_a, s.tri, s.etri,
                          s.shapes, s.coef)
    if mode == GRADIENTS:
        _scatter_gradients(nc, n4 + n5, s.nb, s.TQ, s.coef, s.LG)
    else:
        _scatter_forces(i, off, nc, n4 + n5, dE_dG, s.nb, s.TQ, s.tri, s.coef, s.acc)


@njit(cache=True, fastmath=_FAST)
def _angular_block(i, mode, a_, b_, params, k_pi, rc2, dE_dG, G, grad, scratch):
    """G4/G5 of centre i over triplets with neighbours of species a_ ≥ b_ (unique pairs q < t in local
    order), gathered chunk by chunk; in mode GRADIENTS the block's per-pair rows end in ``grad``."""
    bstart, gp, nb, LG = scratch.bstart, scratch.gp, scratch.nb, scratch.LG
    nkt = params.g4_e.shape[0] + params.g5_e.shape[0]
    its = a_ * (a_ + 1) // 2 + b_
    off = params.n_species * (1 + params.g2_eta.shape[0]) + its * nkt
    ta0, ta1 = bstart[0, a_], bstart[0, a_ + 1]
    if ta1 == ta0 or bstart[0, b_ + 1] == bstart[0, b_]:
        return
    n_blocks = 1 if a_ == b_ else 2
    if mode == GRADIENTS:  # only rows of species a_ and b_ receive contributions
        for sb in range(n_blocks):
            s_ = a_ if sb == 0 else b_
            for t in range(bstart[0, s_], bstart[0, s_ + 1]):
                for k in range(nkt):
                    for x in range(3):
                        LG[t, k, x] = 0.0
    compact = params.g5_e.shape[0] == 0  # G4 only: keep just the triplets with r_jk < rc
    cnt = 0
    for t in range(ta0, ta1 + 1):
        q0, q1 = bstart[0, b_], min(bstart[0, b_ + 1], t)
        if (t == ta1 or cnt + (q1 - q0) > _CHUNK) and cnt > 0:
            _chunk(i, mode, off, cnt, params, k_pi, rc2, dE_dG, G, scratch)
            cnt = 0
        if t < ta1:
            cnt = _gather_triplets(t, q0, q1, compact, rc2, nb, scratch.TQ, scratch.tri, cnt)
    if mode == GRADIENTS:  # each (pair, block) row is written once and grad comes zeroed: a plain store
        for sb in range(n_blocks):
            s_ = a_ if sb == 0 else b_
            for t in range(bstart[0, s_], bstart[0, s_ + 1]):
                p = gp[t]
                for k in range(nkt):
                    for x in range(3):
                        grad[p, off + k, x] = LG[t, k, x]


@njit(cache=True, fastmath=_FAST)
def _centre(i, mode, offsets, jj, species, vectors, params, dE_dG, G, grad, gpair, scratch):
    """Every function of centre i, and by mode its per-pair gradients or per-pair ∂E/∂r."""
    gp, nb, acc = scratch.gp, scratch.nb, scratch.acc
    k_pi = math.pi / params.rc
    rc2 = params.rc * params.rc
    m = _environment(i, offsets, jj, species, vectors, params.n_species, k_pi, scratch.bstart, gp, nb)
    _radial(i, mode, m, scratch.bstart, gp, nb, params.n_species, params.g2_eta, params.g2_rs, dE_dG, G, grad)
    if mode == FORCES:
        dsum, ux, uy, uz = nb[_DSUM], nb[_UX], nb[_UY], nb[_UZ]
        for t in range(m):
            acc[t, 0] = dsum[t] * ux[t]
            acc[t, 1] = dsum[t] * uy[t]
            acc[t, 2] = dsum[t] * uz[t]
    if params.g4_e.shape[0] + params.g5_e.shape[0] > 0 and m >= 2:
        _pair_factors(m, params.ang_eta, nb, scratch.PD)
        for a_ in range(params.n_species):
            for b_ in range(a_ + 1):
                _angular_block(i, mode, a_, b_, params, k_pi, rc2, dE_dG, G, grad, scratch)
    if mode == FORCES:
        for t in range(m):
            for x in range(3):
                gpair[gp[t], x] = acc[t, x]


@njit(cache=True, parallel=True)
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
        scratch = _scratch(mode, max_m, params.n_species, params.ang_eta.shape[0], params.ang_zeta.shape[0], nkt)
        for i in range(chunk * n_atoms // n_chunks, (chunk + 1) * n_atoms // n_chunks):
            _centre(i, mode, offsets, jj, species, vectors, params, dE_dG, G, grad, gpair, scratch)
