"""zno_book.views: the static drawing and the nglview widgets of a structure."""

import ipywidgets
import matplotlib
import numpy as np
import pytest
from ase import Atoms

from zno_book.structures import polymorph
from zno_book.views import bonds, draw, widgets

matplotlib.use("Agg")


def test_bonds_of_wurtzite_are_its_four_fold_coordination():
    atoms = polymorph("wurtzite").repeat((3, 3, 3))
    pairs = bonds(atoms)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    per_zn = np.bincount(np.where(atoms.numbers[pairs[:, 0]] == 30, pairs[:, 0], pairs[:, 1]),
                         minlength=len(atoms))[atoms.numbers == 30]
    # an inner Zn has its four O; none has more (drawn atoms only: no periodic images)
    assert per_zn.max() == 4 and (per_zn == 4).sum() > 0
    assert {tuple(sorted(atoms.numbers[p])) for p in pairs} == {(8, 30)}


def test_draw_makes_one_panel_per_structure_and_blanks_the_rest():
    structures = {"wurtzite": polymorph("wurtzite"), "ZnO dimer": Atoms("ZnO", positions=[[0, 0, 0], [0, 0, 1.7]])}
    fig = draw(structures, {"wurtzite": "-90x"}, columns=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["wurtzite", "ZnO dimer"]
    assert fig.axes[1].get_lines(), "the dimer's bond is drawn"


def test_draw_and_widgets_refuse_bad_input():
    with pytest.raises(ValueError, match="no structure"):
        draw({})
    with pytest.raises(ValueError, match="rotations given for"):
        draw({"a": polymorph("rocksalt")}, {"b": "10x"})
    with pytest.raises(ValueError, match="no structure"):
        widgets({})


def test_widgets_are_a_grid_of_titled_views():
    grid = widgets({"rocksalt": polymorph("rocksalt"), "dimer": Atoms("ZnO", positions=[[0, 0, 0], [0, 0, 1.7]])},
                   columns=2)
    assert isinstance(grid, ipywidgets.GridBox) and len(grid.children) == 2
    assert "rocksalt" in grid.children[0].children[0].value
