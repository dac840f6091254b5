"""mliplib: fast, exact descriptors and machine-learning interatomic potentials with ASE calculators.

Modules: :mod:`mliplib.neighbors` (cell lists), :mod:`mliplib.descriptors` (Behler–Parrinello, PLIP),
:mod:`mliplib.datasets` (the ZnO DFT data), :mod:`mliplib.reference` (how that data is made).
"""

__version__ = "0.1.0"


def load(path):
    """Load a model saved with ``.save(path)`` (see :func:`mliplib.models.load`)."""
    from mliplib.models import load as _load
    return _load(path)
