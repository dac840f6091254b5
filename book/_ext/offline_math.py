"""Sphinx extension: MathJax served from the built book, so formulas render without a network.

MathJax 3 comes from the PyPI package ``sphinx-mathjax-offline`` (in the ``book`` extra of
``pyproject.toml``), which ships MathJax's browser files; its folder ``mathjax/`` is added to the static
files, so the build copies it to ``_build/html/_static/mathjax/``. ``mathjax_path`` in ``_config.yml``
names the component to load from there (``mathjax/tex-svg.js``: TeX input, SVG output, which needs no
web fonts); ``mathjax3_config`` (the book's macros) applies unchanged.
"""

import importlib.util
from pathlib import Path

from sphinx.errors import ConfigError

PACKAGE = "sphinx-mathjax-offline"


def mathjax_static_folder() -> Path:
    """The folder holding ``mathjax/`` in the installed ``sphinx-mathjax-offline`` package.

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        If the package is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"MathJax for offline reading comes from the PyPI package {PACKAGE}, which is not "
                          "installed: pip install -e '.[book]' (make book does)")
    return Path(spec.origin).parent / "static"


def serve_mathjax(app, config):
    """``config-inited``: copy MathJax into ``_static`` and check that ``mathjax_path`` is one of its files."""
    folder = mathjax_static_folder()
    if not (folder / config.mathjax_path).is_file():
        raise ConfigError(f"mathjax_path {config.mathjax_path!r} is not a file of {folder}: choose one of "
                          f"{sorted(p.name for p in (folder / 'mathjax').glob('tex-*.js'))} as mathjax/<name>")
    config.html_static_path.append(str(folder))


def setup(app):
    app.connect("config-inited", serve_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
