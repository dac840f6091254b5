"""Small descriptors, synthetic ZnO frames and a linear potential with known weights, shared by the model tests."""

import json

import numpy as np

from mliplib.descriptors import PLIP, BehlerParrinello
from mliplib.models import LinearPotential
from mliplib.models.base import DIGEST, METADATA, content_digest
from mliplib.builders import rattled, strained
from zno_book.structures import polymorph

BP = BehlerParrinello(["Zn", "O"], 4.5, g2=[(0.8, 0.0), (0.3, 2.0), (0.3, 3.2)], g4=[(0.02, 1, 1), (0.02, 2, -1)],
                      g5=[(0.01, 1, 1)])
SMALL_PLIP = PLIP(["Zn", "O"], cutoff=4.5, a=(1.0,), b=(2.0, 3.0), l_max=2, m_max=5,
                  r_short={("Zn", "O"): 2.3, ("Zn", "Zn"): 3.3, ("O", "O"): 3.3})


def synthetic_frames(truth, n=10, seed=0):
    """Rattled, strained polymorphs labelled by a known model (the truth)."""
    rng = np.random.default_rng(seed)
    phases = ["wurtzite", "rocksalt", "zincblende", "bct"]
    frames = []
    for k in range(n):
        atoms = polymorph(phases[k % 4], cubic=phases[k % 4] in ("rocksalt", "zincblende"))
        atoms = rattled(strained(atoms, rng.uniform(-0.03, 0.03)), 0.08, k)
        out = truth.predict(atoms)
        atoms.info.update(energy=out["energy"], stress=out["stress"])
        atoms.arrays["forces"] = out["forces"]
        frames.append(atoms)
    return frames


def known_linear(descriptor, seed=1, offsets=None):
    """A linear potential with random weights, set by hand (the truth that labels synthetic frames)."""
    rng = np.random.default_rng(seed)
    model = LinearPotential(descriptor)
    model.weights_ = rng.normal(0, 0.05, (model.n_groups, descriptor.n_features))
    model.offsets_ = np.array([-2.0, -3.0]) if offsets is None else np.asarray(offsets, float)
    model.fit_info_ = {}
    model.trained_species_ = descriptor.species
    return model


def read_model_file(path):
    """(metadata dict, arrays) of a model file, bypassing every check of mliplib.load."""
    with np.load(path) as data:
        metadata = json.loads(str(data[METADATA]))
        arrays = {k: data[k] for k in data.files if k not in (METADATA, DIGEST)}
    return metadata, arrays


def write_model_file(path, metadata, arrays, digest=None):
    """Write a model file with the given content and ``digest`` (None: the matching content digest, as an
    edit that also recomputes the digest would leave it)."""
    text = json.dumps(metadata, sort_keys=True)
    stamp = content_digest(text, arrays) if digest is None else digest
    np.savez(path, **{METADATA: np.array(text), DIGEST: np.array(stamp)}, **arrays)
    return path
