"""Pictures of structures for the chapters: a static drawing every page shows, and an interactive
nglview widget for readers who run the chapter (Jupyter, Binder).

The rendered book cannot run a widget, so a chapter shows a structure twice: :func:`draw` makes the
matplotlib drawing the HTML keeps (ASE's :func:`~ase.visualize.plot.plot_atoms`, ASE's Jmol colours,
Zn–O bonds as grey lines), and :func:`widgets` the nglview views, in a cell tagged ``remove-output``
whose output the HTML leaves out::

    widgets({"wurtzite (10-10) slab": slab, "(ZnO)12 cage": cage})          # remove-output
    draw({"wurtzite (10-10) slab": slab, "(ZnO)12 cage": cage}, rotations)  # shown

The module needs the book's optional dependencies (``pip install -e '.[book]'``: nglview, which brings
ipywidgets); the rest of :mod:`zno_book` does not import it.
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets
import matplotlib.pyplot as plt
import nglview
import numpy as np
from ase import Atoms
from ase.data.colors import jmol_colors
from ase.io.utils import PlottingVariables
from ase.neighborlist import neighbor_list
from ase.visualize.plot import plot_atoms
from matplotlib.patches import Patch

__all__ = ["BOND", "RADII", "bonds", "draw", "draw_structure", "widgets"]

#: Å, the longest Zn–O distance drawn as a bond: longer than every Zn–O bond of the six polymorphs,
#: shorter than any second-neighbour distance.
BOND = 2.4
#: Radius factor of the spheres of :func:`draw_structure` (of ASE's covalent radii).
RADII = 0.35


def bonds(atoms: Atoms, cutoff: float = BOND) -> np.ndarray:
    """The Zn–O pairs of the drawing: atoms closer than ``cutoff``, inside the drawn atoms only.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure as drawn (its periodic images are not bonded to it).
    cutoff : float
        Å.

    Returns
    -------
    numpy.ndarray
        (n_bonds, 2) int, each pair once (i < j).
    """
    free = atoms.copy()
    free.pbc = False
    i, j = neighbor_list("ij", free, {("Zn", "O"): cutoff})
    keep = i < j
    return np.column_stack([i[keep], j[keep]])


def draw_structure(ax, atoms: Atoms, rotation: str = "", cutoff: float = BOND, title: str | None = None):
    """Draw one structure on a matplotlib axis: spheres in ASE's Jmol colours, Zn–O bonds, the cell.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    atoms : ase.Atoms
        The structure (its cell edges are drawn when it has a cell).
    rotation : str
        ASE's viewing rotation, e.g. ``"-90x,30y"`` (default: along z).
    cutoff : float
        Å, the longest Zn–O distance drawn as a bond.
    title : str, optional
        The panel's title.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, with axes in Å.
    """
    plot_atoms(atoms, ax, rotation=rotation, radii=RADII)
    xy = PlottingVariables(atoms, rotation=rotation, radii=RADII, scale=1).positions[:, :2]  # same projection
    for a, b in bonds(atoms, cutoff):
        ax.plot(*xy[[a, b]].T, "-", color="0.4", lw=2, zorder=0.5)
    if title is not None:
        ax.set_title(title, fontsize=10)
    ax.set_axis_on()  # plot_atoms hides the axes; the panels keep them, in Å
    ax.set(xlabel="Å", ylabel="Å")
    ax.tick_params(labelsize=7)
    return ax


def draw(structures: Mapping[str, Atoms], rotations: Mapping[str, str] | None = None, columns: int = 3,
         panel_size: tuple[float, float] = (4.0, 4.0), cutoff: float = BOND):
    """One panel per structure, with a legend of the elements: the static picture of the HTML.

    Parameters
    ----------
    structures : mapping of str to ase.Atoms
        Panel title → structure.
    rotations : mapping of str to str, optional
        Panel title → ASE viewing rotation (default: along z for every panel).
    columns : int
        Panels per row.
    panel_size : tuple of float
        Width and height of a panel, inches.
    cutoff : float
        Å, the longest Zn–O distance drawn as a bond.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``structures`` is empty or ``rotations`` names a structure that is not drawn.
    """
    if not structures:
        raise ValueError("no structure to draw: pass a mapping of panel titles to ase.Atoms")
    rotations = dict(rotations or {})
    unknown = sorted(set(rotations) - set(structures))
    if unknown:
        raise ValueError(f"rotations given for {unknown}, which are not among the structures {list(structures)}")
    rows = -(-len(structures) // columns)
    width = min(columns, len(structures))
    fig, axes = plt.subplots(rows, width, figsize=(panel_size[0] * width, panel_size[1] * rows), squeeze=False)
    for ax, (title, atoms) in zip(axes.ravel(), structures.items()):
        draw_structure(ax, atoms, rotations.get(title, ""), cutoff, title)
    for ax in axes.ravel()[len(structures):]:
        ax.set_axis_off()
    fig.legend([Patch(color=jmol_colors[30]), Patch(color=jmol_colors[8])], ["Zn", "O"], loc="upper right",
               ncol=2)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def widgets(structures: Mapping[str, Atoms], columns: int = 3, size: tuple[int, int] = (300, 260),
            unit_cell: bool = True) -> ipywidgets.GridBox:
    """nglview views of the structures in a grid, each under its title (drag to rotate, scroll to zoom).

    Parameters
    ----------
    structures : mapping of str to ase.Atoms
        Title → structure.
    columns : int
        Views per row.
    size : tuple of int
        Width and height of a view, pixels.
    unit_cell : bool
        Draw the cell of periodic structures.

    Returns
    -------
    ipywidgets.GridBox
        Shows in a running notebook; the rendered book leaves it out (tag the cell ``remove-output``).

    Raises
    ------
    ValueError
        If ``structures`` is empty.
    """
    if not structures:
        raise ValueError("no structure to show: pass a mapping of titles to ase.Atoms")
    panels = []
    for title, atoms in structures.items():
        view = nglview.show_ase(atoms)
        if unit_cell and atoms.pbc.any():
            view.add_unitcell()
        view.layout.width, view.layout.height = f"{size[0]}px", f"{size[1]}px"
        panels.append(ipywidgets.VBox([ipywidgets.HTML(f"<b>{title}</b>"), view]))
    layout = ipywidgets.Layout(grid_template_columns=f"repeat({columns}, {size[0] + 10}px)")
    return ipywidgets.GridBox(panels, layout=layout)
