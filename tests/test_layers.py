"""The package's layering: imports go downward only, and no module imports itself in a circle.

Layers (issue "one package per method"): cli -> engine, train -> metrics -> methods, data, report
-> registry, results, weights, imageio, nets, files, devices -> errors, faults. Modules of one
layer may import each other as long as no circle forms; ``__main__`` entry points may import the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "faceblur_bench"
LAYER = {"cli": 0, "engine": 1, "train": 1, "metrics": 2, "methods": 3, "data": 3, "report": 3,
         "registry": 4, "results": 4, "weights": 4, "imageio": 4, "nets": 4, "files": 4, "devices": 4,
         "errors": 5, "faults": 5, "text": 5, "aggregates": 5, "stats": 5, "__init__": 6}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("").as_posix().replace("/", ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def _imports(path: Path) -> set[str]:
    """faceblur_bench modules imported anywhere in ``path`` (relative imports resolved)."""
    mod = _module(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    out.update(f"{target}.{a.name}" for a in node.names)
                else:
                    out.add(target)
            elif node.module and node.module.startswith("faceblur_bench"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("faceblur_bench"))
    return out


def _top(mod: str) -> str:
    """Top-level module of ``faceblur_bench.x.y`` (``x``); names defined in the package's
    ``__init__`` (e.g. ``__version__``) count as the package itself."""
    parts = mod.split(".")
    if len(parts) < 2 or not ((PKG / parts[1]).is_dir() or (PKG / f"{parts[1]}.py").is_file()):
        return "__init__"
    return parts[1]


def test_imports_go_downward_only():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        src = _top(_module(path))
        for target in _imports(path):
            dst = _top(target)
            assert src in LAYER and dst in LAYER, f"{path}: unknown top-level module {src!r} or {dst!r}"
            if dst != src and LAYER[dst] < LAYER[src]:
                bad.append(f"{path.relative_to(PKG)} ({src}) imports {target} ({dst})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_circle_between_top_level_packages():
    graph: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        src = _top(_module(path))
        graph.setdefault(src, set()).update(_top(t) for t in _imports(path) if _top(t) != src)

    def reach(a: str, seen: set[str]) -> set[str]:
        for b in graph.get(a, ()):
            if b not in seen:
                seen.add(b)
                reach(b, seen)
        return seen

    circles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if a in reach(b, set()) and a < b)
    assert not circles, f"import circles between packages: {circles}"


def test_train_names_no_method():
    names = ("sappgan", "dfpg", "mspl", "shen", "cfmd", "yun")
    for path in (PKG / "train").rglob("*.py"):
        for target in _imports(path):
            assert not any(f".methods.{n}" in target for n in names), f"{path.name} imports {target}"
