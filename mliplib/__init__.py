"""mliplib: fast, exact descriptors and machine-learning interatomic potentials with ASE calculators.

Modules, from the bottom layer up: :mod:`mliplib.neighbors` (cell lists), :mod:`mliplib.builders`
(structures of AB compounds) and :mod:`mliplib.descriptors` (Behler–Parrinello, PLIP),
:mod:`mliplib.models` (linear, LassoLars path, NNP, committee; ASE calculators), then :mod:`mliplib.md`,
:mod:`mliplib.properties` and :mod:`mliplib.transferability`. ``mliplib.load(path)`` reads any saved model.
"""

from mliplib.models import load

__version__ = "0.1.0"
__all__ = ["__version__", "load"]
