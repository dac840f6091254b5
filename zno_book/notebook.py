"""The chapters' shared preamble. A chapter starts with

    from zno_book.notebook import LABELS, MODEL_COLORS, setup

    ...  # its own imports
    t_start = setup()

Importing this module first limits OpenMP and OpenBLAS to one thread (unless ``OMP_NUM_THREADS`` and
``OPENBLAS_NUM_THREADS`` are set already): the chapters' arrays are small, and the machines that
execute the book are shared. The limit must be set before numpy loads, hence the environment is set at
the top of this module, before its other imports. :func:`setup` limits PyTorch too and sets the figure
and table style common to every chapter.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time

import matplotlib as mpl
import pandas as pd
import torch

from zno_book.constants import MODEL_LABELS

__all__ = ["LABELS", "MODEL_COLORS", "STYLE", "setup"]

#: matplotlib settings of every figure of the book.
STYLE = {"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "font.size": 10}
#: One colour per shipped model, the same in every figure.
MODEL_COLORS = {"linear_bp": "C0", "plip": "C1", "nnp": "C2"}
#: How tables and figures name the shipped models: {"linear_bp": "linear-BP", "plip": "PLIP", "nnp": "NNP"}.
LABELS = MODEL_LABELS


def setup() -> float:
    """One PyTorch thread, the book's figure style (:data:`STYLE`) and 130-character text tables.

    Returns
    -------
    float
        ``time.perf_counter()`` at the call: the chapter's start, for its closing timing line.
    """
    torch.set_num_threads(1)
    mpl.rcParams.update(STYLE)
    pd.set_option("display.width", 130)
    return time.perf_counter()
