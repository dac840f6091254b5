"""Plain-text tables of the list-of-dict rows returned by :func:`~mliplib.properties.bulk.bulk_summary`,
:func:`~mliplib.properties.nanoparticles.compare_structures` and friends (no pandas needed)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table"]


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> str:
    """Fixed-width text table of rows of dicts, right-aligned.

    Parameters
    ----------
    rows : sequence of dict
        The rows; a missing key or None gives an empty cell.
    columns : sequence of str, optional
        The columns, in order (default: the keys of the first row).
    floatfmt : str
        Format of float cells.

    Returns
    -------
    str
        Header, rule and one line per row; "" for no rows.
    """
    rows = list(rows)
    if not rows:
        return ""
    columns = list(columns) if columns is not None else list(rows[0])

    def cell(value) -> str:
        if isinstance(value, float):
            return format(value, floatfmt)
        return "" if value is None else str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[k]) for r in body)) for k, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in body]
    return "\n".join(lines)
