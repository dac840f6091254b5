"""Atomic-environment descriptors with analytic per-pair gradients.

- :class:`BehlerParrinello`: Behler–Parrinello symmetry functions (DScribe ACSF definitions and layout).
- :class:`PLIP`: the physically motivated 2-, 3- and many-body pool of the PLIP potentials.
"""

from mliplib.descriptors.base import Descriptor, Gradients, descriptor_from_dict
from mliplib.descriptors.bp import BehlerParrinello
from mliplib.descriptors.plip import PLIP

__all__ = ["PLIP", "BehlerParrinello", "Descriptor", "Gradients", "descriptor_from_dict"]
