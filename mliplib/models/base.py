"""What every mliplib potential shares: input checks, predictions as dicts, the ASE calculator, saving.

A model maps an ``ase.Atoms`` to ``{"energy": eV, "energies": (n_atoms,) eV, "forces": (n_atoms, 3) eV/Å,
"stress": (6,) eV/Å³ Voigt, ASE sign}`` (stress only for fully periodic cells). Models are saved as a
single ``.npz`` file holding arrays and a JSON metadata string (loaded with ``allow_pickle=False``, so a
model file cannot execute code), with a format version checked on load.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from mliplib.neighbors import NeighborList, check_atoms

FORMAT_VERSION = 1
MIN_DISTANCE = 0.1  # Å; closer atoms are treated as overlapping (an error, not a prediction)


class Potential:
    """Base class. Subclasses implement ``fit(frames)``, ``_predict(atoms, neighbors)`` and the state pair
    ``_state() -> (metadata: dict, arrays: dict[str, np.ndarray])`` / ``_from_state(metadata, arrays)``."""

    kind = "Potential"
    descriptor = None

    @property
    def cutoff(self) -> float:
        return self.descriptor.cutoff

    @property
    def species(self) -> list[str]:
        return self.descriptor.species

    def check(self, atoms: Atoms) -> None:
        """Raise early, with what to do, for inputs this model cannot predict."""
        if not self.is_fitted:
            raise RuntimeError(f"this {self.kind} is not fitted yet; call .fit(frames) or load a saved model")
        check_atoms(atoms)
        self.descriptor.species_index(atoms)  # unknown elements

    @property
    def is_fitted(self) -> bool:
        raise NotImplementedError

    def predict(self, atoms: Atoms, neighbors=None) -> dict:
        """Energy (eV), per-atom energies (eV), forces (eV/Å) and, if periodic, stress (eV/Å³)."""
        self.check(atoms)
        if neighbors is None:
            neighbors = self.descriptor.neighbors(atoms)
        if len(neighbors.i):
            distances = neighbors.distances()
            k = int(np.argmin(distances))
            if distances[k] < MIN_DISTANCE:
                raise ValueError(f"atoms {neighbors.i[k]} and {neighbors.j[k]} overlap ({distances[k]:.3g} Å "
                                 f"apart); fix the structure")
        return self._predict(atoms, neighbors)

    def calculator(self, skin: float = 0.5) -> "MLIPCalculator":
        """An ASE calculator for this model (neighbour list reused in MD with the given skin, Å)."""
        return MLIPCalculator(self, skin=skin)

    # -- saving -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` (``.npz`` added if missing); load it with :func:`mliplib.load`."""
        meta, arrays = self._state()
        meta = {"format_version": FORMAT_VERSION, "kind": self.kind, **meta}
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        np.savez(path, __metadata__=np.array(json.dumps(meta)), **arrays)
        return path

    def _state(self) -> tuple[dict, dict]:
        raise NotImplementedError

    @classmethod
    def _from_state(cls, meta: dict, arrays: dict) -> "Potential":
        raise NotImplementedError


def stress_from_virial(atoms: Atoms, virial: np.ndarray) -> np.ndarray:
    """ASE stress (Voigt xx yy zz yz xz xy, eV/Å³) = −W/V."""
    s = -virial / atoms.get_volume()
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def load(path: str | Path) -> Potential:
    """Load any model saved with ``.save`` (safe: no pickle). Raises on files of another format version."""
    from mliplib.models import Committee, LinearPotential, NeuralNetworkPotential
    kinds = {c.kind: c for c in (LinearPotential, NeuralNetworkPotential, Committee)}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    with np.load(path, allow_pickle=False) as data:
        if "__metadata__" not in data:
            raise ValueError(f"{path} is not an mliplib model file (no metadata)")
        meta = json.loads(str(data["__metadata__"]))
        arrays = {k: data[k] for k in data.files if k != "__metadata__"}
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has model format version {version}, this mliplib reads version "
                         f"{FORMAT_VERSION}; retrain the model or use the mliplib release that wrote it")
    if meta.get("kind") not in kinds:
        raise ValueError(f"{path}: unknown model kind {meta.get('kind')!r}")
    return kinds[meta["kind"]]._from_state(meta, arrays)


class MLIPCalculator(Calculator):
    """ASE calculator wrapping an mliplib model; keeps a Verlet neighbour list with a skin for MD."""

    implemented_properties = ["energy", "energies", "free_energy", "forces", "stress"]

    def __init__(self, model: Potential, skin: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.neighbor_list = NeighborList(model.cutoff, skin=skin)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pairs = self.neighbor_list.update(self.atoms)
        out = self.model.predict(self.atoms, neighbors=pairs)
        self.results = {"energy": out["energy"], "free_energy": out["energy"], "energies": out["energies"],
                        "forces": out["forces"]}
        if "stress" in out:
            self.results["stress"] = out["stress"]
        elif "stress" in properties:
            raise ValueError("stress needs a cell periodic in all three directions")
