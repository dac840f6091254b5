"""Tests of mliplib.properties against exact or analytic results, with real ASE calculators."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, fcc100
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from scipy.spatial.transform import Rotation
from threadpoolctl import threadpool_limits

from mliplib.builders import in_box, supercell_of
from mliplib.md import run_md
from mliplib.properties import (
    BondAngles,
    aligned_rmsd,
    birch_murnaghan,
    bond_angle_distribution,
    bulk_summary,
    compare_structures,
    coordination_histogram,
    coordination_numbers,
    energy_volume_curve,
    fit_eos,
    format_table,
    lattice_parameters,
    phonon_displacements,
    phonon_dos,
    phonon_dos_from_forces,
    rdf,
    relax,
    relax_cluster,
    relaxed_surface_energy,
    shortest_distance,
    shortest_pair_distance,
    spectrum_overlap,
    surface_energy,
    vdos,
    velocity_autocorrelation,
)
from zno_book.structures import (
    POLYMORPHS,
    cage_cluster,
    nonpolar_slab,
    polymorph,
    ring_cluster,
    wurtzite_cluster,
)

ZN_O = {("Zn", "O"): 2.5}  # Zn–O bonds


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """3×3 LAPACK calls in FrechetCellFilter are ~10× slower with threaded BLAS on a busy machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class Harmonic(Calculator):
    """Einstein crystal: every atom tethered to its reference site, E = ½ k Σ |r − r0|² (k in eV/Å²)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, reference, k):
        super().__init__()
        self.reference, self.k = np.array(reference, float), float(k)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions - self.reference
        self.results = {"energy": 0.5 * self.k * np.sum(d ** 2), "forces": -self.k * d}


def lj_shift(sigma, epsilon, rc):
    return 4 * epsilon * ((sigma / rc) ** 12 - (sigma / rc) ** 6)


# ------------------------------------------------------------------------------------------------- bulk

def test_fit_eos_recovers_birch_murnaghan_parameters():
    v = np.linspace(20.0, 29.0, 9)
    e = birch_murnaghan(v, -9.1, 24.2, 140.0 * units.GPa, 4.6)
    fit = fit_eos(v, e)
    assert fit.v0 == pytest.approx(24.2, rel=1e-6)
    assert fit.e0 == pytest.approx(-9.1, abs=1e-8)
    assert fit.b0 == pytest.approx(140.0, rel=1e-5)
    assert fit.b0_prime == pytest.approx(4.6, rel=1e-4)
    assert not fit.extrapolated and fit.rms < 1e-8
    assert np.allclose(fit.energy(v), e, atol=1e-8)
    with pytest.raises(ValueError, match="5 distinct"):
        fit_eos(v[:4], e[:4])
    with pytest.raises(ValueError, match="curvature"):
        fit_eos(v, -e)


def test_emt_copper_relax_matches_fine_scan():
    relaxed, log = relax(bulk("Cu", "fcc", a=3.70), EMT(), fmax=1e-4, cell=True)
    assert log.converged and log.failure is None
    assert log.energies[-1] < log.energies[0]
    a_relax = (4 * relaxed.get_volume()) ** (1 / 3)
    curve = energy_volume_curve(bulk("Cu", "fcc", a=3.59), EMT(), strains=np.linspace(-0.01, 0.01, 11),
                                relax_shape=False)
    a_scan = (4 * fit_eos(curve.volumes, curve.energies).v0) ** (1 / 3)
    assert a_scan == pytest.approx(3.59, abs=0.01)
    assert a_relax == pytest.approx(a_scan, abs=1e-3)
    assert relaxed.get_potential_energy() == pytest.approx(min(curve.energies), abs=1e-4)
    with pytest.raises(ValueError, match="periodic"):
        relax(ring_cluster(3), EMT(), cell=True)


def test_lattice_parameters_of_the_builders():
    for phase in POLYMORPHS:
        p = lattice_parameters(polymorph(phase))
        cell = polymorph(phase)
        assert p["volume"] == pytest.approx(cell.get_volume() / (len(cell) // 2))
    w = lattice_parameters(polymorph("wurtzite", a=3.25, c=5.2, u=0.381))
    assert (w["a"], w["c"], w["u"]) == pytest.approx((3.25, 5.2, 0.381))
    assert lattice_parameters(polymorph("hbn"))["u"] == pytest.approx(0.5)
    assert lattice_parameters(polymorph("bct", x=0.17))["u"] == pytest.approx(0.17)
    assert lattice_parameters(polymorph("rocksalt"))["a"] == pytest.approx(4.33)
    assert lattice_parameters(polymorph("zincblende", cubic=True))["a"] == pytest.approx(4.63)
    with pytest.raises(ValueError, match="phase"):
        lattice_parameters(bulk("Cu"))


def test_bulk_summary_same_numbers_from_calculator_and_from_frames():
    """The DFT path (stored frames with info['energy']) and the model path share the fitting code."""
    calc = LennardJones(sigma=1.75, epsilon=0.3, rc=3.6, smooth=True)
    phases = ("wurtzite", "rocksalt")
    strains = np.linspace(-0.03, 0.03, 5)
    rows = bulk_summary(calc=calc, structures={p: polymorph(p) for p in phases}, strains=strains, fmax=0.02,
                        steps=60)
    assert [r["phase"] for r in rows] == list(phases)
    assert rows[0]["de"] == 0.0
    frames = []
    for phase in phases:  # the same scan stored as "reference data"
        start, _ = relax(polymorph(phase), calc, fmax=0.02, cell=True, steps=240)
        for k, s in enumerate(energy_volume_curve(start, calc, strains, fmax=0.02, steps=60).structures):
            frame = s.copy()
            frame.info.update(energy=s.get_potential_energy(), phase=phase, task=f"eos/{phase}/{k}")
            frames.append(frame)
    stored = bulk_summary(frames=frames, phases=phases)
    for r, s in zip(rows, stored):
        for key in ("a", "c", "volume", "b0", "e0", "de"):
            assert r[key] == pytest.approx(s[key], rel=1e-6, abs=1e-9), key
        assert r["b0"] > 0 and r["volume"] > 0
    assert "phase" in format_table(rows, ["phase", "a", "c", "b0"])
    with pytest.raises(ValueError, match="exactly one"):
        bulk_summary()
    with pytest.raises(ValueError, match="starting cells"):
        bulk_summary(calc=calc)
    with pytest.raises(ValueError, match="no starting structure"):
        bulk_summary(calc=calc, structures={"wurtzite": polymorph("wurtzite")}, phases=phases)


# ---------------------------------------------------------------------------------------------- surfaces

def test_lj_fcc100_surface_energy_is_broken_bond_count():
    """Nearest-neighbour LJ (cutoff between 1st and 2nd shell, energy shifted to 0 at rc) at the LJ
    minimum: each (100) surface atom loses 4 of 12 bonds, bond energy e_b = −ε − V(rc), one surface atom
    per a²/2, so γ = −4 e_b / a² (eV/Å²)."""
    sigma, epsilon = 2.0, 0.4
    r_nn = 2 ** (1 / 6) * sigma
    a = r_nn * np.sqrt(2)
    rc = 0.5 * (r_nn + a)
    calc = LennardJones(sigma=sigma, epsilon=epsilon, rc=rc)
    e_bulk = bulk("Ar", "fcc", a=a)
    e_bulk.calc = calc
    e_per_atom = e_bulk.get_potential_energy()
    slab = fcc100("Ar", size=(2, 2, 5), a=a, vacuum=8.0)
    slab.calc = calc
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    gamma = surface_energy(slab.get_potential_energy(), len(slab), e_per_atom, area)
    e_b = -epsilon - lj_shift(sigma, epsilon, rc)
    assert e_per_atom == pytest.approx(6 * e_b)
    assert gamma == pytest.approx(-4 * e_b / a ** 2 * 16.02176634, rel=1e-10)
    with pytest.raises(ValueError):
        surface_energy(1.0, 2, 0.5, 0.0)


def test_relaxed_surface_energy_of_ideal_wurtzite_with_nearest_neighbour_lj():
    """Ideal tetrahedral wurtzite (c/a = √(8/3), u = 3/8: four equal bonds d = 3c/8) and an LJ pair
    potential with its minimum at d and a cutoff before the second shell: the unrelaxed γ is
    −e(d) Σ_i (4 − CN_i) / (4A), and all forces vanish so relaxing changes nothing."""
    a = 3.25
    c, u = a * np.sqrt(8 / 3), 0.375
    d = u * c
    sigma, epsilon, rc = d / 2 ** (1 / 6), 0.5, 2.6
    calc = LennardJones(sigma=sigma, epsilon=epsilon, rc=rc)
    result = relaxed_surface_energy(calc, nonpolar_slab("10-10", 4, 6.0, a, c, u), polymorph("wurtzite", a=a, c=c, u=u),
                                    fmax=0.01)
    missing = np.sum(4 - coordination_numbers(result.slab, rc))
    assert missing == 4  # one dangling bond per surface Zn and O, two faces, one a × c cell
    assert result.area == pytest.approx(a * c)
    e_d = -epsilon - lj_shift(sigma, epsilon, rc)
    expected = -e_d * missing / (4 * result.area) * 16.02176634
    assert result.gamma_unrelaxed == pytest.approx(expected, rel=1e-9)
    assert result.gamma_relaxed == pytest.approx(result.gamma_unrelaxed, abs=1e-6)
    assert result.slab_log.converged and result.bulk_log.converged
    assert result.n_formula == 8
    strained = relaxed_surface_energy(calc, nonpolar_slab("11-20", 4, 6.0, a, 1.02 * c, 0.36),
                                      polymorph("wurtzite", a=a, c=1.02 * c, u=0.36), fmax=0.01)
    assert strained.slab_log.steps > 0 and strained.slab_log.converged
    assert 0 < strained.gamma_relaxed < strained.gamma_unrelaxed


# -------------------------------------------------------------------------------------------- vibrations

def test_vdos_of_einstein_crystal_peaks_at_its_frequency():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    nu = 6.0  # THz
    k = atoms.get_masses()[0] * (2 * np.pi * nu * 1e-3 / units.fs) ** 2  # eV/Å²: ω² m, ω in 1/ASE-time
    result = run_md(atoms, Harmonic(atoms.positions, k), 300, 2000, timestep_fs=1.0, ensemble="nve", interval=1,
                    progress=False, seed=3)
    assert result.ok, result.summary()
    spectrum = vdos(result.frames, timestep_fs=1.0, max_lag=1000)
    width = spectrum.frequencies[1] - spectrum.frequencies[0]
    assert width == pytest.approx(0.5)
    assert abs(spectrum.frequencies[np.argmax(spectrum.dos)] - nu) <= width
    assert np.trapezoid(spectrum.dos, spectrum.frequencies) == pytest.approx(1.0)
    assert spectrum.wavenumbers[np.argmax(spectrum.dos)] == pytest.approx(nu * 33.356, abs=20)
    weighted = vdos(result.frames, timestep_fs=1.0, masses=True, window="blackman")
    assert abs(weighted.frequencies[np.argmax(weighted.dos)] - nu) <= weighted.frequencies[1]
    vacf = velocity_autocorrelation(np.array([f.get_velocities() for f in result.frames]), max_lag=200)
    assert vacf[0] == pytest.approx(1.0) and vacf.min() < -0.5  # oscillates
    with pytest.raises(ValueError, match="shape"):
        vdos(np.zeros((10, 3)), 1.0)


def test_phonon_dos_emt_copper_from_calculator_and_from_forces():
    atoms = bulk("Cu", "fcc", a=3.59)
    dos = phonon_dos(atoms, EMT(), supercell=3, mesh=(10, 10, 10))
    assert np.all(dos.dos >= 0) and np.trapezoid(dos.dos, dos.frequencies) == pytest.approx(1.0)
    assert 6.0 < dos.max_frequency < 10.0  # Cu: ≈ 7.3 THz measured
    assert dos.min_frequency > -1e-3 and dos.n_modes == 3
    frames = []
    for cell in phonon_displacements(atoms, 3):
        cell.calc = EMT()
        cell.arrays["forces"] = cell.get_forces()
        cell.calc = None
        frames.append(cell)
    again = phonon_dos_from_forces(atoms, 3, frames[::-1], mesh=(10, 10, 10))
    assert np.allclose(again.dos, dos.dos) and np.allclose(again.frequencies, dos.frequencies)
    assert spectrum_overlap(dos.frequencies, dos.dos, again.dos) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="force arrays"):
        phonon_dos_from_forces(atoms, 3, [np.zeros((5, 3))])


def test_spectrum_overlap_limits():
    f = np.linspace(0, 10, 1001)
    g1 = np.exp(-(f - 3) ** 2 / 0.1)
    g2 = np.exp(-(f - 7) ** 2 / 0.1)
    assert spectrum_overlap(f, g1, 5 * g1) == pytest.approx(1.0)
    assert spectrum_overlap(f, g1, g2) == pytest.approx(0.0, abs=1e-6)
    half = spectrum_overlap(f, g1, g1 + g2)  # ĝ2 = (g1 + g2)/2 → ½∫|ĝ1 − ĝ2| = ½
    assert half == pytest.approx(0.5, abs=1e-6)
    f2 = np.linspace(0, 10, 301)
    assert spectrum_overlap(f, g1, np.exp(-(f2 - 3) ** 2 / 0.1), frequencies2=f2) == pytest.approx(1.0, abs=2e-3)


# --------------------------------------------------------------------------------------------- structure

def test_rdf_of_ideal_gas_is_one():
    rng = np.random.default_rng(7)
    length, n = 18.0, 400
    frames = [Atoms("Ar200Ne200", positions=rng.uniform(0, length, (n, 3)), cell=[length] * 3, pbc=True)
              for _ in range(5)]
    result = rdf(frames, r_max=8.0, n_bins=32)
    assert result.normalisation == "ideal-gas" and result.n_frames == 5
    shell = 4 / 3 * np.pi * (result.edges[1:] ** 3 - result.edges[:-1] ** 3)
    for pair, (na, nb) in {("Ar", "Ar"): (200, 199), ("Ar", "Ne"): (200, 200), "total": (n, n - 1)}.items():
        expected = 5 * na * nb / length ** 3 * shell  # counts per bin
        use = expected > 50
        z = (result[pair][use] - 1) * np.sqrt(expected[use])
        assert np.all(np.abs(z) < 5), pair
        assert np.average(result[pair][use], weights=expected[use]) == pytest.approx(1.0, abs=0.01)
    assert np.allclose(result[("Ne", "Ar")], result[("Ar", "Ne")])


def test_rdf_coordination_and_angles_of_wurtzite():
    a, c, u = 3.25, 5.21, 0.382
    atoms = supercell_of(polymorph("wurtzite", a=a, c=c, u=u), (4, 4, 3))
    result = rdf(atoms, r_max=5.0, n_bins=250)
    d_basal = np.sqrt(a ** 2 / 3 + ((0.5 - u) * c) ** 2)
    assert abs(result.first_peak(("Zn", "O")) - 0.5 * (d_basal + u * c)) < 0.03  # ≈ 1.98–1.99 Å
    zn_zn = np.sqrt(a ** 2 / 3 + c ** 2 / 4)  # nearest Zn–Zn (and O–O), out of plane, ≈ 3.2 Å
    for pair in (("Zn", "Zn"), ("O", "O")):
        first = result.r[np.flatnonzero(result[pair] > 0)[0]]
        assert abs(first - zn_zn) < 0.02 and abs(result.first_peak(pair) - zn_zn) < 0.1
    assert np.all(result[("Zn", "O")][result.r < 1.9] == 0)
    cn = coordination_numbers(atoms, {("Zn", "O"): 2.5})
    assert np.all(cn == 4)
    assert np.all(coordination_numbers(atoms, 2.5) == 4)
    angles = bond_angle_distribution(atoms, "Zn", "O", 2.5)
    assert isinstance(angles, BondAngles) and angles.n_triplets == 6 * len(atoms) // 2
    assert angles.mean() == pytest.approx(109.47, abs=0.5)
    assert np.all(angles.density[(angles.angles < 105) | (angles.angles > 114)] == 0)
    with pytest.raises(ValueError, match="symbol"):
        coordination_numbers(atoms, {("Zn", "Xx"): 2.5})
    # the first minimum of g_ZnO lies in the empty gap between the bonds (≤ 2.0 Å) and the next Zn–O shell
    minimum = result.first_minimum(("Zn", "O"))
    nearest = shortest_pair_distance(atoms, "Zn", "O")
    assert nearest == pytest.approx(min(d_basal, u * c)) and nearest < minimum < 3.2
    assert np.all(result[("Zn", "O")][(result.r > 2.05) & (result.r < minimum)] == 0)
    assert shortest_pair_distance([atoms, atoms], "Zn", "Zn") == pytest.approx(min(zn_zn, a))
    assert shortest_pair_distance(atoms, "Zn", "Zn", reach=3.0) == np.inf


def test_rdf_of_isolated_cluster_uses_given_density():
    cluster = in_box(cage_cluster(), 5.0)
    local = rdf(cluster, r_max=4.0, n_bins=40)
    assert local.normalisation == "density"
    scaled = rdf(cluster, r_max=4.0, n_bins=40, density=0.08)
    assert scaled.normalisation == "ideal-gas"
    assert local.first_peak(("O", "Zn")) == pytest.approx(1.95, abs=0.1)


def test_shortest_distance_periodic_images_and_isolated():
    fcc = bulk("Cu", "fcc", a=3.6)  # one atom: the shortest distance is to its own image, a/√2
    assert shortest_distance(fcc) == pytest.approx(3.6 / np.sqrt(2))
    pair = Atoms("Zn2", positions=[[0.1, 0, 0], [4.9, 0, 0]], cell=[5, 10, 10], pbc=[True, False, False])
    assert shortest_distance(pair) == pytest.approx(0.2)  # across the periodic boundary
    pair.pbc = False
    assert shortest_distance(pair) == pytest.approx(4.8)
    far = Atoms("O2", positions=[[0, 0, 0], [0, 0, 9.5]])  # beyond the first neighbour-list cutoffs
    assert shortest_distance(far) == pytest.approx(9.5)
    assert shortest_distance(Atoms("O")) == np.inf


# ------------------------------------------------------------------------------------------ nanoparticles

@pytest.mark.parametrize("cluster", [cage_cluster(), wurtzite_cluster(12), ring_cluster(4)],
                         ids=["cage12", "wurtzite12", "ring4"])
def test_aligned_rmsd_zero_for_rotated_translated_permuted_copy(cluster):
    rng = np.random.default_rng(11)
    copy = cluster.copy()
    copy.positions = copy.positions @ Rotation.random(random_state=5).as_matrix().T + [3.0, -1.0, 2.0]
    copy = copy[rng.permutation(len(copy))]
    assert aligned_rmsd(cluster, copy, permute=True) < 1e-8
    rotated = cluster.copy()
    rotated.positions = rotated.positions @ Rotation.random(random_state=6).as_matrix().T - 4.0
    assert aligned_rmsd(cluster, rotated) < 1e-8
    noisy = copy.copy()
    noisy.positions += rng.normal(0, 0.02, noisy.positions.shape)
    assert 0.01 < aligned_rmsd(cluster, noisy, permute=True) < 0.04


def test_relax_cluster_and_comparison_table():
    cluster = ring_cluster(3, bond=2.2)
    calc = LennardJones(sigma=1.8 / 2 ** (1 / 6), epsilon=0.5, rc=2.6)  # Zn–O bonds want 1.8 Å
    relaxed, log = relax_cluster(cluster, calc, fmax=0.01)
    assert log.converged and len(log.trajectory) == log.steps + 1
    # nearest neighbours only (second neighbours of the hexagon lie beyond rc): the start has six bonds at
    # 2.2 Å, the minimum six at the LJ minimum, 1.8 Å, where no force is left
    energy = {}
    for bond in (2.2, 1.8):
        ring = ring_cluster(3, bond=bond)
        ring.calc = calc
        energy[bond] = ring.get_potential_energy()
    assert energy[1.8] < energy[2.2] - 1.0
    assert log.energies[0] == pytest.approx(energy[2.2], abs=1e-9)
    assert log.energies[-1] == pytest.approx(energy[1.8], abs=1e-3)  # fmax 0.01 eV/Å: within ~1e-4 eV
    assert coordination_histogram(relaxed, ZN_O) == {2: 6}
    rows = compare_structures({"ring3": relaxed}, {"ring3": cluster}, ZN_O)
    assert rows[0]["mean_bond"] == pytest.approx(1.8, abs=0.02)
    assert rows[0]["mean_bond_ref"] == pytest.approx(2.2)
    assert rows[0]["rmsd"] > 0.1 and rows[0]["mean_cn"] == 2.0
    with pytest.raises(ValueError, match="compositions"):
        aligned_rmsd(cluster, ring_cluster(3)[[0, 2, 4, 1, 3, 0]], permute=True)
