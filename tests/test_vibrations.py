"""Tests of the spectrum helpers in mliplib.properties.vibrations (peaks, shifts, moments, Γ modes, mesh DOS)."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mliplib.properties import (harmonic_vdos, mean_frequency, peak_shifts, phonon_dos, phonon_dos_on_mesh, relax,
                                spectrum_overlap, spectrum_peaks, zone_centre_modes)


def gaussians(f, centres, heights, width=0.3):
    return sum(h * np.exp(-0.5 * ((f - c) / width) ** 2) for c, h in zip(centres, heights))


def test_spectrum_peaks_sub_grid_positions_and_prominence():
    f = np.arange(0.0, 12.0, 0.1)  # coarse grid: the parabola must recover the off-grid centres
    g = gaussians(f, [3.04, 7.23, 9.87], [1.0, 0.6, 0.02])
    peaks = spectrum_peaks(f, g)
    assert peaks == pytest.approx([3.04, 7.23], abs=0.01)  # the 2 % bump is below the 5 % prominence
    assert spectrum_peaks(f, g, prominence=0.01) == pytest.approx([3.04, 7.23, 9.87], abs=0.01)
    assert spectrum_peaks(f, g, n=1) == pytest.approx([3.04], abs=0.01)  # the most prominent
    with pytest.raises(ValueError, match="increasing"):
        spectrum_peaks(f[::-1], g)
    with pytest.raises(ValueError, match="positive"):
        spectrum_peaks(f, -g)


def test_peak_shifts_nearest_peak_and_mean_frequency():
    assert peak_shifts([3.0, 7.0], [2.9, 7.25, 12.0]) == pytest.approx([-0.1, 0.25])
    with pytest.raises(ValueError, match="no peaks"):
        peak_shifts([3.0], [])
    f = np.linspace(0, 10, 2001)
    assert mean_frequency(f, gaussians(f, [4.0], [1.0])) == pytest.approx(4.0, abs=1e-6)
    assert mean_frequency(f, gaussians(f, [2.0, 6.0], [1.0, 3.0])) == pytest.approx(5.0, abs=1e-6)
    with pytest.raises(ValueError, match="zero area"):
        mean_frequency(f, np.zeros_like(f))


@pytest.fixture(scope="module")
def hcp_copper_dos():
    """EMT hcp copper (2 atoms, P6₃/mmc): Γ has the 3 acoustic modes, one E2g pair and one B1g mode."""
    atoms, log = relax(bulk("Cu", "hcp", a=2.55, c=4.16), EMT(), fmax=1e-4)
    assert log.converged
    return phonon_dos(atoms, EMT(), (3, 3, 2), mesh=(8, 8, 8), sigma=0.1)


def test_zone_centre_modes_of_hcp_copper(hcp_copper_dos):
    modes = zone_centre_modes(hcp_copper_dos)
    assert [m["label"] for m in modes] == ["acoustic", "E2g", "B1g"]
    assert [m["degeneracy"] for m in modes] == [3, 2, 1]
    assert abs(modes[0]["frequency"]) < 1e-3 and 0 < modes[1]["frequency"] < modes[2]["frequency"]
    # Γ is on every mesh: the mesh's largest frequency is at least the largest Γ frequency
    assert hcp_copper_dos.max_frequency >= modes[-1]["frequency"] - 1e-6


def test_phonon_dos_on_mesh_reuses_the_force_constants(hcp_copper_dos):
    again = phonon_dos_on_mesh(hcp_copper_dos, (8, 8, 8), sigma=0.1)
    assert np.allclose(again.frequencies, hcp_copper_dos.frequencies) and np.allclose(again.dos, hcp_copper_dos.dos)
    coarse = phonon_dos_on_mesh(hcp_copper_dos, (3, 3, 2), sigma=0.3)  # the q points of a 3×3×2 MD cell
    assert np.trapezoid(coarse.dos, coarse.frequencies) == pytest.approx(1.0)
    gamma_max = max(m["frequency"] for m in zone_centre_modes(hcp_copper_dos))
    assert coarse.max_frequency >= gamma_max - 1e-6  # Γ is on the coarse mesh too
    assert 0.7 < spectrum_overlap(hcp_copper_dos.frequencies, hcp_copper_dos.dos, coarse.dos,
                                  frequencies2=coarse.frequencies) < 1.0
    with pytest.raises(ValueError, match="3 positive integers"):
        phonon_dos_on_mesh(hcp_copper_dos, (3, 0, 2))


def test_harmonic_vdos_matches_low_temperature_md(hcp_copper_dos):
    """At 10 K EMT copper is harmonic: MD in a 3×3×2 cell gives the VDOS that harmonic_vdos predicts.

    In a harmonic crystal NVE never shares energy between modes, so one run's peak heights depend on its
    random initial velocities: average a few runs."""
    from ase import Atoms

    from mliplib.md import run_md
    from mliplib.properties import vdos
    unit = hcp_copper_dos.phonopy.unitcell
    atoms = Atoms(unit.symbols, cell=unit.cell, scaled_positions=unit.scaled_positions, pbc=True).repeat((3, 3, 2))
    measured = 0.0
    for seed in (4, 5, 6):
        md = run_md(atoms, EMT(), 10.0, 1000, timestep_fs=4.0, ensemble="nve", interval=1, progress=False,
                    seed=seed, init_velocities=True)
        assert md.ok, md.summary()
        one = vdos(md.frames, timestep_fs=4.0, masses=True, max_lag=400)
        measured = measured + one.dos / 3
    expected = harmonic_vdos(hcp_copper_dos, (3, 3, 2), timestep_fs=4.0, max_lag=400)
    f = expected.frequencies
    assert np.allclose(one.frequencies, f)
    assert np.trapezoid(expected.dos, f) == pytest.approx(1.0)
    assert spectrum_overlap(f, expected.dos, measured) > 0.85
    assert mean_frequency(f, measured) == pytest.approx(mean_frequency(f, expected.dos), rel=0.03)
    top = spectrum_peaks(f, expected.dos)[-1]  # the highest-frequency peak (resolution 0.31 THz)
    assert abs(peak_shifts([top], spectrum_peaks(f, measured))[0]) < 0.15
    with pytest.raises(ValueError, match="max_lag"):
        harmonic_vdos(hcp_copper_dos, (3, 3, 2), 4.0, 0)
