"""Vibrational spectra: VDOS from MD velocities (VACF + window + FFT), harmonic phonon DOS via phonopy
with any ASE calculator (or precomputed forces), and an overlap score between two spectra.

Frequencies are ordinary frequencies ν in THz (not angular); :func:`thz_to_cm1` converts to cm⁻¹.
Spectra are normalised to unit area, ∫ g(ν) dν = 1 (ν in THz).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from scipy.signal import find_peaks, get_window

__all__ = [
    "THZ_TO_CM1",
    "VDOS",
    "PhononDOS",
    "harmonic_vdos",
    "mean_frequency",
    "peak_shifts",
    "phonon_displacements",
    "phonon_dos",
    "phonon_dos_from_forces",
    "phonon_dos_on_mesh",
    "spectrum_overlap",
    "spectrum_peaks",
    "thz_to_cm1",
    "vdos",
    "velocity_autocorrelation",
    "zone_centre_modes",
]

#: 1 THz in cm⁻¹ (1e12 / c, c = 2.99792458e10 cm/s).
THZ_TO_CM1 = 33.35640951981521


def thz_to_cm1(frequencies):
    """Frequencies to wavenumbers.

    Parameters
    ----------
    frequencies : array_like
        Frequencies ν (THz).

    Returns
    -------
    numpy.ndarray
        Wavenumbers (cm⁻¹), the shape of ``frequencies``.
    """
    return np.asarray(frequencies, float) * THZ_TO_CM1


def _velocities_and_masses(trajectory, masses):
    """(n_frames, n_atoms, 3) velocities and (n_atoms,) weights (ones if unweighted)."""
    if len(trajectory) and isinstance(trajectory[0], Atoms):
        v = np.array([a.get_velocities() for a in trajectory])
        if masses is True:
            masses = trajectory[0].get_masses()
    else:
        v = np.asarray(trajectory, float)
        if masses is True:
            raise ValueError("masses=True needs a list of Atoms; give the masses (amu) as an array instead")
    if v.ndim != 3 or v.shape[2] != 3:
        raise ValueError(f"velocities must have shape (n_frames, n_atoms, 3), got {v.shape}")
    if v.shape[0] < 4:
        raise ValueError(f"need at least 4 frames of velocities, got {v.shape[0]}")
    if not np.all(np.isfinite(v)):
        raise ValueError("velocities contain NaN or infinite values")
    if masses is None or masses is False:
        w = np.ones(v.shape[1])
    else:
        w = np.asarray(masses, float).ravel()
        if w.shape != (v.shape[1],) or np.any(w <= 0):
            raise ValueError(f"masses must be {v.shape[1]} positive numbers (amu), got shape {w.shape}")
    return v, w


def velocity_autocorrelation(velocities, max_lag: int | None = None, masses=None,
                             normalize: bool = True) -> np.ndarray:
    """C(τ) = ⟨Σ_i w_i v_i(t)·v_i(t+τ)⟩_t for τ = 0 … max_lag (frames), averaged over all time origins.

    velocities: (n_frames, n_atoms, 3) array (any unit) or a list of Atoms; masses: None (w = 1), an
    (n_atoms,) array in amu, or True (the Atoms' masses), giving the kinetic-energy-weighted VACF.
    max_lag: default n_frames // 2. normalize: divide by C(0). Computed by FFT (zero-padded, so no
    wrap-around).

    Parameters
    ----------
    velocities : array_like, shape (n_frames, n_atoms, 3), or list of ase.Atoms
        Velocities (any unit) or frames with velocities.
    max_lag : int, optional
        Largest lag (frames), default n_frames // 2.
    masses : None, True or array_like, shape (n_atoms,)
        Weights: None (1), the Atoms' masses (True) or masses in amu.
    normalize : bool
        Divide by C(0).

    Returns
    -------
    numpy.ndarray, shape (max_lag + 1,)
    """
    v, w = _velocities_and_masses(velocities, masses)
    n = v.shape[0]
    max_lag = n // 2 if max_lag is None else int(max_lag)
    if not 1 <= max_lag < n:
        raise ValueError(f"max_lag must be in [1, {n - 1}] frames, got {max_lag}")
    x = v.reshape(n, -1) * np.repeat(np.sqrt(w), 3)[None, :]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size, axis=0)
    acf = np.fft.irfft(np.sum(np.abs(spectrum) ** 2, axis=1), size)[:max_lag + 1]
    acf /= (n - np.arange(max_lag + 1))
    if normalize:
        if not acf[0] > 0:
            raise ValueError("all velocities are zero: the autocorrelation cannot be normalised")
        acf = acf / acf[0]
    return acf


@dataclasses.dataclass
class VDOS:
    """frequencies (n,) THz from 0 to the Nyquist frequency; dos (n,) 1/THz, ∫ dos dν = 1;
    vacf: the windowed, normalised autocorrelation that was transformed."""

    frequencies: np.ndarray
    dos: np.ndarray
    vacf: np.ndarray

    @property
    def wavenumbers(self) -> np.ndarray:
        """Frequencies in cm⁻¹."""
        return thz_to_cm1(self.frequencies)


def vdos(trajectory_velocities, timestep_fs: float, masses=None, window: str | None = "hann",
         max_lag: int | None = None) -> VDOS:
    """Vibrational density of states from velocities sampled every ``timestep_fs`` fs.

    The VACF (see :func:`velocity_autocorrelation`; ``masses`` for mass weighting) up to ``max_lag`` frames
    (default n_frames // 2; the resolution is 1 / (2 max_lag · timestep)) is multiplied by the right half
    of a symmetric ``window`` ("hann", "hamming", "blackman", … any scipy window name, or None), mirrored
    to negative lags and Fourier transformed. Small negative values left by the windowing are set to 0,
    then the spectrum is normalised to unit area over ν ≥ 0.

    Parameters
    ----------
    trajectory_velocities : array_like, shape (n_frames, n_atoms, 3), or list of ase.Atoms
        Velocities or frames with velocities.
    timestep_fs : float
        Sampling interval (fs).
    masses : None, True or array_like
        Weights, as in :func:`velocity_autocorrelation`.
    window : str or None
        scipy window name.
    max_lag : int, optional
        Largest lag (frames).

    Returns
    -------
    VDOS
        Frequencies (THz) from 0 to the Nyquist frequency and the normalised spectrum (1/THz).
    """
    if not timestep_fs > 0:
        raise ValueError(f"timestep_fs must be positive, got {timestep_fs}")
    acf = velocity_autocorrelation(trajectory_velocities, max_lag=max_lag, masses=masses)
    return _spectrum_of_acf(acf, timestep_fs, window)


def _spectrum_of_acf(acf: np.ndarray, timestep_fs: float, window) -> VDOS:
    """Window, mirror, Fourier transform and normalise an autocorrelation sampled every timestep_fs."""
    lags = len(acf) - 1
    if window not in (None, "none", "boxcar"):
        try:
            acf = acf * get_window(window, 2 * lags + 1, fftbins=False)[lags:]
        except ValueError as error:
            raise ValueError(f"unknown window {window!r}: {error}") from None
    mirrored = np.concatenate([acf, acf[-2:0:-1]])  # lags 0 … L, then −(L−1) … −1
    spectrum = np.clip(np.fft.rfft(mirrored).real, 0.0, None)
    frequencies = np.fft.rfftfreq(len(mirrored), d=timestep_fs * 1e-3)  # 1/ps = THz
    area = np.trapezoid(spectrum, frequencies)
    return VDOS(frequencies, spectrum / area if area > 0 else spectrum, acf)


# ---------------------------------------------------------------------------------------------- phonons

@dataclasses.dataclass
class PhononDOS:
    """Harmonic phonon DOS: frequencies (n,) THz; dos (n,) 1/THz, ∫ dos dν = 1 (multiply by
    ``n_modes`` for states per primitive cell); min/max_frequency (THz) over the q mesh (negative:
    imaginary modes, a dynamical instability); phonopy: the :class:`phonopy.Phonopy` object (force
    constants, band structures). No non-analytic (LO–TO) correction is applied."""

    frequencies: np.ndarray
    dos: np.ndarray
    min_frequency: float
    max_frequency: float
    n_modes: int
    phonopy: object


def _supercell_matrix(supercell) -> np.ndarray:
    m = np.asarray(supercell, dtype=int)
    if m.ndim == 0:
        m = np.eye(3, dtype=int) * int(m)
    elif m.shape == (3,):
        m = np.diag(m)
    if m.shape != (3, 3) or round(abs(np.linalg.det(m))) < 1:
        raise ValueError(f"supercell must be an integer, 3 integers or a 3×3 integer matrix with det ≥ 1, "
                         f"got {supercell!r}")
    return m


def _phonopy(atoms: Atoms, supercell, displacement: float, symprec: float):
    # phonopy is an optional dependency (the book, test and dft extras): only the phonon functions need it
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    if not (np.all(atoms.pbc) and atoms.cell.rank == 3):
        raise ValueError("phonons need a bulk cell periodic along x, y and z")
    if not displacement > 0:
        raise ValueError(f"displacement must be positive (Å), got {displacement}")
    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell.array,
                        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())
    phonon = Phonopy(unit, supercell_matrix=_supercell_matrix(supercell), primitive_matrix="auto",
                     symprec=symprec)
    phonon.generate_displacements(distance=displacement)
    return phonon


def _to_ase(cell) -> Atoms:
    return Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)


def phonon_displacements(atoms: Atoms, supercell, displacement: float = 0.01,
                         symprec: float = 1e-5) -> list[Atoms]:
    """phonopy's symmetry-reduced displaced supercells of ``atoms``, in phonopy's order — the structures
    on which forces are needed by :func:`phonon_dos_from_forces`.

    Parameters
    ----------
    atoms : ase.Atoms
        The (relaxed) bulk cell.
    supercell : int, 3 ints or (3, 3) ints
        Supercell of the finite displacements.
    displacement : float
        Displacement length (Å).
    symprec : float
        phonopy's symmetry tolerance.

    Returns
    -------
    list of ase.Atoms
        The displaced supercells.
    """
    phonon = _phonopy(atoms, supercell, displacement, symprec)
    return [_to_ase(cell) for cell in phonon.supercells_with_displacements]


def _dos(phonon, mesh, sigma, freq_pitch) -> PhononDOS:
    phonon.run_mesh(mesh, is_gamma_center=True)
    freqs = phonon.mesh.frequencies
    phonon.run_total_dos(sigma=sigma, freq_pitch=freq_pitch)
    total = phonon.total_dos
    f, g = np.asarray(total.frequency_points), np.clip(np.asarray(total.dos), 0.0, None)
    area = np.trapezoid(g, f)
    return PhononDOS(f, g / area if area > 0 else g, float(freqs.min()), float(freqs.max()),
                     int(freqs.shape[1]), phonon)


def _match_forces(phonon, frames: Sequence[Atoms], tol: float = 1e-4) -> list[np.ndarray]:
    """Forces of the frames whose positions equal each of phonopy's displaced supercells (any order)."""
    forces = []
    for k, cell in enumerate(phonon.supercells_with_displacements):
        ref = np.asarray(cell.scaled_positions)
        found = None
        for frame in frames:
            if len(frame) != len(ref):
                continue
            d = frame.get_scaled_positions(wrap=False) - ref
            d -= np.round(d)
            if np.max(np.abs(d @ np.asarray(cell.cell))) < tol:
                found = frame
                break
        if found is None:
            raise ValueError(f"no frame matches phonopy's displaced supercell {k} (supercell matrix, "
                             f"displacement or symprec differ from those used to make the data?)")
        forces.append(np.array(found.arrays["forces"] if "forces" in found.arrays else found.get_forces(), float))
    return forces


def phonon_dos_from_forces(atoms: Atoms, supercell, displacements_forces, displacement: float = 0.01,
                           mesh=(20, 20, 20), sigma: float | None = None, freq_pitch: float = 0.05,
                           symprec: float = 1e-5) -> PhononDOS:
    """Phonon DOS from forces already computed on :func:`phonon_displacements` (same ``atoms``,
    ``supercell``, ``displacement``, ``symprec``).

    displacements_forces: one (n_supercell, 3) array (eV/Å) per displaced supercell in phonopy's order,
    or Atoms frames with forces (``arrays["forces"]`` or a calculator), matched to the displacements by
    their positions. mesh: q mesh; sigma: Gaussian smearing (THz), None = tetrahedron method;
    freq_pitch: DOS grid spacing (THz). The q mesh is Γ-centred.

    Parameters
    ----------
    atoms : ase.Atoms
        The bulk cell the displacements were made for.
    supercell : int, 3 ints or (3, 3) ints
        Supercell of the displacements.
    displacements_forces : sequence
        Force arrays (n_supercell, 3) in eV/Å, or frames with forces.
    displacement : float
        Displacement length (Å).
    mesh : 3 ints
        q mesh.
    sigma : float, optional
        Gaussian smearing (THz).
    freq_pitch : float
        DOS grid spacing (THz).
    symprec : float
        phonopy's symmetry tolerance.

    Returns
    -------
    PhononDOS
    """
    phonon = _phonopy(atoms, supercell, displacement, symprec)
    n_disp = len(phonon.supercells_with_displacements)
    items = list(displacements_forces)
    if items and isinstance(items[0], Atoms):
        forces = _match_forces(phonon, items)
    else:
        forces = [np.asarray(f, float) for f in items]
    n_sc = len(phonon.supercell)
    if len(forces) != n_disp or any(f.shape != (n_sc, 3) for f in forces):
        raise ValueError(f"expected {n_disp} force arrays of shape ({n_sc}, 3), got {len(forces)} with shapes "
                         f"{sorted({f.shape for f in forces})}")
    if not all(np.all(np.isfinite(f)) for f in forces):
        raise ValueError("forces contain NaN or infinite values")
    phonon.forces = np.array(forces)
    phonon.produce_force_constants(show_drift=False)
    return _dos(phonon, mesh, sigma, freq_pitch)


def phonon_dos(atoms: Atoms, calc, supercell, displacement: float = 0.01, mesh=(20, 20, 20),
               sigma: float | None = None, freq_pitch: float = 0.05, symprec: float = 1e-5) -> PhononDOS:
    """Harmonic phonon DOS of ``atoms`` (relax it first) by finite displacements in a supercell, forces
    from any ASE calculator.

    Parameters
    ----------
    atoms : ase.Atoms
        The bulk cell.
    calc : ase.calculators.calculator.Calculator
        Any ASE calculator.
    supercell : int, 3 ints or (3, 3) ints
        Supercell of the displacements.
    displacement : float
        Displacement length (Å).
    mesh, sigma, freq_pitch, symprec
        As in :func:`phonon_dos_from_forces`.

    Returns
    -------
    PhononDOS
    """
    forces = []
    for cell in phonon_displacements(atoms, supercell, displacement, symprec):
        cell.calc = calc
        forces.append(np.array(cell.get_forces()))
    return phonon_dos_from_forces(atoms, supercell, forces, displacement, mesh, sigma, freq_pitch, symprec)


def spectrum_overlap(frequencies, g1, g2, frequencies2=None) -> float:
    """Overlap of two spectra: S = 1 − ½ ∫ |ĝ1(ν) − ĝ2(ν)| dν, with ĝ = max(g, 0) / ∫ max(g, 0) dν.

    1 for identical shapes, 0 for spectra with disjoint support (½ × the L1 distance of two probability
    densities lies in [0, 1]). g2 may be given on its own grid ``frequencies2``; it is then linearly
    interpolated onto ``frequencies`` (zero outside its range). Trapezoidal integration; clipped to [0, 1].

    Parameters
    ----------
    frequencies : array_like, shape (n,)
        Strictly increasing grid (THz).
    g1, g2 : array_like, shape (n,) (g2: the shape of ``frequencies2`` if given)
        The spectra.
    frequencies2 : array_like, optional
        The grid of ``g2``.

    Returns
    -------
    float
        S in [0, 1].
    """
    f = np.asarray(frequencies, float)
    a = np.clip(np.asarray(g1, float), 0.0, None)
    b = np.clip(np.asarray(g2, float), 0.0, None)
    if frequencies2 is not None:
        f2 = np.asarray(frequencies2, float)
        if f2.shape != b.shape:
            raise ValueError(f"frequencies2 and g2 differ in shape ({f2.shape} vs {b.shape})")
        b = np.interp(f, f2, b, left=0.0, right=0.0)
    if not (f.shape == a.shape == b.shape) or f.ndim != 1 or len(f) < 2:
        raise ValueError(f"frequencies, g1 and g2 must be 1-D of equal length ≥ 2, got {f.shape}, {a.shape}, "
                         f"{b.shape}")
    if np.any(np.diff(f) <= 0):
        raise ValueError("frequencies must be strictly increasing")
    na, nb = np.trapezoid(a, f), np.trapezoid(b, f)
    if not (na > 0 and nb > 0):
        raise ValueError("a spectrum has zero area on this frequency grid")
    return float(np.clip(1.0 - 0.5 * np.trapezoid(np.abs(a / na - b / nb), f), 0.0, 1.0))


def phonon_dos_on_mesh(dos: PhononDOS, mesh, sigma: float | None = None, freq_pitch: float = 0.05) -> PhononDOS:
    """The DOS of the same force constants (``dos.phonopy``) on another Γ-centred q ``mesh`` (3 ints).

    With ``mesh`` equal to the repetitions of an MD supercell this is the harmonic DOS of exactly the q
    points that the MD cell can hold, the fair reference for its VDOS. sigma: Gaussian smearing (THz; None =
    tetrahedron method, which needs a finer mesh); freq_pitch: grid spacing (THz). The phonopy object is
    shared with ``dos`` (its mesh is replaced).

    Parameters
    ----------
    dos : PhononDOS
        A DOS with its phonopy object.
    mesh : 3 ints
        The q mesh.
    sigma : float, optional
        Gaussian smearing (THz).
    freq_pitch : float
        DOS grid spacing (THz).

    Returns
    -------
    PhononDOS
    """
    m = np.asarray(mesh, dtype=int).ravel()
    if m.shape != (3,) or np.any(m < 1):
        raise ValueError(f"mesh must be 3 positive integers, got {mesh!r}")
    if dos.phonopy is None:
        raise ValueError("this PhononDOS carries no phonopy object (force constants)")
    return _dos(dos.phonopy, m.tolist(), sigma, freq_pitch)


def zone_centre_modes(dos: PhononDOS, degeneracy_tolerance: float = 1e-3) -> list[dict]:
    """Γ-point modes of the force constants in ``dos``, lowest first: one dict per degenerate set with
    ``label`` (irreducible representation from phonopy, e.g. "E2", "A1"; "acoustic" for the three zero
    modes, None where phonopy finds none), ``frequency`` (THz, mean of the set) and ``degeneracy``.

    Γ is commensurate with every supercell, so these frequencies are exact for the given forces whatever
    the supercell size (unlike the DOS). No LO–TO (non-analytic) correction: polar LO modes come out at
    their TO frequencies.

    Parameters
    ----------
    dos : PhononDOS
        A DOS with its phonopy object.
    degeneracy_tolerance : float
        Frequencies closer than this (THz) form one degenerate set.

    Returns
    -------
    list of dict
    """
    phonon = dos.phonopy
    if phonon is None:
        raise ValueError("this PhononDOS carries no phonopy object (force constants)")
    irreps = phonon.run_irreps([0.0, 0.0, 0.0], degeneracy_tolerance=degeneracy_tolerance) or phonon.irreps
    freqs = np.asarray(irreps.frequencies, float)
    labels = getattr(irreps, "_ir_labels", None) or [None] * len(irreps.band_indices)
    modes = []
    for label, band in zip(labels, irreps.band_indices):
        f = float(np.mean(freqs[list(band)]))
        if abs(f) < 0.05 and len(band) == 3:
            label = "acoustic"
        modes.append({"label": label, "frequency": f, "degeneracy": len(band)})
    return sorted(modes, key=lambda m: m["frequency"])


def spectrum_peaks(frequencies, dos, n: int | None = None, prominence: float = 0.05) -> np.ndarray:
    """Positions (THz, ascending) of the peaks of a spectrum: local maxima whose prominence is at least
    ``prominence`` × max(dos), refined to sub-grid accuracy by a parabola through the three highest
    points.

    Parameters
    ----------
    frequencies : array_like, shape (m,)
        Strictly increasing grid (THz).
    dos : array_like, shape (m,)
        The spectrum.
    n : int, optional
        Keep only the n most prominent peaks.
    prominence : float
        Smallest prominence, as a fraction of max(dos).

    Returns
    -------
    numpy.ndarray
        Peak positions (THz), ascending.
    """
    f = np.asarray(frequencies, float)
    g = np.asarray(dos, float)
    if f.ndim != 1 or f.shape != g.shape or len(f) < 3:
        raise ValueError(f"frequencies and dos must be 1-D of equal length ≥ 3, got {f.shape} and {g.shape}")
    if np.any(np.diff(f) <= 0):
        raise ValueError("frequencies must be strictly increasing")
    if not g.max() > 0:
        raise ValueError("the spectrum has no positive values")
    index, props = find_peaks(g, prominence=prominence * g.max())
    if n is not None:
        index = index[np.argsort(props["prominences"])[::-1][:int(n)]]
    peaks = []
    for k in np.sort(index):
        if 0 < k < len(f) - 1:
            x, y = f[k - 1:k + 2], g[k - 1:k + 2]
            c2, c1, _ = np.polyfit(x - f[k], y, 2)
            shift = -c1 / (2 * c2) if c2 < 0 else 0.0
            peaks.append(f[k] + float(np.clip(shift, x[0] - f[k], x[2] - f[k])))
        else:
            peaks.append(f[k])
    return np.array(peaks)


def peak_shifts(reference_peaks, peaks) -> np.ndarray:
    """For each reference peak, the shift to the nearest of ``peaks``.

    Parameters
    ----------
    reference_peaks : array_like, shape (m,)
        Peak positions (THz).
    peaks : array_like
        Peak positions (THz) to match (at least one).

    Returns
    -------
    numpy.ndarray, shape (m,)
        nearest − reference (THz).
    """
    ref = np.asarray(reference_peaks, float).ravel()
    other = np.asarray(peaks, float).ravel()
    if not len(other):
        raise ValueError("no peaks to compare with")
    nearest = other[np.argmin(np.abs(other[None, :] - ref[:, None]), axis=1)]
    return nearest - ref


def mean_frequency(frequencies, dos) -> float:
    """First moment ∫ ν g(ν) dν / ∫ g(ν) dν of a spectrum (negative g clipped to 0).

    Parameters
    ----------
    frequencies : array_like, shape (n,)
        Grid (THz).
    dos : array_like, shape (n,)
        The spectrum.

    Returns
    -------
    float
        Mean frequency (THz).
    """
    f = np.asarray(frequencies, float)
    g = np.clip(np.asarray(dos, float), 0.0, None)
    area = np.trapezoid(g, f)
    if not area > 0:
        raise ValueError("the spectrum has zero area")
    return float(np.trapezoid(f * g, f) / area)


def harmonic_vdos(dos: PhononDOS, mesh, timestep_fs: float, max_lag: int, window: str | None = "hann") -> VDOS:
    """The mass-weighted VDOS that classical MD of a perfectly harmonic crystal would give in a supercell
    of ``mesh`` repetitions, computed through the same window and FFT as :func:`vdos`.

    In a harmonic crystal at equilibrium every normal mode carries the same mean kinetic energy, so the
    mass-weighted VACF is C(τ) ∝ Σ_modes cos(2π ν τ), summed over the q points of the Γ-centred ``mesh``
    (those an MD cell of that size holds) with their weights; the three Γ acoustic modes (zero
    frequency, removed with the total momentum) are left out. Any difference between this and
    ``vdos(md_frames, timestep_fs, masses=True, max_lag=max_lag, window=window)`` is then anharmonicity or
    statistical noise, not resolution, windowing or q sampling.

    Parameters
    ----------
    dos : PhononDOS
        A DOS with its phonopy object (force constants).
    mesh : 3 ints
        Repetitions of the MD supercell.
    timestep_fs : float
        Sampling interval of the MD frames (fs).
    max_lag : int
        Largest lag (frames).
    window : str or None
        As in :func:`vdos`.

    Returns
    -------
    VDOS
    """
    if not timestep_fs > 0:
        raise ValueError(f"timestep_fs must be positive, got {timestep_fs}")
    if int(max_lag) < 1:
        raise ValueError(f"max_lag must be ≥ 1 frame, got {max_lag}")
    m = np.asarray(mesh, dtype=int).ravel()
    if m.shape != (3,) or np.any(m < 1):
        raise ValueError(f"mesh must be 3 positive integers, got {mesh!r}")
    if dos.phonopy is None:
        raise ValueError("this PhononDOS carries no phonopy object (force constants)")
    phonon = dos.phonopy
    phonon.run_mesh(m.tolist(), is_gamma_center=True)
    nu = np.asarray(phonon.mesh.frequencies, float)            # (n_q, n_modes) THz
    weights = np.asarray(phonon.mesh.weights, float)[:, None] * np.ones_like(nu)
    gamma = np.all(np.abs(np.asarray(phonon.mesh.qpoints)) < 1e-9, axis=1)
    acoustic = np.zeros_like(nu, dtype=bool)
    acoustic[gamma, :3] = True                                 # frequencies are sorted: the 3 lowest at Γ
    nu, weights = nu[~acoustic], weights[~acoustic]
    t = np.arange(int(max_lag) + 1) * timestep_fs * 1e-3       # ps
    acf = np.cos(2 * np.pi * np.outer(t, nu)) @ weights / weights.sum()
    return _spectrum_of_acf(acf, timestep_fs, window)
