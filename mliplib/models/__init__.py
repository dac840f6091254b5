"""Machine-learning interatomic potentials with ASE calculators.

- :class:`LinearPotential`: linear model on any descriptor (linear-BP with Ridge, PLIP with LassoLars);
- :class:`NeuralNetworkPotential`: Behler–Parrinello per-element neural networks (PyTorch);
- :class:`Committee`: M members, mean prediction and per-atom force spread.
All have ``fit``, ``predict``, ``calculator()`` and ``save``; :func:`load` reads any saved model.
"""

from mliplib.models.base import MLIPCalculator, Potential, load
from mliplib.models.committee import Committee
from mliplib.models.linear import LinearPotential
from mliplib.models.nnp import NeuralNetworkPotential

__all__ = ["Potential", "LinearPotential", "NeuralNetworkPotential", "Committee", "MLIPCalculator", "load"]
