"""The package's shape: imports between its parts run one way (module-level and function-level imports alike),
and the selection core imports nothing heavier than torch."""

import ast
from pathlib import Path

SAS = Path(__file__).resolve().parents[1] / "sas"


def part_of(module: str) -> str:
    """sas.pools.dit -> pools; sas.config -> config: the unit imports are counted between."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    """Every sas module a file imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sas.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("sas"):
            if node.module == "sas":
                found |= {f"sas.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in SAS.rglob("*.py"):
        rel = path.relative_to(SAS)                   # pools/dit.py -> pools; config.py -> config
        if rel == Path("__init__.py"):
            continue
        here = rel.parts[0].removesuffix(".py")
        edges.setdefault(here, set()).update(part_of(m) for m in imports(path) if part_of(m) != here)
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of parts (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(edges):
        if u not in state:
            found = visit(u)
            if found:
                return found
    return None


def test_no_import_cycle_between_the_parts_of_the_package():
    edges = graph()
    assert {"pools", "generators", "data", "encoders", "evaluation", "models", "report"} <= set(edges)
    assert "pools" not in edges["generators"], "generators import pools: sampling loops belong to generators"
    assert cycle(edges) is None, f"import cycle: {' -> '.join(cycle(edges))}"


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_selection_core_imports_only_torch_and_its_inputs():
    for name in ("scores.py", "sampling.py", "inputs.py"):
        tree = ast.parse((SAS / name).read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert roots <= {"torch", "math", "operator", "dataclasses", "typing", "__future__", "sas"}, (name, roots)
        assert imports(SAS / name) <= {"sas.inputs", "sas.scores"}, name
