"""Sphinx extension: re-execute a cached notebook when the files its outputs depend on change.

With ``execute_notebooks: cache``, myst-nb keys each executed notebook (in jupyter-cache) on the notebook
itself: its code cells and kernel. It cannot see what the code reads: the library and project code, the
data, the shipped models, and for the closing chapter the findings that the other chapters record. This
extension adds those inputs to the key. The setting ``execution_inputs`` (in ``_config.yml`` under
``sphinx: config:``) maps a document name, or ``"*"`` for every notebook, to glob patterns relative to the
book's root. When a notebook is read, the SHA-256 of the files its patterns match (paths and contents) is
compared with the one stored with its cache record when that record was made (``execution_inputs.json``
in the cache folder); if they differ, or none was stored, the record is removed and myst-nb executes the
notebook again.

Documents are read in the order of ``_toc.yml`` (``toc_order``), so a chapter that re-executes and
records new findings does so before the closing chapter checks its inputs.
"""

import hashlib
import json
from pathlib import Path

from jupyter_cache import get_cache
from myst_nb.core.read import create_nb_reader
from sphinx.util import logging

logger = logging.getLogger(__name__)
STATE = "execution_inputs.json"


def fingerprint(root: Path, patterns) -> str:
    """SHA-256 of the files below ``root`` that match ``patterns``: their relative paths and contents.

    Parameters
    ----------
    root : Path
        The book's root folder.
    patterns : iterable of str
        Glob patterns relative to ``root`` (``**`` recurses).

    Returns
    -------
    str
        Hex digest; the same for the same set of files with the same bytes.
    """
    digest = hashlib.sha256()
    files = sorted({path for pattern in patterns for path in root.glob(pattern) if path.is_file()})
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def patterns_for(docname: str, inputs: dict) -> list[str]:
    """The patterns of ``"*"`` and of ``docname`` in the ``execution_inputs`` setting."""
    return [*inputs.get("*", []), *inputs.get(docname, [])]


def cache_folder(app) -> Path:
    """The jupyter-cache folder myst-nb uses (``execute.cache`` of ``_config.yml``, else its default)."""
    configured = app.config.nb_execution_cache_path
    return Path(configured) if configured else Path(app.outdir).parent / ".jupyter_cache"


def read_notebook(app, docname):
    """Document ``docname`` as the notebook myst-nb makes of it (``.ipynb`` or MyST Markdown), or None
    if it is not a notebook."""
    path = app.env.doc2path(docname)
    text = Path(path).read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), app.env.myst_config, app.env.mystnb_config, text)
    return None if reader is None else reader.read(text)


def cached_record(app, notebook):
    """The jupyter-cache and the record matching ``notebook`` as it is now (None if not cached)."""
    cache = get_cache(cache_folder(app))
    try:
        return cache, cache.match_cache_notebook(notebook)
    except KeyError:
        return cache, None


def read_state(app) -> dict:
    """Record id → fingerprint of the inputs it was executed with."""
    path = cache_folder(app) / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(app, state: dict) -> None:
    path = cache_folder(app) / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")


#: docname → fingerprint of its inputs when it was read (between ``source-read`` and ``doctree-read``)
_read_with = {}


def drop_stale_record(app, docname, source):
    """``source-read``: remove the cache record of notebook ``docname`` unless it was executed with the
    inputs as they are now (records without a stored fingerprint count as stale)."""
    if app.config.nb_execution_mode != "cache":
        return
    notebook = read_notebook(app, docname)
    if notebook is None:
        return
    current = fingerprint(Path(app.srcdir), patterns_for(docname, app.config.execution_inputs))
    _read_with[docname] = current
    cache, record = cached_record(app, notebook)
    if record is not None and read_state(app).get(str(record.pk)) != current:
        cache.remove_cache(record.pk)
        logger.info(f"{docname}: its inputs changed since the cached execution; executing it again")


def store_fingerprint(app, doctree):
    """``doctree-read``: after myst-nb executed (or took from the cache) the notebook, store the inputs'
    fingerprint with its cache record."""
    docname = app.env.docname
    if docname not in _read_with:
        return
    current = _read_with.pop(docname)
    _, record = cached_record(app, read_notebook(app, docname))
    if record is not None:
        state = read_state(app)
        state[str(record.pk)] = current
        write_state(app, state)


def setup(app):
    app.add_config_value("execution_inputs", {}, "env", [dict])
    app.connect("source-read", drop_stale_record)
    app.connect("doctree-read", store_fingerprint)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
