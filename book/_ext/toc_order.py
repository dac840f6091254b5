"""Sphinx extension: read (and so execute) the book's documents in the order of ``_toc.yml``.

Sphinx reads documents in alphabetical order; myst-nb executes each notebook as it is read. The closing
chapter reads the findings that the chapters before it record, so it must be executed after them. This
extension reorders the list of documents to read, in place, to the table of contents' order (documents
not in the table of contents keep their alphabetical order, after it).
"""

from sphinx_external_toc.api import FileItem


def toc_docnames(site_map) -> list[str]:
    """Docnames of ``site_map`` (sphinx-external-toc) in reading order, root first, depth first."""
    order = []

    def visit(docname):
        order.append(docname)
        for subtree in site_map[docname].subtrees:
            for item in subtree.items:
                if isinstance(item, FileItem):
                    visit(str(item))

    visit(site_map.root.docname)
    return order


def reorder(app, env, docnames):
    position = {name: k for k, name in enumerate(toc_docnames(env.external_site_map))}
    docnames.sort(key=lambda name: (position.get(name, len(position)), name))


def setup(app):
    app.connect("env-before-read-docs", reorder)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
