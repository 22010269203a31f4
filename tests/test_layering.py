"""The package's floors (docs/ARCHITECTURE.md): no module imports from a higher floor, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import lmbrain

ROOT = Path(lmbrain.__file__).resolve().parent
GROUND = ("errors", "config", "paths", "io", "registry", "progress", "results", "clitools", "_lazy", "__init__")
FLOORS = {**dict.fromkeys(GROUND, 0), "data": 1, "features": 2, "encoding": 3, "analysis": 4, "study": 5,
          "report": 6, "cli": 7, "docs_gen": 7}


def floor(module: str) -> int | None:
    """The floor of an lmbrain module (None outside the package); command-line modules are the top floor."""
    parts = module.split(".")
    if parts[0] != "lmbrain" or len(parts) == 1:
        return None
    if parts[-1] == "cli":
        return FLOORS["cli"]
    return FLOORS[parts[1]]


def imports(path: Path) -> list[tuple[str, int]]:
    """Every lmbrain module a file imports, with the line (``from lmbrain import x`` names ``lmbrain.x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "lmbrain":
                found += [(f"lmbrain.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")


def test_every_module_has_a_floor():
    for path in ROOT.rglob("*.py"):
        assert floor(module_name(path)) is not None or module_name(path) == "lmbrain", path


def test_no_module_imports_a_higher_floor():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        here = floor(module_name(path))
        for target, line in imports(path):
            there = floor(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The parser finds lazy (function-level) imports: the test can fail."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from lmbrain.report.build import build_report\n")
    assert imports(source) == [("lmbrain.report.build", 2)]
    assert floor("lmbrain.report.build") > floor("lmbrain.data.checks")


def test_no_module_is_over_500_lines():
    """Small modules with names that say what they hold (docs/ARCHITECTURE.md)."""
    sizes = {str(p.relative_to(ROOT.parent)): len(p.read_text(encoding="utf-8").splitlines())
             for p in ROOT.rglob("*.py")}
    assert not {p: n for p, n in sizes.items() if n > 500}


def long_functions(source: str, limit: int = 60) -> dict[str, int]:
    """Functions (and methods) of a module's source longer than ``limit`` lines, decorators excluded."""
    return {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= limit}


def test_no_function_is_over_60_lines():
    """A function a reader can hold in view (issue 24); the check counts what it should."""
    assert long_functions("def f():\n" + "    x = 1\n" * 60) == {"f": 61}
    assert long_functions("def f():\n" + "    x = 1\n" * 59) == {}
    found = {f"{p.relative_to(ROOT.parent)}:{name}": n for p in ROOT.rglob("*.py")
             for name, n in long_functions(p.read_text(encoding="utf-8")).items()}
    assert not found
