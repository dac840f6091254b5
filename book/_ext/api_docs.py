"""Sphinx extension: the API reference shows ``mliplib``'s own members, with its docstrings read as written.

Two rules for autodoc, both about how the docstrings are written rather than what they say:

- A class's members that ``mliplib`` does not define are left out: methods inherited from scikit-learn
  (``get_params``, the metadata-routing ``set_*_request``), PyTorch or ASE belong to those libraries'
  documentation, and their docstrings refer to pages this book does not have.
- The numpydoc docstrings use plain mathematical notation that reStructuredText reads as markup: ``|r_ij|``
  (a norm, not a substitution) and fitted attributes such as ``coef_`` (not hyperlink references). Outside
  inline literals and roles, ``|`` and a ``_`` that ends a word are escaped, so they print as written.
  Literal blocks and directives (after a line ending in ``::``), and doctest lines are left
  alone.
"""

import re

#: inline literals, interpreted text and roles (``...``, `...`, :role:`...`): left as they are
PROTECTED = re.compile(r"``.+?``|(?::[\w:.-]+:)?`[^`]+`_{0,2}")
#: a bar, or an underscore ending a word (after a letter or digit, before no word character)
MARKUP = re.compile(r"\||(?<=[A-Za-z0-9])_(?![A-Za-z0-9_])")


def escape_plain_text(line: str) -> str:
    """``line`` with ``|`` and word-final ``_`` escaped outside literals and roles.

    Parameters
    ----------
    line : str
        One line of a docstring.

    Returns
    -------
    str
    """
    out, start = [], 0
    for match in PROTECTED.finditer(line):
        out.append(MARKUP.sub(lambda m: "\\" + m.group(0), line[start:match.start()]))
        out.append(match.group(0))
        start = match.end()
    out.append(MARKUP.sub(lambda m: "\\" + m.group(0), line[start:]))
    return "".join(out)


def escape_docstring(app, what, name, obj, options, lines):
    """``autodoc-process-docstring``: escape plain-text markup in the prose lines, in place."""
    block_indent = None  # indentation of the line that opened a literal block or a directive
    for number, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and (not stripped or indent > block_indent):
            continue
        block_indent = indent if stripped.endswith("::") else None
        if not stripped.startswith(">>>"):
            lines[number] = escape_plain_text(line)


def skip_foreign_members(app, what, name, obj, skip, options):
    """``autodoc-skip-member``: skip a class member defined outside ``mliplib``."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module and not module.startswith("mliplib"):
        return True
    return None


def setup(app):
    # numpydoc's own docstring processing runs at priority 500: escape before it
    app.connect("autodoc-process-docstring", escape_docstring, priority=400)
    app.connect("autodoc-skip-member", skip_foreign_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
