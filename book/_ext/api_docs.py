"""Sphinx extension: the API reference shows the members ``mliplib`` and ``zno_book`` define and document,
with their docstrings read as written.

Two rules for autodoc, both about how the docstrings are written rather than what they say:

- A class's members that the two packages do not define are left out: methods inherited from
  scikit-learn (``get_params``, the metadata-routing ``set_*_request``), PyTorch or ASE belong to those
  libraries' documentation, and their docstrings refer to pages this book does not have. So is a method
  the packages override without a docstring of their own where the docstring autodoc would inherit is
  another library's (``submit`` of the executors: Python's ``Executor.submit``, in its own markup).
- The numpydoc docstrings use plain mathematical notation that reStructuredText reads as markup: ``|r_ij|``
  (a norm, not a substitution) and fitted attributes such as ``coef_`` (not hyperlink references). Outside
  inline literals and roles, ``|`` and a ``_`` that ends a word are escaped, so they print as written.
  Literal blocks and directives (after a line ending in ``::``), and doctest lines are left
  alone.
"""

import inspect
import re
import sys

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


OWN_PACKAGES = ("mliplib", "zno_book")


def is_own(module: str | None) -> bool:
    """Whether ``module`` (a module's name) belongs to ``mliplib`` or ``zno_book``."""
    return bool(module) and module.split(".")[0] in OWN_PACKAGES


def docstring_owner(obj) -> type | None:
    """The class whose docstring autodoc would show for method ``obj``: the first class in the method
    resolution order of ``obj``'s class that defines the method with a docstring (None if not found)."""
    owner = sys.modules.get(getattr(obj, "__module__", None) or "")
    for part in getattr(obj, "__qualname__", "").split(".")[:-1]:
        owner = getattr(owner, part, None)
    if not inspect.isclass(owner):
        return None
    for cls in owner.__mro__:
        member = cls.__dict__.get(obj.__name__)
        if member is not None and getattr(member, "__doc__", None):
            return cls
    return None


def skip_foreign_members(app, what, name, obj, skip, options):
    """``autodoc-skip-member``: skip a class member defined outside ``mliplib`` and ``zno_book``, or one
    whose docstring would be inherited from a class outside them."""
    if what != "class" or not getattr(obj, "__module__", None):
        return None
    if not is_own(obj.__module__):
        return True
    if inspect.isfunction(obj) and obj.__doc__ is None:
        owner = docstring_owner(obj)
        if owner is not None and not is_own(owner.__module__):
            return True
    return None


def setup(app):
    # numpydoc's own docstring processing runs at priority 500: escape before it
    app.connect("autodoc-process-docstring", escape_docstring, priority=400)
    app.connect("autodoc-skip-member", skip_foreign_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
