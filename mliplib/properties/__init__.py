"""Physical properties computed with any ASE calculator (or from stored reference data) for model comparison.

Modules (one concept each): :mod:`~mliplib.properties.relax` (geometry optimisation),
:mod:`~mliplib.properties.bulk` (equation of state, lattice parameters, polymorph table),
:mod:`~mliplib.properties.surfaces` (surface energies), :mod:`~mliplib.properties.vibrations`
(VDOS from MD, phonon DOS via phonopy, spectrum overlap), :mod:`~mliplib.properties.structure`
(g(r), coordination numbers, bond angles), :mod:`~mliplib.properties.nanoparticles` (cluster relaxation,
aligned RMSD, bond graphs, comparison tables, diagnostics), :mod:`~mliplib.properties.tables` (text tables).
"""

from mliplib.properties.bulk import (DEFAULT_STRAINS, DEFAULT_VOLUME_RATIOS, EOSFit, EVCurve, birch_murnaghan,
                                     bulk_summary, energy_volume_curve, ev_from_frames, fit_eos, lattice_parameters,
                                     n_formula_units)
from mliplib.properties.nanoparticles import (Alignment, align, aligned_rmsd, bond_lengths, cluster_diagnostics,
                                              compare_structures, coordination_histogram, formula_units, fragments,
                                              kabsch, relax_cluster, ring_geometry)
from mliplib.properties.relax import RelaxLog, relax
from mliplib.properties.structure import (RDF, BondAngles, bond_angle_distribution, coordination_numbers,
                                          cutoff_matrix, rdf, shortest_distance, shortest_pair_distance)
from mliplib.properties.surfaces import (EV_PER_A2_TO_J_PER_M2, SurfaceRelaxation, SurfaceResult,
                                         relaxed_surface_energy, slab_layers, surface_area,
                                         surface_energies_from_frames, surface_energy, surface_relaxation)
from mliplib.properties.tables import format_table
from mliplib.properties.vibrations import (THZ_TO_CM1, VDOS, PhononDOS, harmonic_vdos, mean_frequency,
                                           peak_shifts, phonon_displacements, phonon_dos, phonon_dos_from_forces,
                                           phonon_dos_on_mesh, spectrum_overlap, spectrum_peaks, thz_to_cm1,
                                           velocity_autocorrelation, vdos, zone_centre_modes)

__all__ = [
    "relax", "RelaxLog",
    "EOSFit", "EVCurve", "DEFAULT_STRAINS", "DEFAULT_VOLUME_RATIOS", "birch_murnaghan", "fit_eos",
    "energy_volume_curve", "ev_from_frames", "lattice_parameters", "n_formula_units", "bulk_summary",
    "EV_PER_A2_TO_J_PER_M2", "SurfaceResult", "surface_energy", "surface_area", "relaxed_surface_energy",
    "slab_layers", "SurfaceRelaxation", "surface_relaxation", "surface_energies_from_frames",
    "THZ_TO_CM1", "thz_to_cm1", "velocity_autocorrelation", "VDOS", "vdos", "PhononDOS", "phonon_displacements",
    "phonon_dos", "phonon_dos_from_forces", "phonon_dos_on_mesh", "zone_centre_modes", "harmonic_vdos", "spectrum_overlap",
    "spectrum_peaks", "peak_shifts", "mean_frequency",
    "RDF", "rdf", "coordination_numbers", "cutoff_matrix", "BondAngles", "bond_angle_distribution",
    "shortest_distance", "shortest_pair_distance",
    "relax_cluster", "kabsch", "Alignment", "align", "aligned_rmsd", "coordination_histogram", "compare_structures",
    "bond_lengths", "fragments", "formula_units", "cluster_diagnostics", "ring_geometry",
    "format_table",
]
