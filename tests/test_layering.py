"""The package's layering: every import of ecaljenkins, lazy ones included, runs one way.

A lower module importing a higher one (the library importing the CLI, a foundation
module importing the domain) is how a package grows import cycles and slow
start-ups; this test reads the import statements themselves, so it fails the day
one is added, whether it sits at the top of a module or inside a function.
"""

import ast
import graphlib
from pathlib import Path

import ecaljenkins

PACKAGE = Path(ecaljenkins.__file__).parent
#: modules every other one may build on: they import only each other
FOUNDATION = {"ecaljenkins.errors", "ecaljenkins.names", "ecaljenkins.settings",
              "ecaljenkins.resources", "ecaljenkins.schema"}
#: the top of the package: nothing below them imports them
EDGES = ("ecaljenkins.cli", "ecaljenkins.demo")


def _module_name(path: Path) -> str:
    parts = ("ecaljenkins",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """{module: the ecaljenkins modules it imports anywhere in its code}."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            found.update(c for c in candidates if c in modules)
        # the package root only holds __version__ and a lazy Handler: importing it is free
        graph[name] = found - {name, "ecaljenkins"}
    return graph


def test_the_modules_are_found():
    graph = _imports()
    assert {"ecaljenkins.influx", "ecaljenkins.scheduler.cycle", "ecaljenkins.cli.common"} \
        <= set(graph)
    assert "ecaljenkins.schema" in graph["ecaljenkins.campaign"]


def test_no_import_cycle_even_through_lazy_imports():
    graph = _imports()
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None


def test_the_library_never_imports_the_commands_or_the_demo():
    wrong = sorted(f"{name} imports {dep}" for name, deps in _imports().items()
                   if not name.startswith(EDGES) for dep in deps if dep.startswith(EDGES))
    assert wrong == []


def test_foundation_modules_import_only_each_other():
    graph = _imports()
    wrong = sorted(f"{name} imports {dep}" for name in FOUNDATION
                   for dep in graph[name] - FOUNDATION)
    assert wrong == []
