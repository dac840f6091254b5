"""Sphinx extension: tables rendered at build time from the book's recorded results, never typed.

``{verdicts-table}``
    The verdicts beside the paper's claims, from ``artefacts/<version>/findings/verdicts.json``
    (:func:`zno_book.verdicts.verdicts_path`, written by ``python -m zno_book.verdicts`` from the
    ensembles' results; the Contract: a list of rows with ``claim``, ``metric``, ``direction``, ``test``,
    ``n`` per kind, ``effect``, ``interval`` or ``p``, ``verdict``, and ``reason`` when not resolved for
    want of data). The file is read when the page is written. Without the file the page says so in one
    sentence.
``{chapter-budget-table}``
    Wall time and peak memory of each chapter, executed cold in a process of its own, from
    ``book/_static/chapter_budget.json`` (written by ``scripts/chapter_budget.py``), with the machine and
    the date of the measurement.
"""

import datetime
import json
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from zno_book.verdicts import verdicts_path

logger = logging.getLogger(__name__)
BUDGET_FILE = "book/_static/chapter_budget.json"
VERDICTS_FIELDS = ("claim", "metric", "direction", "test", "n", "effect", "verdict")
NOT_APPLICABLE = "—"


def text(value) -> str:
    """A cell's text: numbers with 3 significant digits, lists as ``[a, b]``, None as "—"."""
    if value is None:
        return NOT_APPLICABLE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(text(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{key} {text(v)}" for key, v in value.items())
    return str(value)


def table(header, rows, widths=None) -> nodes.table:
    """A docutils table: ``header`` a list of column titles, ``rows`` lists of cell contents (each a
    string or a list of inline nodes)."""
    widths = widths or [1] * len(header)
    group = nodes.tgroup(cols=len(header))
    group += [nodes.colspec(colwidth=width) for width in widths]

    def row(cells):
        line = nodes.row()
        for cell in cells:
            paragraph = nodes.paragraph()
            paragraph += [nodes.Text(cell)] if isinstance(cell, str) else cell
            line += nodes.entry("", paragraph)
        return line

    head = nodes.thead()
    head += row(header)
    body = nodes.tbody()
    body += [row(cells) for cells in rows]
    group += [head, body]
    node = nodes.table(classes=["book-table"])
    node += group
    return node


# ------------------------------------------------------------------------------------------- verdicts
class verdicts_placeholder(nodes.General, nodes.Element):
    """Where the verdicts table goes; replaced when the page is written (``doctree-resolved``)."""


class VerdictsTable(SphinxDirective):
    """``{verdicts-table}``: the verdicts of ``verdicts.json`` beside the paper's claims."""

    def run(self):
        self.env.note_dependency(str(verdicts_path()))
        return [verdicts_placeholder()]


def effect_text(row: dict) -> str:
    """The effect with its interval, or with its p-value."""
    if "interval" in row:
        return f"{text(row['effect'])} {text(row['interval'])}"
    if "p" in row:
        return f"{text(row['effect'])} (p = {text(row['p'])})"
    return text(row["effect"])


def verdict_rows(path: Path) -> list[dict]:
    """The rows of ``verdicts.json``; a missing field is an error that names the row and the field."""
    rows = json.loads(path.read_text())
    if isinstance(rows, dict):
        rows = rows["verdicts"]
    for number, row in enumerate(rows, 1):
        missing = [field for field in VERDICTS_FIELDS if field not in row]
        if not ("interval" in row or "p" in row):
            missing.append("interval or p")
        if missing:
            raise ValueError(f"{path}: row {number} ({row.get('claim', '?')!r}) lacks {', '.join(missing)}")
    return rows


def verdict_text(row: dict) -> str:
    """The verdict, with the reason when the data could not decide it."""
    return f"{row['verdict']} ({row['reason']})" if row.get("reason") else row["verdict"]


def verdicts_content(app, docname: str) -> list[nodes.Node]:
    """The table (with a caption naming its source and date), or the sentence saying there is none."""
    path = verdicts_path()
    conclusions = nodes.reference("", "What transfers, and why",
                                  refuri=app.builder.get_relative_uri(docname, "book/conclusions"))
    if not path.exists():
        shown = str(Path(*path.parts[-4:]))
        return [nodes.paragraph("", "", nodes.Text(
            "No verdicts yet: this build found no verdict table (the file "), nodes.literal("", shown), nodes.Text(
            ", written by "), nodes.literal("", "python -m zno_book.verdicts"), nodes.Text(
            " from the ensembles' results; see "), conclusions, nodes.Text(
            "), so none is shown here rather than one typed by hand."))]
    rows = verdict_rows(path)
    body = [[row["claim"], f"{row['metric']} ({row['direction']})", row["test"], text(row["n"]),
             effect_text(row), verdict_text(row)] for row in rows]
    when = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d")
    caption = nodes.paragraph("", "", nodes.Text(
        f"Verdicts computed by python -m zno_book.verdicts on {when} (discussed in "), conclusions, nodes.Text(
        "), read from "), nodes.literal("", str(Path(*path.parts[-4:]))), nodes.Text(" when this page was built."))
    return [table(["The paper's claim", "Metric (direction)", "Test", "n per kind", "Effect [interval] or p",
                   "Verdict"], body, [30, 20, 15, 15, 15, 10]), caption]


def fill_verdicts(app, doctree, docname):
    """``doctree-resolved``: replace each placeholder by the verdicts as recorded now."""
    for node in doctree.findall(verdicts_placeholder):
        node.replace_self(verdicts_content(app, docname))


# --------------------------------------------------------------------------------------- chapter budget
class ChapterBudgetTable(SphinxDirective):
    """``{chapter-budget-table}``: time and peak memory per chapter from ``chapter_budget.json``."""

    def run(self):
        path = Path(self.env.srcdir) / BUDGET_FILE
        self.env.note_dependency(str(path))
        if not path.exists():
            return [nodes.paragraph("", "", nodes.Text("No measurement recorded yet: "),
                                    nodes.literal("", "python scripts/chapter_budget.py"),
                                    nodes.Text(" writes it."))]
        record = json.loads(path.read_text())
        budget = record["budget"]
        body = [[[self.chapter_link(row["chapter"])], f"{row['wall_s']:.0f}", text(row.get("cpu_s")),
                 f"{row['peak_rss_mb']:,}",
                 f"{row['peak_pss_mb']:,}", text(row.get("load_average_before", record["load_average_before"][0])),
                 ("yes" if row["within_budget"] else "no") if row["ok"] else "failed"]
                for row in record["chapters"]]
        header = ["Chapter", "Wall time (s)", "CPU time (s)", "Peak memory, RSS sum (MB)", "Peak memory, PSS sum (MB)",
                  "Load average at its start", f"Within {budget['cpu_s']:.0f} s CPU and {budget['peak_mb']:,.0f} MB"]
        machine = record["machine"]
        dates = sorted({row.get("measured", record["date"])[:10] for row in record["chapters"]})
        caption = (f"Measured {' to '.join(dict.fromkeys([dates[0], dates[-1]]))} on {machine['processor']}, "
                   f"{machine['cores']} cores, {machine['memory_gb']} GB, Python {machine['python']}; "
                   f"{record['mode']}. The machine was shared: the wall time includes waiting for a core, "
                   "the CPU time does not. MB = 10⁶ bytes.")
        return [table(header, body, [21, 10, 10, 16, 16, 12, 15]), nodes.paragraph("", caption)]

    def chapter_link(self, name: str) -> addnodes.pending_xref:
        """A reference to chapter ``name`` showing its title."""
        node = addnodes.pending_xref("", refdomain="std", reftype="doc", reftarget=f"/book/{name}",
                                     refexplicit=False, refdoc=self.env.docname)
        node += nodes.inline("", name)
        return node


def setup(app):
    app.add_node(verdicts_placeholder)
    app.add_directive("verdicts-table", VerdictsTable)
    app.add_directive("chapter-budget-table", ChapterBudgetTable)
    app.connect("doctree-resolved", fill_verdicts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
