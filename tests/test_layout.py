"""The package's layout rules (docs/architecture.md, "Folders"), read from the imports.

Every `import` and `from ... import` of `shopcrm` code counts, at any depth in a module (inside
functions and `if TYPE_CHECKING:` blocks too): a circle that only type checkers follow is still
a circle for the next reader. Importing `a.b.c` runs `a` and `a.b` first, so each module also
depends on its parent packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import shopcrm

ROOT = Path(shopcrm.__file__).parent

# Stage -> the shopcrm modules it may never import (prefix match on dotted names).
FORBIDDEN = {
    "shopcrm.records": ("shopcrm.",),
    "shopcrm.errors": ("shopcrm.",),
    "shopcrm.log": ("shopcrm.",),
    "shopcrm.jsonable": ("shopcrm.",),
    "shopcrm.config": (
        "shopcrm.store",
        "shopcrm.sync",
        "shopcrm.cli",
        "shopcrm.sandbox",
        "shopcrm.demo",
        "shopcrm.connectors",
        "shopcrm.enrich",
    ),
    "shopcrm.connectors": (
        "shopcrm.store",
        "shopcrm.sync",
        "shopcrm.enrich",
        "shopcrm.cli",
        "shopcrm.sandbox",
        "shopcrm.demo",
    ),
    "shopcrm.store": (
        "shopcrm.connectors",
        "shopcrm.sync",
        "shopcrm.enrich",
        "shopcrm.cli",
        "shopcrm.sandbox",
        "shopcrm.demo",
        "shopcrm.config",
    ),
    "shopcrm.enrich": (
        "shopcrm.connectors",
        "shopcrm.sync",
        "shopcrm.cli",
        "shopcrm.sandbox",
        "shopcrm.demo",
    ),
    "shopcrm.sync": ("shopcrm.cli", "shopcrm.sandbox", "shopcrm.demo", "shopcrm.views"),
    # What the operator sees, read from the store: never from a platform.
    "shopcrm.views": ("shopcrm.cli", "shopcrm.sandbox", "shopcrm.demo", "shopcrm.connectors"),
    # The sandboxes stand in for the platforms: they know nothing of the product.
    "shopcrm.sandbox": tuple(
        f"shopcrm.{name}"
        for name in ("records", "config", "connectors", "store", "sync", "enrich", "cli", "demo")
    ),
}
# The small interfaces the config checks its values through (and nothing else of theirs).
CONFIG_MAY_USE = ("shopcrm.connectors.csv.columns", "shopcrm.enrich.syntax")
PLATFORMS = ("shopify", "woocommerce", "bigcommerce", "csv")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule when there is one
            targets = [base] + [
                f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known
            ]
        else:
            continue
        found.update(t for t in targets if t == "shopcrm" or t.startswith("shopcrm."))
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py") if "migrations" not in p.parts}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = {t for t in _imports(path, name, known) if t in known}
        parts = name.split(".")
        edges |= {".".join(parts[:i]) for i in range(1, len(parts))}  # parent packages run first
        graph[name] = edges - {name}
    return graph


GRAPH = _graph()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the path around it, or None (iterative depth-first search)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path = [start]
        on_path = {start: 0}
        pending = {start: iter(sorted(graph[start]))}
        while path:
            node = path[-1]
            nxt = next(pending[node], None)
            if nxt is None:
                path.pop()
                del on_path[node]
                done.add(node)
            elif nxt in on_path:
                return [*path[on_path[nxt] :], nxt]
            elif nxt not in done:
                on_path[nxt] = len(path)
                path.append(nxt)
                pending[nxt] = iter(sorted(graph[nxt]))
    return None


def test_the_walker_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    # shopcrm.cli.main imports its commands' modules inside the functions that run them
    assert "shopcrm.sync.push" in GRAPH["shopcrm.cli.main"] or any(
        "shopcrm.sync.push" in GRAPH[m] for m in GRAPH if m.startswith("shopcrm.cli.")
    )
    # shopcrm.connectors.registry imports the config only for type checkers
    assert "shopcrm.config.schema" in GRAPH["shopcrm.connectors.registry"]


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    planted = {k: set(v) for k, v in GRAPH.items()}
    planted["shopcrm.records"].add("shopcrm.store.upsert")  # upsert imports records
    cycle = _cycle(planted)
    assert cycle is not None
    assert cycle[0] == cycle[-1]


def test_no_import_circle_anywhere() -> None:
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_no_import_against_the_flow(stage: str) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module == stage or module.startswith(stage + ".")
        for target in targets
        if target.startswith(FORBIDDEN[stage])
        and not target.startswith(stage)
        and not (stage == "shopcrm.config" and target in CONFIG_MAY_USE)
        and not _is_parent_of_allowed(stage, target)
    )
    assert not wrong, "\n".join(wrong)


def _is_parent_of_allowed(stage: str, target: str) -> bool:
    """`shopcrm.enrich` (the package) runs when the config imports `shopcrm.enrich.syntax`."""
    return stage == "shopcrm.config" and any(
        allowed.startswith(target + ".") for allowed in CONFIG_MAY_USE
    )


def test_the_interfaces_the_config_uses_stay_small() -> None:
    """What the config imports must not pull in the config, the store or the network."""
    for interface in CONFIG_MAY_USE:
        reached: set[str] = set()
        todo = [interface]
        while todo:
            module = todo.pop()
            if module in reached:
                continue
            reached.add(module)
            todo.extend(GRAPH[module])
        heavy = sorted(
            m
            for m in reached
            if m.startswith(("shopcrm.config", "shopcrm.sync", "shopcrm.connectors.http"))
            or m.startswith("shopcrm.enrich.pipeline")
        )
        assert not heavy, f"{interface} reaches {heavy}"


def test_package_inits_import_nothing_of_ours() -> None:
    """A package's __init__ only documents it: importing one module never runs its siblings."""
    for path in ROOT.rglob("__init__.py"):
        if "migrations" in path.parts:
            continue
        name = _module_name(path)
        assert not _imports(path, name, set(GRAPH)), f"{name} imports shopcrm code"


@pytest.mark.parametrize("side", ["connectors", "sandbox"])
def test_each_platform_lives_in_one_subpackage(side: str) -> None:
    folder = ROOT / side
    for path in folder.glob("*.py"):
        assert not path.stem.startswith(tuple(f"{p}_" for p in PLATFORMS)), (
            f"{path.relative_to(ROOT)}: a platform prefix instead of a subpackage"
        )
    platforms = PLATFORMS if side == "connectors" else PLATFORMS[:3]
    for platform in platforms:
        assert (folder / platform / "__init__.py").is_file(), f"{side}/{platform}/ is missing"
