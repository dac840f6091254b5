"""mliplib: fast, exact descriptors and machine-learning interatomic potentials with ASE calculators.

Modules: :mod:`mliplib.neighbors` (cell lists), :mod:`mliplib.descriptors` (Behler–Parrinello, PLIP),
:mod:`mliplib.models` (potentials), :mod:`mliplib.md`, :mod:`mliplib.properties`,
:mod:`mliplib.datasets` (the ZnO DFT data), :mod:`mliplib.reference` (how that data is made).
"""

__version__ = "0.1.0"


def load(path):
    """Load a model written by ``.save(path)``; see :func:`mliplib.models.load`.

    :mod:`mliplib.models` (PyTorch, scikit-learn) is imported on the first call, so that
    ``import mliplib`` stays light for the descriptors and neighbour lists.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file (``.npz`` may be left out).

    Returns
    -------
    mliplib.models.Potential

    Raises
    ------
    FileNotFoundError
        No such file.
    mliplib.models.ModelFileError
        A file that is not a readable model file of this format (the message names it and the problem).
    """
    from mliplib.models import load as load_model
    return load_model(path)
