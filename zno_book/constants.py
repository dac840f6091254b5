"""The ZnO numbers of the book that more than one module uses: the shipped model kinds, the crystal
structures' starting parameters, bond cutoffs, the surface lattice and the reference liquid state.

Plain data, no imports: every other module of :mod:`zno_book` may use it. Lengths in Å, densities in
g/cm³, temperatures in K.
"""

#: The ZnO formula unit, in the order of the atoms of every structure the book builds (Zn first).
ZNO = ("Zn", "O")

#: The three shipped potentials (:mod:`zno_book.zoo`) and their labels in tables and figures.
MODEL_KINDS = ("linear_bp", "plip", "nnp")
MODEL_LABELS = {"linear_bp": "linear-BP", "plip": "PLIP", "nnp": "NNP"}

#: Starting lattice parameters (Å; u, x fractional) of the six polymorphs, close to the PBE values; the
#: E–V curves refine them. Structure names as in :data:`mliplib.builders.AB_STRUCTURES`.
POLYMORPH_PARAMETERS = {
    "wurtzite": {"a": 3.29, "c": 5.30, "u": 0.38},  # B4, P6_3mc
    "zincblende": {"a": 4.63},  # B3, F-43m
    "rocksalt": {"a": 4.33},  # B1, Fm-3m
    "cscl": {"a": 2.68},  # B2, Pm-3m
    "hbn": {"a": 3.43, "c": 4.50},  # B_k "5-5", P6_3/mmc (wurtzite with u = 1/2)
    "bct": {"a": 5.62, "c": 3.26, "x": 0.18},  # BCT-4, P4_2/mnm, Zn 4f (x,x,0), O 4g (x,-x,0)
}
POLYMORPHS = tuple(POLYMORPH_PARAMETERS)

#: Zn–O bond cutoff (Å) between the first (≈1.8–2.1 Å) and second (≈3.2 Å) shells.
ZNO_BOND_CUTOFFS = {("Zn", "O"): 2.5}
#: Atoms closer than this (Å) are unphysical for ZnO: the shortest Zn–O bond (ZnO molecule) is ≈ 1.7 Å.
MIN_DISTANCE = 1.2

#: The wurtzite lattice of the DFT slabs and of the surfaces chapter's fixed-lattice study.
SURFACE = {"a": 3.29, "c": 5.30, "u": 0.38}

#: The reference liquid state (GFN1-xTB sampling and every model's liquid MD): density estimated ~13 %
#: below wurtzite (5.61 g/cm³), see data/zno/README.md.
LIQUID_DENSITY = 4.9
LIQUID_TEMPERATURE = 3000.0
#: 18 ZnO (36 atoms): the smallest liquid cell (edge 7.92 Å ≥ 7.85 Å) whose k-mesh at density 2.5 is
#: 2×2×2 instead of 3×3×3, a 3× saving per frame over 32 atoms (edge 7.61 Å)
LIQUID_FORMULA_UNITS = 18
#: Closest distances (Å) of a liquid's starting packing: ~ the shortest Zn–O bond and like-ion contacts of
#: the crystals (wurtzite: 1.98 Å, 3.2 Å), slightly shortened so that a random packing reaches them.
PACKING_DISTANCES = {("Zn", "O"): 1.9, ("Zn", "Zn"): 2.9, ("O", "O"): 2.7}
