"""PLIP descriptor pool: species-resolved 2-, 3- and many-body Gaussian terms with analytic gradients.

The physically motivated pool of the PLIP potentials (Benoit et al., Mach. Learn.: Sci. Technol. 2,
025003 (2021); LAM-GROUP/PLIP; Kandy et al., PRB 107, 174106 (2023)). For a centre i with neighbours j
at r_ij < R_c, with the cutoff fc(r) = ½[1 + cos(π r / R_c)] and Gaussians f_n(r) = exp(−a_n (r − b_n)²)
on every combination of a width a and a position b (n = 1 … N_basis):

- two-body    [2B]_n^i   = Σ_j f_n(r_ij) fc(r_ij)
- three-body  [3B]_{n,l}^i = Σ_{j<k} f_n(r_ij) fc(r_ij) f_n(r_ik) fc(r_ik) cos^l θ_jik,  l = 0 … l_max
  (the same basis function n on both legs)
- many-body   [NB]_{n,m}^i = ( Σ_j f_n(r_ij) fc(r_ij) f_s(r_ij) )^m,  m = 4 … m_max

f_s is the smooth switch of the PLIP code (``fshort``): with r1 = 0.95 R_short, r2 = 1.05 R_short and
u = (r − r1)/(r2 − r1), f_s = 0 below r1, 6u⁵ − 15u⁴ + 10u³ between, 1 above r2 (C² at both ends). It
switches ON above R_short, so the many-body densities count the neighbours *beyond* the short-range
shell R_short (R_short is set per species pair).

**Unordered pairs.** The 3B sum runs over unordered neighbour pairs j < k. The PLIP C++ code sums over
ordered pairs j ≠ k, which is exactly twice our value; a linear model absorbs the factor 2 in its
weights.

**Species channels** (the pool is *centre resolved*: a linear model uses one shared weight vector for
all atoms, and an atom's row is zero in the channels of other centre elements):

- 2B: one channel per unordered species pair {Z_i, Z_j} (binary AB: AA, AB, BB — both A and B centres
  contribute to AB);
- 3B: one channel per (centre species, unordered neighbour-species pair) (binary: A-AA, A-AB, A-BB,
  B-AA, B-AB, B-BB);
- NB: one channel per (centre species, neighbour species) (binary: A-A, A-B, B-A, B-B).

With S elements, P = S(S+1)/2 pair types and N_basis Gaussians the pool has
N_basis · [P + S·P·(l_max + 1) + S²·(m_max − 3)] features (binary: 3·N + 6·N·(l_max+1) + 4·N·(m_max−3)).
Elements are ordered by atomic number (ZnO: O, Zn). Feature layout: the 2B block, then 3B, then NB; in
each block channel-major, then basis (a outer, b inner), then l or m. Names read e.g.
``2B[O-Zn](a=1,b=2)``, ``3B[Zn-OZn](a=1,b=2.5,l=3)`` (centre Zn, one O and one Zn neighbour),
``NB[Zn-O](a=0.5,b=3.5,m=4)`` (centre Zn, O neighbours). :meth:`PLIP.channels` tabulates them.

**Algorithm (exact, linear in the number of neighbours).** The 3B sums use the moment expansion
cos^l θ_jk = (û_j·û_k)^l = Σ_{|α|=l} multinomial(α) û_j^α û_k^α. With the moments
M_{s,n,α} = Σ_{j∈s} g_n(r_j) û_j^α (g_n = f_n fc, s a neighbour species):
Σ_{j<k, j,k∈s} g g cos^l = ½ [Σ_α mult(α) M_{s,n,α}² − Σ_{j∈s} g_n(r_j)²]  (the j = k diagonal has
cos = 1) and Σ_{j∈s, k∈t} g g cos^l = Σ_α mult(α) M_{s,n,α} M_{t,n,α} for s ≠ t. The cost per centre
is O(n_neigh · N_basis · n_α) with n_α = (l_max+1)(l_max+2)(l_max+3)/6 (56 for l_max = 5) instead of
O(n_neigh² · N_basis · l_max) for the direct double loop. Gradients follow by the chain rule,
∂(g û^α)/∂r = g′ û^α û + (g/r)(∇_u û^α − l û^α û) (Euler's theorem for the degree-l monomial). Same-
species cancellations in the ½[Σ M² − Σ g²] form leave round-off of order 1e-16 × (Σ_j g)², far
below any physical signal; the tests compare with a direct double loop to 1e-10.

Kernels are ``@njit(cache=True)`` loops over the CSR pair list, parallel over chunks of centres (each
centre writes only its own row and its own pairs: no races); cost and memory are O(N_atoms).
:meth:`PLIP.forces_and_virial` contracts ∂E/∂G on the fly (per centre, moments are weighted once), so
no (n_pairs, n_features, 3) array is ever formed.

**Magnitudes.** With :meth:`PLIP.default_zno` the 2B entries are ≲ 10, the 3B entries ≲ 10², and the
NB powers reach ρ^7 ≈ 1e4 for the ZnO polymorphs at equilibrium (ρ ≈ 3.6–4.4) and ≈ 5e5 under 10 %
linear compression (ρ ≈ 6.6). Float64 holds this without loss; the spread of column scales is left to
the standardisation of the model (no rescaling here, so the features stay those of PLIP). The steep
growth of the NB columns with density is a real extrapolation hazard of the PLIP form.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from ase.data import atomic_numbers, chemical_symbols, covalent_radii
from numba import get_num_threads, njit, prange

from mliplib.descriptors.base import (
    FORCES,
    GRADIENTS,
    VALUES,
    Descriptor,
    species_numbers,
)

#: Default generic Gaussian widths a (Å⁻²) and the factor applied to covalent radii when r_short is None.
DEFAULT_WIDTHS = (0.5, 1.0, 1.5)
R_SHORT_COVALENT_FACTOR = 1.2


# --------------------------------------------------------------------------------------------------
# helpers on the Python side
# --------------------------------------------------------------------------------------------------

def _symbol(s) -> str:
    if isinstance(s, str):
        if s not in atomic_numbers:
            raise ValueError(f"unknown element symbol {s!r} in r_short")
        return s
    z = int(s)
    if not 0 < z < len(chemical_symbols):
        raise ValueError(f"unknown atomic number {s!r} in r_short")
    return chemical_symbols[z]


def _pair_key(key) -> tuple[str, str]:
    """('Zn', 'O'), ('Zn', 8), 'Zn-O' → ('Zn', 'O')."""
    if isinstance(key, str):
        parts = key.split("-")
        if len(parts) != 2:
            raise ValueError(f"r_short key {key!r} is not a species pair; use ('Zn', 'O') or 'Zn-O'")
        return _symbol(parts[0].strip()), _symbol(parts[1].strip())
    try:
        s, t = key
    except (TypeError, ValueError):
        raise ValueError(f"r_short key {key!r} is not a species pair; use ('Zn', 'O') or 'Zn-O'") from None
    return _symbol(s), _symbol(t)


def _monomials(l_max: int):
    """Multi-indices α = (ax, ay, az) with |α| = l for l = 0 … l_max, grouped by l, and multinomials."""
    ax, ay, az, mult, deg = [], [], [], [], []
    start = [0]
    for l in range(l_max + 1):
        for x in range(l, -1, -1):
            for y in range(l - x, -1, -1):
                z = l - x - y
                ax.append(x)
                ay.append(y)
                az.append(z)
                deg.append(l)
                mult.append(math.factorial(l) // (math.factorial(x) * math.factorial(y) * math.factorial(z)))
        start.append(len(ax))
    i64 = np.int64
    return (np.array(ax, i64), np.array(ay, i64), np.array(az, i64), np.array(mult, np.float64),
            np.array(deg, i64), np.array(start, i64))


def _fmt(x: float) -> str:
    return f"{x:g}"


# --------------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------------
#
# One centre at a time (``_centre``): its neighbours' radial functions (``_neighbours``), the 2B values
# (``_two_body``), the NB densities and powers (``_many_body``), the 3B moments and values
# (``_three_body``); for derivatives, per pair: the monomials of its unit vector (``_monomials_of``) and
# either its gradient rows (``_pair_gradients``, mode GRADIENTS) or its ∂E/∂r from moments weighted
# once per centre (``_weigh``, ``_pair_force``, mode FORCES). As in the BP kernel, the steps are inlined
# by LLVM and run without reference counting (``_STEP``), on scratch arrays that are allocations of
# their own (``_Scratch``), each bound to a local name at the top of a step.

_STEP = {"cache": True, "forceinline": True, "_nrt": False}


class _Params(NamedTuple):
    """The pool's parameters as the kernels take them (flat arrays and numbers)."""

    cutoff: float
    a_n: np.ndarray  # (Nb,) Gaussian widths and positions of the basis
    b_n: np.ndarray
    rs1: np.ndarray  # (S, S) switch start and end per (centre, neighbour) species
    rs2: np.ndarray
    pair_index: np.ndarray  # (S, S) unordered species pair → channel
    do2: bool
    do3: bool
    doN: bool
    l_max: int
    m_max: int
    ax: np.ndarray  # (nA,) monomial exponents, multinomials, degrees; lstart (L + 1,) first monomial of degree l
    ay: np.ndarray
    az: np.ndarray
    amult: np.ndarray
    adeg: np.ndarray
    lstart: np.ndarray
    off2: int  # first column of the 2B, 3B and NB blocks
    off3: int
    offN: int


class _Scratch(NamedTuple):
    """Scratch of one chunk of centres; k runs over the neighbours of a centre inside the cutoff."""

    gv: np.ndarray  # [k, n]: g_n = f_n fc and its derivative by r
    gd: np.ndarray
    uu: np.ndarray  # [k, 3]: unit vector; rr [k]: distance; sk [k]: species; pk [k]: pair index
    rr: np.ndarray
    sk: np.ndarray
    pk: np.ndarray
    M: np.ndarray  # [s, n, α]: moments Σ_{j∈s} g_n û^α; D [s, n]: Σ_{j∈s} g_n²; cnt [s]: neighbours of s
    D: np.ndarray
    cnt: np.ndarray
    rho: np.ndarray  # [s, n]: NB density
    W: np.ndarray  # [s, n, α]: mode FORCES, moments weighted by ∂E/∂G; wdiag [s, n], cN [s, n] likewise
    wdiag: np.ndarray
    cN: np.ndarray
    ua: np.ndarray  # [α]: û^α of one pair and its gradient dua [α, 3] by û
    dua: np.ndarray
    Vg: np.ndarray  # [α]: mode FORCES, Σ_n g_n W_nα and Σ_n g′_n W_nα
    Vd: np.ndarray
    px: np.ndarray  # [e]: powers of the unit vector's components
    py: np.ndarray
    pz: np.ndarray


@njit(cache=True, forceinline=True)
def _scratch(maxk, S, Nb, nA, L):
    """Allocate the scratch of one chunk of centres (once per chunk, not per centre)."""
    return _Scratch(np.empty((maxk, Nb)), np.empty((maxk, Nb)), np.empty((maxk, 3)), np.empty(maxk),
                    np.empty(maxk, np.int64), np.empty(maxk, np.int64), np.zeros((S, Nb, nA)), np.zeros((S, Nb)),
                    np.zeros(S, np.int64), np.zeros((S, Nb)), np.zeros((S, Nb, nA)), np.zeros((S, Nb)),
                    np.zeros((S, Nb)), np.empty(nA), np.empty((nA, 3)), np.empty(nA), np.empty(nA),
                    np.empty(L + 1), np.empty(L + 1), np.empty(L + 1))


@njit(cache=True)
def switch(r, r1, r2):
    """The PLIP short-range switch f_s(r) and its derivative.

    Parameters
    ----------
    r : float
        Distance in Å.
    r1, r2 : float
        Start and end of the switch in Å (0.95 and 1.05 × R_short).

    Returns
    -------
    fs : float
        0 below r1, 1 above r2, 6u⁵ − 15u⁴ + 10u³ between (u = (r − r1)/(r2 − r1); C² at both ends).
    dfs : float
        dfs/dr in Å⁻¹.
    """
    if r <= r1:
        return 0.0, 0.0
    if r >= r2:
        return 1.0, 0.0
    h = r2 - r1
    u = (r - r1) / h
    u2 = u * u
    return u2 * u * (10.0 + u * (-15.0 + 6.0 * u)), 30.0 * u2 * (1.0 - u) * (1.0 - u) / h


@njit(**_STEP)
def _neighbours(i, offsets, jn, vectors, spec, params, s):
    """Neighbours of centre i inside the cutoff: distance, unit vector, species, pair index and the
    basis g_n = exp(−a_n (r − b_n)²) fc(r) with its derivative. Returns their number."""
    gv, gd, uu, rr, sk, pk = s.gv, s.gd, s.uu, s.rr, s.sk, s.pk
    a_n, b_n = params.a_n, params.b_n
    cut2 = params.cutoff * params.cutoff
    pi_rc = np.pi / params.cutoff
    nk = 0
    for p in range(offsets[i], offsets[i + 1]):
        x = vectors[p, 0]
        y = vectors[p, 1]
        z = vectors[p, 2]
        r2 = x * x + y * y + z * z
        if r2 >= cut2:
            continue
        r = np.sqrt(r2)
        rr[nk] = r
        uu[nk, 0] = x / r
        uu[nk, 1] = y / r
        uu[nk, 2] = z / r
        sk[nk] = spec[jn[p]]
        pk[nk] = p
        fc = 0.5 * (1.0 + np.cos(pi_rc * r))
        dfc = -0.5 * pi_rc * np.sin(pi_rc * r)
        for n in range(a_n.shape[0]):
            d = r - b_n[n]
            e = np.exp(-a_n[n] * d * d)
            gv[nk, n] = e * fc
            gd[nk, n] = e * (dfc - 2.0 * a_n[n] * d * fc)
        nk += 1
    return nk


@njit(**_STEP)
def _two_body(i, ci, nk, params, G, s):
    """[2B]_n^i = Σ_j g_n(r_ij), in the channel of the pair (species of i, species of j)."""
    gv, sk = s.gv, s.sk
    Nb = params.a_n.shape[0]
    for k in range(nk):
        base = params.off2 + params.pair_index[ci, sk[k]] * Nb
        for n in range(Nb):
            G[i, base + n] += gv[k, n]


@njit(**_STEP)
def _many_body(i, ci, nk, params, G, s):
    """NB densities ρ_{s,n} = Σ_{j∈s} g_n f_s and the powers ρ^m, m = 4 … m_max."""
    gv, rr, sk, rho = s.gv, s.rr, s.sk, s.rho
    S, Nb, Mm = params.rs1.shape[0], params.a_n.shape[0], params.m_max - 3
    rho[:, :] = 0.0
    for k in range(nk):
        t = sk[k]
        fs, _ = switch(rr[k], params.rs1[ci, t], params.rs2[ci, t])
        if fs != 0.0:
            for n in range(Nb):
                rho[t, n] += gv[k, n] * fs
    for t in range(S):
        base = params.offN + (ci * S + t) * Nb * Mm
        for n in range(Nb):
            q = rho[t, n]
            v = q * q * q
            for m in range(4, params.m_max + 1):
                v *= q
                G[i, base + n * Mm + m - 4] = v


@njit(**_STEP)
def _monomials_of(k, derivatives, params, s):
    """û^α of neighbour k for every monomial α (and with ``derivatives`` its gradient by û)."""
    uu, ua, dua, px, py, pz = s.uu, s.ua, s.dua, s.px, s.py, s.pz
    ax, ay, az = params.ax, params.ay, params.az
    px[0] = 1.0
    py[0] = 1.0
    pz[0] = 1.0
    for e in range(1, params.l_max + 1):
        px[e] = px[e - 1] * uu[k, 0]
        py[e] = py[e - 1] * uu[k, 1]
        pz[e] = pz[e - 1] * uu[k, 2]
    for al in range(ax.shape[0]):
        a0 = ax[al]
        a1 = ay[al]
        a2 = az[al]
        ua[al] = px[a0] * py[a1] * pz[a2]
        if derivatives:
            dua[al, 0] = a0 * px[a0 - 1] * py[a1] * pz[a2] if a0 > 0 else 0.0
            dua[al, 1] = a1 * px[a0] * py[a1 - 1] * pz[a2] if a1 > 0 else 0.0
            dua[al, 2] = a2 * px[a0] * py[a1] * pz[a2 - 1] if a2 > 0 else 0.0


@njit(**_STEP)
def _three_body(i, ci, nk, params, G, s):
    """Moments M_{s,n,α} = Σ_{j∈s} g_n û^α, then [3B] = Σ_α mult(α) M_s M_t per degree l (s ≠ t), and
    ½ [Σ_α mult(α) M_s² − Σ_{j∈s} g_n²] for s = t (the j = k diagonal has cos θ = 1)."""
    gv, sk, M, D, cnt, ua = s.gv, s.sk, s.M, s.D, s.cnt, s.ua
    S, Nb, L = params.rs1.shape[0], params.a_n.shape[0], params.l_max + 1
    P = S * (S + 1) // 2
    nA = params.ax.shape[0]
    M[:, :, :] = 0.0
    D[:, :] = 0.0
    cnt[:] = 0
    for k in range(nk):
        t = sk[k]
        cnt[t] += 1
        _monomials_of(k, False, params, s)
        for n in range(Nb):
            g = gv[k, n]
            D[t, n] += g * g
            for al in range(nA):
                M[t, n, al] += g * ua[al]
    for a in range(S):
        for b in range(a, S):
            if a == b and cnt[a] < 2:
                continue  # no pair: exactly zero (the moment form would leave round-off)
            base = params.off3 + (ci * P + params.pair_index[a, b]) * Nb * L
            for n in range(Nb):
                for l in range(L):
                    T = 0.0
                    for al in range(params.lstart[l], params.lstart[l + 1]):
                        T += params.amult[al] * M[a, n, al] * M[b, n, al]
                    if a == b:
                        T = 0.5 * (T - D[a, n])
                    G[i, base + n * L + l] = T


@njit(**_STEP)
def _weigh(i, ci, params, dE_dG, s):
    """Mode FORCES: moments weighted once per centre by ∂E/∂G, W_{s,n,α} = Σ_t mult(α) ∂E/∂[3B]_{st,n,l(α)}
    M_{t,n,α}, the diagonal weights Σ_l ∂E/∂[3B]_{ss,n,l}, and cN_{s,n} = Σ_m ∂E/∂[NB]_{s,n,m} m ρ^(m−1)."""
    M, W, wdiag, cN, cnt, rho = s.M, s.W, s.wdiag, s.cN, s.cnt, s.rho
    S, Nb, L, Mm = params.rs1.shape[0], params.a_n.shape[0], params.l_max + 1, params.m_max - 3
    P = S * (S + 1) // 2
    if params.do3:
        W[:, :, :] = 0.0
        wdiag[:, :] = 0.0
        for a in range(S):
            for b in range(S):
                if a == b and cnt[a] < 2:
                    continue
                base = params.off3 + (ci * P + params.pair_index[a, b]) * Nb * L
                for n in range(Nb):
                    for al in range(params.ax.shape[0]):
                        W[a, n, al] += params.amult[al] * dE_dG[i, base + n * L + params.adeg[al]] * M[b, n, al]
                    if a == b:
                        for l in range(L):
                            wdiag[a, n] += dE_dG[i, base + n * L + l]
    if params.doN:
        for t in range(S):
            base = params.offN + (ci * S + t) * Nb * Mm
            for n in range(Nb):
                q = rho[t, n]
                c = 0.0
                qm = q * q * q  # q^(m-1) for m = 4
                for m in range(4, params.m_max + 1):
                    c += dE_dG[i, base + n * Mm + m - 4] * m * qm
                    qm *= q
                cN[t, n] = c


@njit(**_STEP)
def _pair_gradients(i, ci, k, params, grad, s):
    """Mode GRADIENTS: the rows ∂G_if/∂r_ij of neighbour k, for its 2B, NB and 3B columns."""
    gv, gd, uu, rr, sk, pk = s.gv, s.gd, s.uu, s.rr, s.sk, s.pk
    M, cnt, rho, ua, dua = s.M, s.cnt, s.rho, s.ua, s.dua
    S, Nb, L, Mm = params.rs1.shape[0], params.a_n.shape[0], params.l_max + 1, params.m_max - 3
    P = S * (S + 1) // 2
    p, t, r = pk[k], sk[k], rr[k]
    ux, uy, uz = uu[k, 0], uu[k, 1], uu[k, 2]
    if params.do2:
        base = params.off2 + params.pair_index[ci, t] * Nb
        for n in range(Nb):
            d = gd[k, n]
            grad[p, base + n, 0] = d * ux
            grad[p, base + n, 1] = d * uy
            grad[p, base + n, 2] = d * uz
    if params.doN:
        fs, dfs = switch(r, params.rs1[ci, t], params.rs2[ci, t])
        if fs != 0.0 or dfs != 0.0:
            base = params.offN + (ci * S + t) * Nb * Mm
            for n in range(Nb):
                dh = gd[k, n] * fs + gv[k, n] * dfs
                q = rho[t, n]
                qm = q * q * q
                for m in range(4, params.m_max + 1):
                    c = m * qm * dh
                    qm *= q
                    f = base + n * Mm + m - 4
                    grad[p, f, 0] = c * ux
                    grad[p, f, 1] = c * uy
                    grad[p, f, 2] = c * uz
    if params.do3:
        for b in range(S):
            if t == b and cnt[t] < 2:
                continue
            base = params.off3 + (ci * P + params.pair_index[t, b]) * Nb * L
            for n in range(Nb):
                g = gv[k, n]
                dg = gd[k, n]
                gr = g / r
                self_term = g * dg if t == b else 0.0
                for l in range(L):
                    A = 0.0
                    Bx = 0.0
                    By = 0.0
                    Bz = 0.0
                    for al in range(params.lstart[l], params.lstart[l + 1]):
                        c = params.amult[al] * M[b, n, al]
                        A += c * ua[al]
                        Bx += c * dua[al, 0]
                        By += c * dua[al, 1]
                        Bz += c * dua[al, 2]
                    radial = dg * A - gr * l * A - self_term
                    f = base + n * L + l
                    grad[p, f, 0] = radial * ux + gr * Bx
                    grad[p, f, 1] = radial * uy + gr * By
                    grad[p, f, 2] = radial * uz + gr * Bz


@njit(**_STEP)
def _pair_force(i, ci, k, params, dE_dG, gout, s):
    """Mode FORCES: ∂E/∂r_ij = Σ_f ∂E/∂G_if ∂G_if/∂r_ij of neighbour k, from the weighted moments."""
    gv, gd, uu, rr, sk, pk = s.gv, s.gd, s.uu, s.rr, s.sk, s.pk
    W, wdiag, cN, ua, dua, Vg = s.W, s.wdiag, s.cN, s.ua, s.dua, s.Vg
    Vd = s.Vd
    Nb = params.a_n.shape[0]
    p, t, r = pk[k], sk[k], rr[k]
    ux, uy, uz = uu[k, 0], uu[k, 1], uu[k, 2]
    radial = 0.0
    vx = 0.0
    vy = 0.0
    vz = 0.0
    if params.do2:
        base = params.off2 + params.pair_index[ci, t] * Nb
        for n in range(Nb):
            radial += dE_dG[i, base + n] * gd[k, n]
    if params.doN:
        fs, dfs = switch(r, params.rs1[ci, t], params.rs2[ci, t])
        if fs != 0.0 or dfs != 0.0:
            for n in range(Nb):
                radial += cN[t, n] * (gd[k, n] * fs + gv[k, n] * dfs)
    if params.do3:
        # contract the basis first: Vg_α = Σ_n g_n W_nα, Vd_α = Σ_n g′_n W_nα
        Vg[:] = 0.0
        Vd[:] = 0.0
        for n in range(Nb):
            g = gv[k, n]
            dg = gd[k, n]
            radial -= wdiag[t, n] * g * dg
            for al in range(params.ax.shape[0]):
                c = W[t, n, al]
                Vg[al] += g * c
                Vd[al] += dg * c
        inv_r = 1.0 / r
        for al in range(params.ax.shape[0]):
            radial += (Vd[al] - params.adeg[al] * inv_r * Vg[al]) * ua[al]
            c = inv_r * Vg[al]
            vx += c * dua[al, 0]
            vy += c * dua[al, 1]
            vz += c * dua[al, 2]
    gout[p, 0] = radial * ux + vx
    gout[p, 1] = radial * uy + vy
    gout[p, 2] = radial * uz + vz


@njit(**_STEP)
def _centre(i, offsets, jn, vectors, spec, params, mode, dE_dG, G, grad, gout, s):
    """Every feature of centre i, and by mode its per-pair gradients or per-pair ∂E/∂r."""
    ci = spec[i]
    nk = _neighbours(i, offsets, jn, vectors, spec, params, s)
    if params.do2:
        _two_body(i, ci, nk, params, G, s)
    if params.doN:
        _many_body(i, ci, nk, params, G, s)
    if params.do3:
        _three_body(i, ci, nk, params, G, s)
    if mode == VALUES:
        return
    if mode == FORCES:
        _weigh(i, ci, params, dE_dG, s)
    for k in range(nk):
        if params.do3:
            _monomials_of(k, True, params, s)
        if mode == GRADIENTS:
            _pair_gradients(i, ci, k, params, grad, s)
        else:
            _pair_force(i, ci, k, params, dE_dG, gout, s)


@njit(cache=True, parallel=True)
def _plip_kernel(offsets, jn, vectors, spec, params, mode, dE_dG, G, grad, gout, n_chunks):
    """Fill G and, by mode, grad[p, f, :] = ∂G_if/∂r_p (GRADIENTS) or gout[p] = Σ_f dE_dG[i, f] ∂G_if/∂r_p
    (FORCES), over ``n_chunks`` contiguous chunks of centres in parallel (each centre writes only its own
    row and its own pairs: no races), with one scratch allocation per chunk."""
    n = spec.shape[0]
    S, Nb, nA = params.rs1.shape[0], params.a_n.shape[0], params.ax.shape[0]
    for c in prange(n_chunks):
        lo = c * n // n_chunks
        hi = (c + 1) * n // n_chunks
        maxk = 0
        for i in range(lo, hi):
            maxk = max(maxk, offsets[i + 1] - offsets[i])
        s = _scratch(maxk, S, Nb, nA, params.l_max + 1)
        for i in range(lo, hi):
            _centre(i, offsets, jn, vectors, spec, params, mode, dE_dG, G, grad, gout, s)


# --------------------------------------------------------------------------------------------------
# the descriptor
# --------------------------------------------------------------------------------------------------

class PLIP(Descriptor):
    """PLIP 2B/3B/NB Gaussian pool, species resolved, centre resolved (see the module docstring).

    Parameters
    ----------
    species : sequence of str or int
        Element symbols or atomic numbers the descriptor knows (stored sorted by Z).
    cutoff : float
        R_c in Å (> 0), for every body order.
    a : sequence of float
        Gaussian widths a in Å⁻² (≥ 0; a = 0 gives the bare cutoff function, a coordination count).
    b : sequence of float or None
        Gaussian positions in Å; ``None`` → 1.0, 1.5, … (< cutoff). The basis is every (a, b) pair.
    l_max : int
        Highest power of cos θ in 3B (≥ 0).
    m_max : int
        Highest power in NB (≥ 4; powers 4 … m_max as in PLIP).
    r_short : dict or None
        R_short per species pair in Å, e.g. ``{("Zn", "O"): 2.3, ("Zn", "Zn"): 3.5, "O-O": 3.5}``
        (symmetric; keys as tuples of symbols/numbers or "A-B" strings); every pair of ``species`` needs a
        value with 0 < R_short < cutoff. ``None`` → a generic default, 1.2 × (sum of the covalent radii),
        i.e. the NB densities switch on just past a covalent bond; give explicit values for real work
        (see :meth:`default_zno`). Ignored when ``many_body`` is False.
    two_body, three_body, many_body : bool
        Which blocks to include.

    Notes
    -----
    Evaluation (``compute``, ``forces_and_virial``, ``values_forces_and_virial``) is inherited from
    :class:`~mliplib.descriptors.base.Descriptor`.
    """

    centre_resolved = True

    def __init__(self, species, cutoff=6.0, a=DEFAULT_WIDTHS, b=None, l_max=5, m_max=7, r_short=None,
                 two_body=True, three_body=True, many_body=True):
        self.species_z = species_numbers(species)
        cutoff = float(cutoff)
        if not (cutoff > 0 and np.isfinite(cutoff)):
            raise ValueError(f"cutoff must be a positive finite length in Å, got {cutoff}")
        self.cutoff = cutoff
        a = np.atleast_1d(np.asarray(a, dtype=np.float64))
        if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"a must be a non-empty list of finite Gaussian widths in Å⁻², got {a.tolist()}")
        if np.any(a < 0):
            raise ValueError(f"Gaussian widths a must be ≥ 0 Å⁻² (f = exp(−a (r − b)²)); got {a.tolist()}")
        if b is None:
            b = np.arange(1.0, cutoff - 1e-9, 0.5)
            if b.size == 0:
                b = np.array([0.5 * cutoff])
        b = np.atleast_1d(np.asarray(b, dtype=np.float64))
        if b.ndim != 1 or b.size == 0 or not np.all(np.isfinite(b)):
            raise ValueError(f"b must be a non-empty list of finite Gaussian positions in Å, got {b.tolist()}")
        for name, arr in (("a", a), ("b", b)):
            if len(np.unique(arr)) != len(arr):
                raise ValueError(f"{name} contains repeated values {arr.tolist()}; they would give duplicate features")
        self.a = a
        self.b = b
        if int(l_max) != l_max or l_max < 0:
            raise ValueError(f"l_max must be an integer ≥ 0 (powers of cos θ), got {l_max}")
        self.l_max = int(l_max)
        self.two_body, self.three_body, self.many_body = bool(two_body), bool(three_body), bool(many_body)
        if not (self.two_body or self.three_body or self.many_body):
            raise ValueError("all of two_body, three_body and many_body are False: the pool would be empty")
        if self.many_body and (int(m_max) != m_max or m_max < 4):
            raise ValueError(f"m_max must be an integer ≥ 4 (NB powers run 4 … m_max), got {m_max}; "
                             f"or set many_body=False")
        self.m_max = int(m_max)
        self.r_short = self._resolve_r_short(r_short) if self.many_body else (
            None if r_short is None else self._resolve_r_short(r_short, check=False))

        S = len(self.species_z)
        self._pair_index = np.zeros((S, S), np.int64)
        self._pairs = []
        for s in range(S):
            for t in range(s, S):
                self._pair_index[s, t] = self._pair_index[t, s] = len(self._pairs)
                self._pairs.append((s, t))
        self._basis_a = np.repeat(self.a, len(self.b))
        self._basis_b = np.tile(self.b, len(self.a))
        rs = np.zeros((S, S))
        if self.many_body:
            sym = self.species
            for s in range(S):
                for t in range(S):
                    rs[s, t] = self.r_short[(sym[s], sym[t])]
        self._build_table()
        ax, ay, az, amult, adeg, lstart = _monomials(self.l_max)
        self._params = _Params(self.cutoff, np.repeat(self.a, len(self.b)), np.tile(self.b, len(self.a)),
                               0.95 * rs, 1.05 * rs, self._pair_index, self.two_body, self.three_body,
                               self.many_body, self.l_max, max(self.m_max, 4), ax, ay, az, amult, adeg, lstart,
                               self._off2, self._off3, self._offN)

    # ---- construction helpers -----------------------------------------------------------------

    def _resolve_r_short(self, r_short, check=True) -> dict:
        sym = self.species
        known = set(sym)
        out = {}
        if r_short is None:
            for s in sym:
                for t in sym:
                    value = R_SHORT_COVALENT_FACTOR * (covalent_radii[atomic_numbers[s]]
                                                       + covalent_radii[atomic_numbers[t]])
                    out[(s, t)] = float(value)
        else:
            if not hasattr(r_short, "items"):
                raise ValueError("r_short must be a dict {('A', 'B'): R_short in Å, ...} or None")
            for key, value in r_short.items():
                s, t = _pair_key(key)
                if s not in known or t not in known:
                    raise ValueError(f"r_short pair {key!r} names an element outside species {sym}")
                value = float(value)
                for k in ((s, t), (t, s)):
                    if k in out and out[k] != value:
                        raise ValueError(f"r_short gives two different values for the pair {s}-{t}: "
                                         f"{out[k]} and {value}")
                    out[k] = value
        if check:
            for s in sym:
                for t in sym:
                    if (s, t) not in out:
                        raise ValueError(f"r_short is missing the pair {s}-{t}; give R_short (Å) for every "
                                         f"species pair, e.g. {{('{s}', '{t}'): 2.5}}, or many_body=False")
                    v = out[(s, t)]
                    if not (v > 0 and np.isfinite(v)):
                        raise ValueError(f"R_short for {s}-{t} must be a positive length in Å, got {v}")
                    if v >= self.cutoff:
                        raise ValueError(f"R_short for {s}-{t} is {v} Å, not below the cutoff {self.cutoff} Å; "
                                         f"the many-body density would vanish. Lower R_short or raise the cutoff")
        return out

    def _build_table(self):
        sym = self.species
        S = len(sym)
        P = len(self._pairs)
        Nb = len(self._basis_a)
        L = self.l_max + 1
        Mm = self.m_max - 3
        rows = []

        def add(body, centre, neighbours, channel, a, b, l=None, m=None):
            tag = f"a={_fmt(a)},b={_fmt(b)}" + (f",l={l}" if l is not None else "") + (
                f",m={m}" if m is not None else "")
            rows.append({"index": len(rows), "name": f"{body}[{channel}]({tag})", "body": body,
                         "channel": channel, "centre": centre, "neighbours": neighbours,
                         "a": float(a), "b": float(b), "l": l, "m": m})

        self._off2 = 0
        if self.two_body:
            for (s, t) in self._pairs:
                for n in range(Nb):
                    add("2B", None, (sym[s], sym[t]), f"{sym[s]}-{sym[t]}", self._basis_a[n], self._basis_b[n])
        self._off3 = len(rows)
        if self.three_body:
            for c in range(S):
                for (s, t) in self._pairs:
                    for n in range(Nb):
                        for l in range(L):
                            add("3B", sym[c], (sym[s], sym[t]), f"{sym[c]}-{sym[s]}{sym[t]}",
                                self._basis_a[n], self._basis_b[n], l=l)
        self._offN = len(rows)
        if self.many_body:
            for c in range(S):
                for s in range(S):
                    for n in range(Nb):
                        for m in range(4, self.m_max + 1):
                            add("NB", sym[c], (sym[s],), f"{sym[c]}-{sym[s]}",
                                self._basis_a[n], self._basis_b[n], m=m)
        expected = Nb * ((P if self.two_body else 0) + (S * P * L if self.three_body else 0)
                         + (S * S * Mm if self.many_body else 0))
        assert len(rows) == expected
        self._table = rows
        self.feature_names = [r["name"] for r in rows]

    # ---- public API ---------------------------------------------------------------------------

    @property
    def n_basis(self) -> int:
        """Number of Gaussians, len(a) × len(b)."""
        return len(self._basis_a)

    def channels(self) -> list[dict]:
        """What each feature is.

        Returns
        -------
        list of dict
            One dict per feature, in column order: ``index``, ``name``, ``body`` ("2B", "3B" or "NB"),
            ``channel`` (e.g. "O-Zn", "Zn-OZn", "Zn-O"), ``centre`` (centre element; None for 2B, whose
            unordered pair channel is filled by both elements), ``neighbours`` (tuple of neighbour
            elements: the 2B pair, the 3B neighbour pair, the NB neighbour), ``a`` (Å⁻²), ``b`` (Å),
            ``l`` (3B only, else None) and ``m`` (NB only, else None). ``pandas.DataFrame(d.channels())``
            gives a table.
        """
        return [dict(r) for r in self._table]

    def centre_mask(self, element) -> np.ndarray:
        """The columns an atom of ``element`` can fill.

        Parameters
        ----------
        element : str or int
            Element symbol or atomic number.

        Returns
        -------
        numpy.ndarray, shape (n_features,), bool
            True for the 2B pairs containing it and the 3B and NB channels centred on it; every other
            column of its row is exactly zero.
        """
        sym = _symbol(element)
        return np.array([(r["centre"] == sym) if r["centre"] is not None else (sym in r["neighbours"])
                         for r in self._table])

    def to_dict(self) -> dict:
        """Parameters as JSON-serialisable values, ``{"kind": "PLIP", ...}``; see
        :func:`~mliplib.descriptors.base.descriptor_from_dict`."""
        r_short = None
        if self.r_short is not None:
            r_short = {}
            for s, t in sorted(self.r_short):
                if f"{t}-{s}" not in r_short:
                    r_short[f"{s}-{t}"] = self.r_short[(s, t)]
        return {"kind": "PLIP", "species": self.species, "cutoff": self.cutoff, "a": self.a.tolist(),
                "b": self.b.tolist(), "l_max": self.l_max, "m_max": self.m_max, "r_short": r_short,
                "two_body": self.two_body, "three_body": self.three_body, "many_body": self.many_body}

    def __repr__(self) -> str:
        blocks = "+".join(name for name, on in (("2B", self.two_body), ("3B", self.three_body),
                                                ("NB", self.many_body)) if on)
        return (f"PLIP(species={self.species}, cutoff={self.cutoff}, {blocks}, n_basis={self.n_basis}, "
                f"l_max={self.l_max}, m_max={self.m_max}, n_features={self.n_features})")

    @classmethod
    def default_zno(cls, **overrides) -> PLIP:
        """The ZnO pool of the book: 27 Gaussians × 55 channel/power combinations = 1485 features.

        - cutoff 6 Å: wurtzite's third Zn–O and the second/third like-pair shells (≈ 3.2–4.6 Å) plus the
          start of the next ones; beyond that the linear PLIP models gain little (Kandy et al. 2023 use
          R_c of this order).
        - a = 0.5, 1.0, 2.0 Å⁻² (Gaussian standard deviations ≈ 1.0, 0.71, 0.5 Å): broad to narrow,
          matched to the 0.5 Å grid of b so neighbouring Gaussians overlap.
        - b = 1.5, 2.0, …, 5.5 Å: from below the shortest Zn–O bonds of compressed/high-pressure phases
          (≈ 1.8–2.2 Å, rocksalt 2.17 Å) to the cutoff region; a Gaussian centred at 6 Å would be
          killed by fc.
        - l = 0 … 5 and m = 4 … 7 as in PLIP.
        - R_short: Zn–O 2.3 Å (switch 2.19–2.42 Å) lies between the first Zn–O shell (1.98–2.0 Å in
          wurtzite, 2.17 Å in rocksalt) and the next Zn–O distance (≈ 3.3 Å), so the Zn–O NB densities
          count the neighbours beyond the bonded shell; Zn–Zn and O–O 3.5 Å (switch 3.33–3.68 Å) lie
          just past the first like-pair shell (≈ 3.2–3.3 Å wurtzite, 3.06 Å rocksalt).

        Parameters
        ----------
        **overrides
            Replace any constructor argument.

        Returns
        -------
        PLIP
        """
        params = {"species": ["Zn", "O"], "cutoff": 6.0, "a": (0.5, 1.0, 2.0),
                      "b": tuple(np.round(np.arange(1.5, 5.51, 0.5), 10)), "l_max": 5, "m_max": 7,
                      "r_short": {("Zn", "O"): 2.3, ("Zn", "Zn"): 3.5, ("O", "O"): 3.5}}
        params.update(overrides)
        return cls(**params)

    # ---- evaluation ---------------------------------------------------------------------------

    def _evaluate(self, mode, species, offsets, j, vectors, dE_dG, G, grad, gpair):
        n_chunks = max(1, min(len(species), 8 * get_num_threads()))
        _plip_kernel(offsets, j, vectors, species, self._params, mode, dE_dG, G, grad, gpair, n_chunks)
