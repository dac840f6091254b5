"""Committees of potentials: mean prediction and the spread of the members (query by committee).

σ_a = sqrt( (1/M) Σ_m |F_a^(m) − F̄_a|² ) per atom, in eV/Å, is the "spread in force evaluation" used as
an uncertainty: members differ by their random initialisation (NNP) and/or their training subsample.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from sklearn.base import clone

from mliplib.models.base import Potential, check_array_names, potential_from_state


class Committee(Potential):
    """M potentials trained on subsamples and/or with different seeds.

    Parameters
    ----------
    members : list of Potential
        The member templates (unfitted; ``fit`` trains clones of them), at least two, all with
        descriptors of the same species.
    subsample : float or None
        Fraction in (0, 1] of the frames each member is trained on, drawn at random (None: all frames).
    seed : int
        Seed of the subsample draws; members with a ``seed`` parameter (NNP) are trained with
        ``seed + m``.
    always_include : tuple of str
        Frames whose ``info["config_type"]`` is one of these are in every member's subsample (e.g. the
        isolated atoms, which alone fix each element's energy constant: a member fitted without them
        predicts arbitrary energies for non-stoichiometric systems); ``subsample`` applies to the others.

    Attributes
    ----------
    members_ : list of Potential
        The fitted members.
    trained_species_ : list of str
        Elements every member was trained on.

    Notes
    -----
    ``predict`` returns the mean ``energy``, ``energies``, ``forces``, ``stress`` plus ``energy_std``
    (eV), ``forces_spread`` (n_atoms,) σ_a (eV/Å) and ``member_forces`` (M, n_atoms, 3) eV/Å.
    """

    kind = "Committee"

    def __init__(self, members: list, subsample: float | None = None, seed: int = 0,
                 always_include: tuple[str, ...] = ()):
        self.members = members
        self.subsample = subsample
        self.seed = seed
        self.always_include = always_include

    @classmethod
    def of(cls, model: Potential, size: int, subsample: float | None = None, seed: int = 0,
           always_include: tuple[str, ...] = ()) -> Committee:
        """A committee of ``size`` unfitted clones of ``model``.

        Parameters
        ----------
        model : Potential
            The template.
        size : int
            Number of members.
        subsample, seed, always_include
            As for :class:`Committee`.

        Returns
        -------
        Committee
        """
        return cls([clone(model) for _ in range(size)], subsample=subsample, seed=seed,
                   always_include=always_include)

    @property
    def descriptor(self):
        """The members' descriptor with the longest cutoff (it gives the committee's neighbour list)."""
        return max((m.descriptor for m in self.members), key=lambda d: d.cutoff)

    def _check_params(self) -> None:
        if len(self.members) < 2 or not all(isinstance(m, Potential) for m in self.members):
            raise ValueError(f"a committee needs a list of at least two potentials, got {self.members!r}")
        species = {tuple(m.descriptor.species) for m in self.members}
        if len(species) != 1:
            raise ValueError(f"committee members know different elements {sorted(species)}; use one species set")
        if self.subsample is not None and not 0 < self.subsample <= 1:
            raise ValueError(f"subsample must be a fraction in (0, 1] or None, got {self.subsample!r}")

    def check_frames(self, frames) -> None:
        """Raise ValueError naming the first frame some member cannot be trained on.

        Parameters
        ----------
        frames : sequence of ase.Atoms
            The committee's reference frames.
        """
        if len(frames) == 0:
            raise ValueError("fit needs at least one reference frame, got none")
        for member in self.members:
            member.check_frames(frames)

    def fit(self, frames: list[Atoms]) -> Committee:
        """Train a clone of every member on its subsample.

        Parameters
        ----------
        frames : list of ase.Atoms
            Reference frames (labels as the members need them).

        Returns
        -------
        Committee
            self, fitted.
        """
        self._check_params()
        self.check_frames(frames)
        rng = np.random.default_rng(self.seed)
        always = np.array([a.info.get("config_type") in self.always_include for a in frames], dtype=bool)
        pool = np.flatnonzero(~always)
        n_draw = None if self.subsample is None else max(2, round(self.subsample * len(pool)))
        if n_draw is not None and n_draw > len(pool):
            raise ValueError(f"subsample={self.subsample} draws {n_draw} frames, but only {len(pool)} frames are "
                             f"not in always_include; give more frames or no subsample")
        members = []
        for m, template in enumerate(self.members):
            member = clone(template)
            if "seed" in member.get_params(deep=False):
                member.set_params(seed=self.seed + m)
            subset = frames
            if n_draw is not None:
                drawn = rng.choice(pool, size=n_draw, replace=False)
                subset = [frames[k] for k in sorted(np.concatenate([np.flatnonzero(always), drawn]))]
            members.append(member.fit(subset))
        self.members_ = members
        self.trained_species_ = _common_species(members)
        return self

    def _predict(self, atoms: Atoms, neighbors) -> dict:
        outs = [m.predict(atoms, neighbors=neighbors) for m in self.members_]
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

    # -- state ------------------------------------------------------------------------------------------
    def _fitted_state(self):
        metas, arrays = [], {}
        for m, member in enumerate(self.members_):
            meta, member_arrays = member.to_state()
            metas.append(meta)
            arrays.update({f"m{m}/{k}": v for k, v in member_arrays.items()})
        return {"members": metas}, arrays

    def _restore_fitted(self, fitted, arrays):
        self._check_params()
        metas = fitted["members"]
        if not isinstance(metas, list) or len(metas) != len(self.members):
            raise ValueError(f"the committee has {len(self.members)} member templates but "
                             f"{len(metas) if isinstance(metas, list) else 'no list of'} fitted members")
        members, names = [], set()
        for m, meta in enumerate(metas):
            prefix = f"m{m}/"
            member_arrays = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            names |= {prefix + k for k in member_arrays}
            members.append(potential_from_state(meta, member_arrays))
        check_array_names(arrays, names)
        self.members_ = members
        if set(_common_species(members)) != set(fitted["trained_species"]):
            raise ValueError(f"trained species {fitted['trained_species']} differ from the members' "
                             f"{_common_species(members)}")


def _common_species(members: list) -> list[str]:
    """Elements every member was trained on, in the order of the first member's list."""
    return [s for s in members[0].trained_species_ if all(s in m.trained_species_ for m in members)]
