"""Committees of potentials: mean prediction and the spread of the members (query by committee).

σ_a = sqrt( (1/M) Σ_m |F_a^(m) − F̄_a|² ) per atom, in eV/Å, is the "spread in force evaluation" used as
an uncertainty: members differ by their random initialisation (NNP) and/or their training subsample.
"""

from __future__ import annotations

import copy

import numpy as np
from ase import Atoms

from mliplib.models.base import Potential


class Committee(Potential):
    """M potentials of one kind. ``fit(frames)`` trains member m on a random ``subsample`` fraction of
    the frames (None: all frames) and, for members with a ``seed`` attribute (NNP), with seed
    ``seed + m``. Frames whose ``info["config_type"]`` is in ``always_include`` are in every member's
    subsample (e.g. the isolated atoms that alone fix each element's energy constant: a member fitted
    without them predicts arbitrary energies for non-stoichiometric systems); the fraction applies to
    the other frames. ``predict`` returns the mean energy, energies, forces, stress plus ``energy_std`` (eV),
    ``forces_spread`` (n_atoms,) σ_a (eV/Å) and ``member_forces`` (M, n_atoms, 3)."""

    kind = "Committee"

    def __init__(self, members: list[Potential], subsample: float | None = None, seed: int = 0,
                 always_include: tuple[str, ...] = ()):
        if len(members) < 2:
            raise ValueError("a committee needs at least two members")
        species = {tuple(m.descriptor.species) for m in members}
        if len(species) != 1:
            raise ValueError(f"committee members know different elements {sorted(species)}; use one species set")
        if subsample is not None and not 0 < subsample <= 1:
            raise ValueError(f"subsample must be a fraction in (0, 1], got {subsample}")
        self.members, self.subsample, self.seed = list(members), subsample, seed
        self.always_include = tuple(always_include)

    @classmethod
    def of(cls, model: Potential, size: int, subsample: float | None = None, seed: int = 0,
           always_include: tuple[str, ...] = ()) -> "Committee":
        """A committee of ``size`` unfitted copies of ``model``."""
        return cls([copy.deepcopy(model) for _ in range(size)], subsample=subsample, seed=seed,
                   always_include=always_include)

    @property
    def descriptor(self):
        return max((m.descriptor for m in self.members), key=lambda d: d.cutoff)

    @property
    def is_fitted(self) -> bool:
        return all(m.is_fitted for m in self.members)

    def check(self, atoms: Atoms) -> None:
        for m in self.members:
            m.check(atoms)

    def fit(self, frames: list[Atoms]) -> "Committee":
        rng = np.random.default_rng(self.seed)
        always = np.array([a.info.get("config_type") in self.always_include for a in frames], dtype=bool)
        pool = np.flatnonzero(~always)
        for m, member in enumerate(self.members):
            if hasattr(member, "seed"):
                member.seed = self.seed + m
            subset = frames
            if self.subsample is not None:
                drawn = rng.choice(pool, size=max(2, int(round(self.subsample * len(pool)))), replace=False)
                subset = [frames[k] for k in sorted(np.concatenate([np.flatnonzero(always), drawn]))]
            member.fit(subset)
        return self

    def _predict(self, atoms: Atoms, neighbors) -> dict:
        outs = [m._predict(atoms, neighbors) for m in self.members]
        forces = np.array([o["forces"] for o in outs])
        mean_forces = forces.mean(axis=0)
        energies = np.array([o["energy"] for o in outs])
        result = {"energy": float(energies.mean()), "energies": np.mean([o["energies"] for o in outs], axis=0),
                  "forces": mean_forces, "energy_std": float(energies.std()),
                  "forces_spread": np.sqrt(np.mean(np.sum((forces - mean_forces) ** 2, axis=2), axis=0)),
                  "member_forces": forces}
        if "stress" in outs[0]:
            result["stress"] = np.mean([o["stress"] for o in outs], axis=0)
        return result

    def _state(self):
        metas, arrays = [], {}
        for m, member in enumerate(self.members):
            meta, arr = member._state()
            metas.append({"kind": member.kind, **meta})
            arrays.update({f"m{m}/{k}": v for k, v in arr.items()})
        return {"members": metas, "subsample": self.subsample, "seed": self.seed,
                "always_include": list(self.always_include)}, arrays

    @classmethod
    def _from_state(cls, meta, arrays):
        from mliplib.models import LinearPotential, NeuralNetworkPotential
        kinds = {c.kind: c for c in (LinearPotential, NeuralNetworkPotential)}
        members = []
        for m, member_meta in enumerate(meta["members"]):
            prefix = f"m{m}/"
            member_arrays = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            members.append(kinds[member_meta["kind"]]._from_state(member_meta, member_arrays))
        return cls(members, subsample=meta["subsample"], seed=meta["seed"],
                   always_include=tuple(meta.get("always_include", ())))
