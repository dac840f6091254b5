"""What a reader of the rendered book would scroll through: long code lines and visible plumbing cells.

    python scripts/notebook_layout.py                      # every chapter, book/*.ipynb
    python scripts/notebook_layout.py book/linear.ipynb    # some chapters
    python scripts/notebook_layout.py --width 100

Two lists, for code cells only:

1. Code lines longer than ``--width`` characters (default 100) in cells the page shows (no ``remove-input``
   or ``remove-cell`` tag): they run past the column.
2. Cells the page shows in full (none of the tags ``hide-input``, ``hide-cell``, ``remove-input``,
   ``remove-cell``) that teach nothing on the page:

   - ``asserts``: every statement is an ``assert`` (integrity checks: hide or remove them; nbval still runs
     them);
   - ``mostly asserts``: at least half the statements are asserts;
   - ``no visible result``: only imports, definitions, assignments, loops and ``glue(...)`` calls, with no
     final expression, print, display or figure (data wrangling: consider ``hide-input``).

Prints one line per finding (notebook, cell number counted from 1 over all cells, the reason, the first
line of the cell) and exits with status 1 if there is any.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
REMOVED = {"remove-input", "remove-cell"}
#: calls that show something on the page
SHOWS = {"print", "display", "show", "plot", "figure", "subplots", "imshow", "bar", "scatter", "hist",
         "savefig", "Markdown", "HTML"}
QUIET = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AugAssign, ast.AnnAssign,
         ast.For, ast.With, ast.If, ast.Try, ast.Delete)


def python_source(cell_source: str) -> str:
    """The cell without IPython magics and shell lines (which ``ast`` cannot parse)."""
    return "\n".join(line for line in cell_source.splitlines() if not line.lstrip().startswith(("%", "!")))


def called_names(tree: ast.AST) -> set[str]:
    """Names of every function or method called anywhere in ``tree`` (``plt.plot(...)`` gives ``plot``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            names.add(function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", ""))
    return names


def is_glue(statement: ast.stmt) -> bool:
    """``glue(...)`` as a statement (myst-nb; with ``display=False`` it shows nothing where it is)."""
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and getattr(statement.value.func, "id", None) == "glue")


def plumbing_reason(source: str) -> str | None:
    """Why a shown cell teaches nothing on the page (see the module docstring), or None."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return None
    body = tree.body
    if not body:
        return None
    asserts = sum(isinstance(statement, ast.Assert) for statement in body)
    if asserts == len(body):
        return "asserts"
    if 2 * asserts >= len(body):
        return "mostly asserts"
    quiet = all(isinstance(s, (*QUIET, ast.Assert)) or is_glue(s) for s in body)
    if quiet and not (called_names(tree) & SHOWS):
        return "no visible result"
    return None


def findings(path: Path, width: int) -> list[str]:
    """The lines to report for one notebook."""
    notebook = nbformat.read(path, as_version=4)
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    out = []
    for number, cell in enumerate(notebook.cells, 1):
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        first = cell.source.strip().splitlines()[0][:70] if cell.source.strip() else ""
        if not tags & REMOVED:
            for line_number, line in enumerate(cell.source.splitlines(), 1):
                if len(line) > width:
                    out.append(f"{name} cell {number} line {line_number}: {len(line)} characters: {line[:70]}…")
        reason = None if tags & HIDDEN else plumbing_reason(cell.source)
        if reason:
            out.append(f"{name} cell {number}: {reason} (tags {sorted(tags) or 'none'}): {first}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: book/*.ipynb")
    parser.add_argument("--width", type=int, default=100, help="longest code line the column holds")
    args = parser.parse_args(argv)
    paths = [path.resolve() for path in args.notebooks] or sorted((ROOT / "book").glob("*.ipynb"))
    lines = [line for path in paths for line in findings(path, args.width)]
    print("\n".join(lines) if lines else "nothing to report")
    long_lines = sum(" line " in line for line in lines)
    print(f"\n{long_lines} code lines over {args.width} characters, {len(lines) - long_lines} shown cells "
          f"without teaching content, in {len(paths)} notebooks")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
