"""What every mliplib potential shares: the estimator contract, input checks, the ASE calculator, model files.

A potential maps an ``ase.Atoms`` to ``{"energy": eV, "energies": (n_atoms,) eV, "forces": (n_atoms, 3)
eV/Å, "stress": (6,) eV/Å³ Voigt, ASE sign}`` (stress only for cells periodic in all three directions).

Potentials are scikit-learn estimators: ``__init__`` stores its parameters verbatim, ``fit(frames)``
validates them and learns, fitted attributes end in ``_`` (every fitted potential has
``trained_species_``, the elements of its training frames, and refuses any other element at predict
time), and ``sklearn.base.clone``, ``get_params`` and ``set_params`` work.

Model files (format 2) are ``.npz`` archives read with ``allow_pickle=False``, so a model file cannot
execute code. ``__metadata__`` is a JSON string: the format version, the kind, every parameter (a
descriptor as its ``to_dict()``, a scikit-learn estimator as its class, one of :data:`ESTIMATORS`, and
its ``get_params()``) and the fitted metadata; the other entries are the fitted arrays; ``__digest__``
is the SHA-256 of the metadata string and of every array (name, dtype, shape, bytes), checked on load
so that a file edited after saving is refused. Every problem with a file raises one exception,
:class:`ModelFileError`, naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import (
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)
from ase.data import atomic_numbers, chemical_symbols
from sklearn import linear_model
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from mliplib.descriptors.base import Descriptor, descriptor_from_dict
from mliplib.models.lasso_path import LassoLarsPathCV
from mliplib.neighbors import NeighborList, check_atoms

FORMAT_VERSION = 2
MIN_DISTANCE = 0.1  # Å; closer atoms are treated as overlapping (an error, not a prediction)
METADATA, DIGEST = "__metadata__", "__digest__"

#: Estimators a model file may name (public import path → class); loading any other is refused.
ESTIMATORS = {f"sklearn.linear_model.{cls.__name__}": cls for cls in (
    linear_model.LinearRegression, linear_model.Ridge, linear_model.RidgeCV, linear_model.Lasso,
    linear_model.LassoCV, linear_model.LassoLars, linear_model.LassoLarsCV, linear_model.LassoLarsIC,
    linear_model.Lars, linear_model.LarsCV, linear_model.ElasticNet, linear_model.ElasticNetCV,
    linear_model.BayesianRidge, linear_model.ARDRegression, linear_model.OrthogonalMatchingPursuit,
    linear_model.OrthogonalMatchingPursuitCV)}
ESTIMATORS["mliplib.models.lasso_path.LassoLarsPathCV"] = LassoLarsPathCV

#: Potential classes by ``kind`` (filled as the subclasses are defined).
POTENTIALS: dict[str, type] = {}


class ModelFileError(ValueError):
    """A model file that cannot be loaded; the message names the file and what is wrong with it."""


class Potential(BaseEstimator):
    """Base class of mliplib potentials (a scikit-learn estimator and the source of an ASE calculator).

    Subclasses set ``kind`` (the name written to model files) and implement ``fit(frames)``,
    ``check_frames(frames)``, ``_predict(atoms, neighbors)`` and the fitted-state pair
    ``_fitted_state() -> (metadata: dict, arrays: dict[str, np.ndarray])`` /
    ``_restore_fitted(metadata, arrays)`` (which checks the arrays against the parameters).
    """

    kind = "Potential"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            POTENTIALS[cls.kind] = cls

    @property
    def cutoff(self) -> float:
        """Cutoff radius of the descriptor, Å."""
        return self.descriptor.cutoff

    @property
    def species(self) -> list[str]:
        """Element symbols the descriptor knows (sorted by atomic number)."""
        return self.descriptor.species

    @property
    def is_fitted(self) -> bool:
        """True after ``fit`` (or for a loaded model)."""
        return hasattr(self, "trained_species_")

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted

    # -- inputs -----------------------------------------------------------------------------------
    def check(self, atoms: Atoms) -> None:
        """Raise, with what to do, for a structure this model cannot predict.

        Parameters
        ----------
        atoms : ase.Atoms
            The structure to predict.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            The model is not fitted.
        ValueError
            Non-finite positions or cell, an element the descriptor does not know, or an element absent
            from the training data (its weights were never trained).
        """
        if not self.is_fitted:
            raise NotFittedError(f"this {self.kind} is not fitted yet; call .fit(frames) or load a saved model")
        check_atoms(atoms)
        self.descriptor.species_index(atoms)  # elements the descriptor does not know
        trained = {atomic_numbers[symbol] for symbol in self.trained_species_}
        untrained = [chemical_symbols[z] for z in sorted(set(np.unique(atoms.numbers).tolist()) - trained)]
        if untrained:
            raise ValueError(f"atoms contain {', '.join(untrained)}, absent from this {self.kind}'s training "
                             f"data (trained on {', '.join(self.trained_species_)}): its weights for them were "
                             f"never fitted; train on frames that contain {', '.join(untrained)}")

    def check_frames(self, frames) -> None:
        """Raise ValueError naming the first frame this model cannot be trained on.

        Parameters
        ----------
        frames : sequence of ase.Atoms
            Reference frames (``info["energy"]`` in eV, ``arrays["forces"]`` in eV/Å, optionally
            ``info["stress"]`` in eV/Å³, Voigt order, ASE sign).
        """
        raise NotImplementedError

    # -- prediction -------------------------------------------------------------------------------
    def predict(self, atoms: Atoms, neighbors=None) -> dict:
        """Energy, per-atom energies, forces and (for a cell periodic in 3 directions) stress.

        Parameters
        ----------
        atoms : ase.Atoms
            The structure.
        neighbors : mliplib.neighbors.Pairs, optional
            A pair list with a cutoff ≥ the model's (computed if None).

        Returns
        -------
        dict
            ``energy`` (float, eV), ``energies`` ((n_atoms,) eV), ``forces`` ((n_atoms, 3) eV/Å) and, if
            ``atoms.pbc`` is all True, ``stress`` ((6,) eV/Å³, Voigt xx yy zz yz xz xy, ASE sign);
            committees add their spread (see :class:`~mliplib.models.Committee`).
        """
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

    def _predict(self, atoms: Atoms, neighbors) -> dict:
        raise NotImplementedError

    def calculator(self, skin: float = 0.5) -> MLIPCalculator:
        """An ASE calculator for this model.

        Parameters
        ----------
        skin : float
            Verlet skin of the reused neighbour list, Å.

        Returns
        -------
        MLIPCalculator
        """
        return MLIPCalculator(self, skin=skin)

    # -- state and files --------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        """Everything a model file holds: JSON metadata and the fitted arrays.

        Returns
        -------
        metadata : dict
            ``kind``, ``params`` (every parameter, JSON-encoded) and ``fitted`` (fitted metadata, the
            trained species included).
        arrays : dict of str to numpy.ndarray
            The fitted arrays.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            The model is not fitted (an unfitted model has no state worth saving).
        """
        if not self.is_fitted:
            raise NotFittedError(f"this {self.kind} is not fitted, there is nothing to save; call .fit(frames) first")
        fitted, arrays = self._fitted_state()
        metadata = {"kind": self.kind, "params": encode_params(self),
                    "fitted": {"trained_species": list(self.trained_species_), **fitted}}
        return metadata, arrays

    def digest(self) -> str:
        """SHA-256 of the model's content: parameters and fitted state.

        Returns
        -------
        str
            Hex digest, equal to the ``__digest__`` its model file records (and independent of when or
            where the file was written).
        """
        metadata, arrays = self.to_state()
        return content_digest(_metadata_text(metadata), arrays)

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to a file that :func:`mliplib.load` reads.

        Parameters
        ----------
        path : str or pathlib.Path
            Destination; ``.npz`` is appended when the name does not end in it.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        metadata, arrays = self.to_state()
        text = _metadata_text(metadata)
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        np.savez(path, **{METADATA: np.array(text), DIGEST: np.array(content_digest(text, arrays))}, **arrays)
        return path

    def _fitted_state(self) -> tuple[dict, dict]:
        raise NotImplementedError

    def _restore_fitted(self, fitted: dict, arrays: dict) -> None:
        raise NotImplementedError


def frame_label(index: int, atoms: Atoms) -> str:
    """How error messages name a training frame.

    Parameters
    ----------
    index : int
        Position of the frame in the training list.
    atoms : ase.Atoms
        The frame.

    Returns
    -------
    str
        "frame <index> (<formula>[, <task or config_type>])".
    """
    name = atoms.info.get("task") or atoms.info.get("config_type")
    return f"frame {index} ({atoms.get_chemical_formula()}" + (f", {name})" if name else ")")


def check_labels(frames, energy: bool, forces: bool, stress: bool = False, descriptor=None) -> None:
    """Raise ValueError naming the first frame that lacks a label the fit needs or has a non-finite one.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Reference frames; at least one.
    energy, forces : bool
        Whether ``info["energy"]`` (eV) and ``arrays["forces"]`` ((n_atoms, 3) eV/Å) are needed.
    stress : bool
        Whether ``info["stress"]`` ((6,) eV/Å³), where present on a periodic frame, is used.
    descriptor : Descriptor, optional
        When given, every frame's elements must be known to it.
    """
    if len(frames) == 0:
        raise ValueError("fit needs at least one reference frame, got none")
    for s, atoms in enumerate(frames):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"training frames must be ase.Atoms; frame {s} is a {type(atoms).__name__}")
        label = frame_label(s, atoms)
        try:
            check_atoms(atoms)
            if descriptor is not None:
                descriptor.species_index(atoms)
        except ValueError as error:
            raise ValueError(f"training {label}: {error}") from None
        if energy:
            if "energy" not in atoms.info:
                raise ValueError(f"training {label} has no info['energy'] (eV); label it or leave energies out "
                                 f"of the fit")
            if not np.isfinite(atoms.info["energy"]):
                raise ValueError(f"training {label} has a non-finite energy ({atoms.info['energy']}); remove or "
                                 f"fix the frame")
        if forces:
            if "forces" not in atoms.arrays:
                raise ValueError(f"training {label} has no arrays['forces'] (eV/Å); label it or leave forces "
                                 f"out of the fit")
            bad = np.flatnonzero(~np.all(np.isfinite(atoms.arrays["forces"]), axis=1))
            if len(bad):
                raise ValueError(f"training {label} has non-finite forces on atoms {bad[:10].tolist()}; remove "
                                 f"or fix the frame")
        if stress and "stress" in atoms.info and not np.all(np.isfinite(atoms.info["stress"])):
            raise ValueError(f"training {label} has a non-finite stress {np.asarray(atoms.info['stress'])}; "
                             f"remove or fix the frame")


def trained_species(frames) -> list[str]:
    """The elements present in training frames.

    Parameters
    ----------
    frames : sequence of ase.Atoms

    Returns
    -------
    list of str
        Chemical symbols, sorted by atomic number.
    """
    numbers = sorted(set(np.concatenate([atoms.numbers for atoms in frames]).tolist()))
    return [chemical_symbols[z] for z in numbers]


def stress_from_virial(atoms: Atoms, virial: np.ndarray) -> np.ndarray:
    """ASE stress from the virial: −W/V.

    Parameters
    ----------
    atoms : ase.Atoms
        The (periodic) structure; its volume in Å³.
    virial : numpy.ndarray
        (3, 3) virial W, eV.

    Returns
    -------
    numpy.ndarray
        (6,) stress, eV/Å³, Voigt order xx yy zz yz xz xy.
    """
    s = -virial / atoms.get_volume()
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


# -- parameters as JSON ---------------------------------------------------------------------------
def encode_params(estimator) -> dict:
    """An estimator's parameters as JSON-serialisable values.

    Parameters
    ----------
    estimator : sklearn.base.BaseEstimator
        A potential or a scikit-learn estimator.

    Returns
    -------
    dict
        ``get_params(deep=False)`` with every value passed through :func:`encode_value`.
    """
    return {name: encode_value(value, f"{type(estimator).__name__}.{name}")
            for name, value in estimator.get_params(deep=False).items()}


def encode_value(value, where: str = "parameter"):
    """A parameter value as JSON: descriptors, potentials, known estimators, arrays and tuples are tagged.

    Parameters
    ----------
    value
        None, bool, int, float, str, list, tuple, dict with str keys, numpy array or scalar,
        :class:`~mliplib.descriptors.base.Descriptor`, :class:`Potential`, or an estimator of
        :data:`ESTIMATORS`.
    where : str
        The parameter's name, for the error message.

    Returns
    -------
    JSON-serialisable value that :func:`decode_value` turns back into an equal one.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(f"cannot save {where}: arrays of dtype {value.dtype} are not supported")
        return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v, where) for v in value]}
    if isinstance(value, list):
        return [encode_value(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("__") for k in value):
            raise ValueError(f"cannot save {where}: dict keys must be strings not starting with '__'")
        return {k: encode_value(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, Descriptor):
        return {"__descriptor__": value.to_dict()}
    if isinstance(value, Potential):
        return {"__potential__": value.kind, "params": encode_params(value)}
    name = next((n for n, cls in ESTIMATORS.items() if type(value) is cls), None)
    if name is None:
        raise ValueError(f"cannot save {where} = {value!r}: model files can record only the estimators "
                         f"{sorted(ESTIMATORS)}, descriptors, potentials and plain values")
    return {"__estimator__": name, "params": encode_params(value)}


def decode_value(value):
    """Inverse of :func:`encode_value`.

    Parameters
    ----------
    value
        A JSON value written by :func:`encode_value`.

    Returns
    -------
    The parameter value (descriptor, potential and estimator objects rebuilt).

    Raises
    ------
    ValueError
        Unknown estimator, descriptor kind or potential kind.
    """
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return np.array(value["__array__"], dtype=np.dtype(value["dtype"]))
    if "__tuple__" in value:
        return tuple(decode_value(v) for v in value["__tuple__"])
    if "__descriptor__" in value:
        return descriptor_from_dict(value["__descriptor__"])
    if "__potential__" in value:
        return potential_class(value["__potential__"])(**decode_params(value["params"]))
    if "__estimator__" in value:
        if value["__estimator__"] not in ESTIMATORS:
            raise ValueError(f"unknown estimator {value['__estimator__']!r}; this mliplib reads "
                             f"{sorted(ESTIMATORS)}")
        return ESTIMATORS[value["__estimator__"]](**decode_params(value["params"]))
    return {k: decode_value(v) for k, v in value.items()}


def decode_params(params: dict) -> dict:
    """Constructor keyword arguments from :func:`encode_params` output.

    Parameters
    ----------
    params : dict
        Encoded parameters.

    Returns
    -------
    dict
    """
    if not isinstance(params, dict):
        raise TypeError(f"parameters must be a JSON object, got {type(params).__name__}")
    return {name: decode_value(value) for name, value in params.items()}


def potential_class(kind: str) -> type:
    """The :class:`Potential` subclass written as ``kind`` in model files.

    Parameters
    ----------
    kind : str
        E.g. "LinearPotential".

    Returns
    -------
    type
    """
    if kind not in POTENTIALS:
        raise ValueError(f"unknown model kind {kind!r}; this mliplib reads {sorted(POTENTIALS)}")
    return POTENTIALS[kind]


def potential_from_state(metadata: dict, arrays: dict) -> Potential:
    """Rebuild a fitted potential from :meth:`Potential.to_state` output.

    Parameters
    ----------
    metadata : dict
        ``kind``, ``params``, ``fitted``.
    arrays : dict of str to numpy.ndarray
        The fitted arrays.

    Returns
    -------
    Potential

    Raises
    ------
    ValueError
        Unknown kind or estimator, parameters a constructor rejects, or arrays inconsistent with the
        parameters (wrong shapes, non-finite values, species the descriptor does not know).
    """
    cls = potential_class(metadata["kind"])
    try:
        model = cls(**decode_params(metadata["params"]))
    except TypeError as error:
        raise ValueError(f"parameters of {metadata['kind']} not accepted: {error}") from None
    fitted = metadata["fitted"]
    species = fitted["trained_species"]
    if not species or not set(species) <= set(model.species):
        raise ValueError(f"trained species {species} must be a non-empty subset of the descriptor's {model.species}")
    model._restore_fitted(fitted, arrays)
    model.trained_species_ = list(species)
    return model


def check_array_names(arrays: dict, expected: set) -> None:
    """Raise ValueError unless the fitted arrays are exactly the ``expected`` ones.

    Parameters
    ----------
    arrays : dict of str to numpy.ndarray
        Arrays read from a model file.
    expected : set of str
        The names the parameters call for.
    """
    missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
    if missing or extra:
        raise ValueError(f"the arrays do not match the parameters: missing {missing}, unexpected {extra}")


def check_array(arrays: dict, name: str, shape: tuple, finite: bool = True) -> np.ndarray:
    """One fitted array, checked against the shape the parameters call for.

    Parameters
    ----------
    arrays : dict of str to numpy.ndarray
        Arrays read from a model file.
    name : str
        The array's name.
    shape : tuple of int
        The expected shape.
    finite : bool
        Also require every value to be finite.

    Returns
    -------
    numpy.ndarray
        ``arrays[name]``.

    Raises
    ------
    ValueError
        Missing, not float, of another shape or (with ``finite``) containing NaN or inf.
    """
    if name not in arrays:
        raise ValueError(f"array {name!r} is missing")
    array = arrays[name]
    if array.dtype.kind != "f" or array.shape != tuple(shape):
        raise ValueError(f"array {name!r} has shape {array.shape} and dtype {array.dtype}; the parameters "
                         f"need float with shape {tuple(shape)}")
    if finite and not np.all(np.isfinite(array)):
        raise ValueError(f"array {name!r} contains NaN or infinite values")
    return array


def _metadata_text(metadata: dict) -> str:
    return json.dumps({"format_version": FORMAT_VERSION, **metadata}, sort_keys=True)


def content_digest(metadata_text: str, arrays: dict) -> str:
    """SHA-256 of a model file's content, as stored in its ``__digest__`` entry.

    Parameters
    ----------
    metadata_text : str
        The metadata JSON string.
    arrays : dict of str to numpy.ndarray
        The fitted arrays.

    Returns
    -------
    str
        Hex digest over the metadata string and every array's name, dtype, shape and bytes, in name
        order.
    """
    h = hashlib.sha256(metadata_text.encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def model_path(path: str | Path) -> Path:
    """The model file ``path`` names.

    Parameters
    ----------
    path : str or pathlib.Path
        As given to :func:`load`.

    Returns
    -------
    pathlib.Path
        ``path`` if it exists or ends in ``.npz``, else ``path`` with ``.npz`` appended (as ``save``
        does).
    """
    path = Path(path)
    if path.exists() or path.suffix == ".npz":
        return path
    return path.with_name(path.name + ".npz")


def load(path: str | Path) -> Potential:
    """Load a model written by ``save`` (safe: no pickle, content digest checked).

    Parameters
    ----------
    path : str or pathlib.Path
        The model file; ``.npz`` may be left out, as in ``save``.

    Returns
    -------
    Potential

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is not a readable mliplib model file of this format version, was modified after it
        was saved, or holds arrays inconsistent with its parameters; the message names the file.
    """
    path = model_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        text, arrays = _read(path)
        metadata = json.loads(text)
        if not isinstance(metadata, dict):
            raise TypeError("its metadata is not a JSON object")
        version = metadata.get("format_version")
        if type(version) is not int:
            raise ValueError(f"its format_version is {version!r}, not an integer")
        if version != FORMAT_VERSION:
            raise ValueError(f"it has model format version {version}, this mliplib reads version "
                             f"{FORMAT_VERSION}; use the mliplib release that wrote it, or retrain")
        return potential_from_state(metadata, arrays)
    except ModelFileError:
        raise
    except (ValueError, KeyError, TypeError) as error:
        what = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
        raise ModelFileError(f"cannot load {path}: {what}") from error


def _read(path: Path) -> tuple[str, dict]:
    """Metadata text and arrays of a model file, after checking its content digest."""
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"cannot load {path}: not an .npz archive (a model file is one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        reason = "it holds Python objects (pickle), which model files never do" if "allow_pickle" in str(error) \
            else f"{type(error).__name__}: {error}"
        raise ModelFileError(f"cannot load {path}: not a readable .npz model file ({reason})") from error
    text, digest = arrays.pop(METADATA, None), arrays.pop(DIGEST, None)
    if text is None:
        raise ModelFileError(f"cannot load {path}: not an mliplib model file (no {METADATA} entry)")
    if digest is None:
        raise ModelFileError(f"cannot load {path}: no content digest; files of model format version 1 (or "
                             f"older) are not read by this mliplib, retrain or convert the model")
    if text.dtype.kind != "U" or text.shape != () or digest.dtype.kind != "U" or digest.shape != ():
        raise ModelFileError(f"cannot load {path}: {METADATA} and {DIGEST} must be strings")
    text = str(text)
    if content_digest(text, arrays) != str(digest):
        raise ModelFileError(f"cannot load {path}: its content does not match its digest — the file was "
                             f"modified after it was saved (or damaged); restore or re-save the model")
    return text, arrays


class MLIPCalculator(Calculator):
    """ASE calculator wrapping an mliplib potential; keeps a Verlet neighbour list with a skin for MD.

    Parameters
    ----------
    model : Potential
        A fitted potential.
    skin : float
        Verlet skin of the neighbour list, Å (rebuilt only when an atom moved more than skin/2).
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Stress is available for cells periodic in all three directions only; asking for it otherwise
    raises :class:`~ase.calculators.calculator.PropertyNotImplementedError` (ASE's rule).
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "energies", "free_energy", "forces", "stress"]

    def __init__(self, model: Potential, skin: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.skin = skin
        self.neighbor_list = NeighborList(model.cutoff, skin=skin)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Fill ``self.results`` for ``atoms`` (ASE calculator interface).

        Parameters
        ----------
        atoms : ase.Atoms, optional
            The structure (the calculator's own copy if None).
        properties : sequence of str
            Requested properties; all of ``implemented_properties`` are computed at once.
        system_changes : list of str
            What changed since the last call (ASE's bookkeeping).

        Raises
        ------
        ase.calculators.calculator.PropertyNotImplementedError
            Stress requested for a cell that is not periodic in all three directions.
        """
        super().calculate(atoms, properties, system_changes)
        if "stress" in properties and not np.all(self.atoms.pbc):
            raise PropertyNotImplementedError(f"stress needs a cell periodic in all three directions; these atoms "
                                              f"have pbc={self.atoms.pbc.tolist()}")
        pairs = self.neighbor_list.update(self.atoms)
        out = self.model.predict(self.atoms, neighbors=pairs)
        self.results = {"energy": out["energy"], "free_energy": out["energy"], "energies": out["energies"],
                        "forces": out["forces"]}
        if "stress" in out:
            self.results["stress"] = out["stress"]

    def todict(self) -> dict:
        """The calculator's parameters (ASE records them, e.g. in trajectories).

        Returns
        -------
        dict
            ``model`` (kind), ``model_sha256`` (:meth:`Potential.digest`; None if unfitted) and ``skin``
            (Å).
        """
        return {"model": self.model.kind, "model_sha256": self.model.digest() if self.model.is_fitted else None,
                "skin": self.skin}
