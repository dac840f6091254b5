"""The layout of the two packages, checked on their source with ``ast`` (nothing is imported):

- imports of mliplib and zno_book modules sit at module top, never inside a function;
- the import graph of mliplib and zno_book modules has no cycle, the library never imports the
  project, and inside the library imports go down the layers neighbours → builders, descriptors →
  models → md, properties, transferability (→ the package's ``mliplib.load``);
- no module reaches into another module's private names (``module._name`` or ``from m import _name``).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mliplib", "zno_book")
#: Library layers: a module may import modules of its own layer or below (longest matching prefix).
LAYERS = {"mliplib.neighbors": 0, "mliplib.builders": 1, "mliplib.descriptors": 1, "mliplib.models": 2,
          "mliplib.md": 3, "mliplib.properties": 3, "mliplib.transferability": 3, "mliplib": 4}
#: Function-level imports and private-name access in modules that other branches own and are rewriting
#: (the models' file format, the descriptor kernels), listed so that this branch's checks can be green;
#: delete the entries once those branches are merged (the checks then hold for every module).
PENDING_FUNCTION_IMPORTS: set = set()
PENDING_PRIVATE_ACCESS: set = set()


def modules() -> dict[str, Path]:
    """Module name → file, for every module of the two packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported mliplib/zno_book module, inside a function?, line) for every import statement of ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
              for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, path)
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                       for alias in node.names]
        else:
            continue
        out += [(t, id(node) in inside, node.lineno) for t in targets if t.split(".")[0] in PACKAGES]
    return out


def graph() -> dict[str, set[str]]:
    """Every import of a mliplib/zno_book module by another, at module top or inside functions."""
    return {m: {t for t, _, _ in imports(m) if t != m} for m in MODULES}


def layer(module: str) -> int:
    return LAYERS[max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)]


def test_both_packages_are_found():
    assert {"mliplib.neighbors", "mliplib.builders", "zno_book.paths", "zno_book.reference.runner"} <= set(MODULES)


def test_no_function_level_imports_of_our_modules():
    found = {(m, t, line) for m in MODULES for t, in_function, line in imports(m) if in_function}
    offenders = sorted(f"{m}:{line} imports {t}" for m, t, line in found if (m, t) not in PENDING_FUNCTION_IMPORTS)
    assert not offenders, "imports belong at module top:\n" + "\n".join(offenders)


def test_import_graph_is_acyclic_and_layered():
    edges = graph()
    assert not [(m, t) for m, ts in edges.items() for t in ts if t not in MODULES], "an import of a missing module"
    upward = sorted(f"{m} -> {t}" for m, ts in edges.items() if m.startswith("mliplib")
                    for t in ts if t.startswith("zno_book") or layer(t) > layer(m))
    assert not upward, "the library imports the project, or a lower layer imports a higher one:\n" + "\n".join(upward)
    pending = {(m, t) for m, t in PENDING_FUNCTION_IMPORTS}
    acyclic = {m: {t for t in ts if (m, t) not in pending} for m, ts in edges.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(acyclic[m]):
            if state.get(t) == "open":
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(acyclic):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_access_to_other_modules_private_names(module):
    tree = ast.parse(MODULES[module].read_text())
    aliases, offenders = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, MODULES[module])
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    offenders.append(f"line {node.lineno}: from {source} import {alias.name}")
                if f"{source}.{alias.name}" in MODULES:
                    aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            offenders.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    if module in PENDING_PRIVATE_ACCESS and offenders:
        pytest.xfail(f"{module} belongs to another branch: {offenders}")
    assert not offenders, f"{module} uses private names of other modules: {offenders}"
