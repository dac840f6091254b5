"""Machine-learning interatomic potentials: scikit-learn estimators with ASE calculators.

- :class:`LinearPotential`: linear model on any descriptor (linear-BP with ridge, PLIP with LassoLars);
- :class:`NeuralNetworkPotential`: Behler–Parrinello per-element neural networks (PyTorch), the model
  itself being :class:`AtomicNetworks`;
- :class:`Committee`: M members, mean prediction and per-atom force spread.

All have ``fit``, ``predict``, ``calculator()`` and ``save``; :func:`load` reads any saved model and
raises :class:`ModelFileError` for a file it cannot read.
"""

from mliplib.models.base import MLIPCalculator, ModelFileError, Potential, load
from mliplib.models.committee import Committee
from mliplib.models.linear import LinearPotential
from mliplib.models.nnp import AtomicNetworks, NeuralNetworkPotential

__all__ = [
           "AtomicNetworks",
           "Committee",
           "LinearPotential",
           "MLIPCalculator",
           "ModelFileError",
           "NeuralNetworkPotential",
           "Potential",
           "load",
]
