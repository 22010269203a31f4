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


def import_graph() -> dict[str, set[str]]:
    """Module -> the lmbrain modules it imports (lazy imports included; ``from lmbrain.x import f``: ``lmbrain.x``)."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules and name != "lmbrain" else None

    return {m: {t for t in (resolve(name) for name, _ in imports(p)) if t and t != m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    """No two modules import each other, directly or round a loop (lazy imports count too)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert cycles(import_graph()) == []


#: containers and caches that hold state at module level
STATEFUL_CALLS = {"dict", "list", "set", "OrderedDict", "defaultdict", "Counter", "Memo"}
#: the one piece of process state in lmbrain.study: a worker process's study contexts (runner.run_chain)
ALLOWED_STATE = {"runner.WORKER_CONTEXTS"}


def module_state(source: str) -> list[str]:
    """Module-level names of a source that hold mutable state: containers, cache objects, memoised functions."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any("cache" in d for d in decorators):
                found.append(node.name)
            continue
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
            continue
        value = node.value
        called = value.func.attr if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) else (
            value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else None)
        if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
                called in STATEFUL_CALLS):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [ast.unparse(t) for t in targets]
    return found


def test_no_module_level_state_in_study():
    """Memos live on the StudyContext (issue 24): nothing in lmbrain.study keeps state at module level but a worker
    process's contexts."""
    assert module_state("X = {}\nY = (1, 2)\n@functools.lru_cache\ndef f(): pass\nZ = OrderedDict()\n") == [
        "X", "f", "Z"]
    found = {f"{p.stem}.{name}" for p in (ROOT / "study").glob("*.py") for name in module_state(p.read_text())}
    assert found == ALLOWED_STATE
