"""The layering of docs/design.md ("Layers and why"), checked on the code: every module's imports
(parsed, not run; the ones inside functions too) may reach only its own layer or those below; the
front ends (web/, cli*.py) import no sqlalchemy and no store.schema and run no query themselves;
nothing imports a front end but the entry points. A deliberately bad module must fail the check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "academichub"

# The first name under academichub/ -> its layer; a module may import its own layer and those
# below. Kept in step with the diagram in docs/design.md.
LAYERS: dict[str, int] = {
    # 0: the shared vocabulary every layer may use
    "": 0, "__init__": 0, "errors": 0, "settings": 0, "model": 0, "names": 0, "cleantext": 0, "identifiers": 0,
    "terminal": 0,
    "sources": 1, "venues": 1, "taxonomy": 1,  # upstreams, the journal catalog (which names their feeds), arXiv's categories
    "store": 2,
    "ingest": 3,
    "rank": 4, "brief": 4, "delivery": 4, "export": 4,  # export: BibTeX/RIS/CSL-JSON writers, Zotero items and pushes
    "app": 5,  # the use cases
    # 6: processes over the app layer that are not user front ends
    "workers": 6, "jobs": 6, "bench": 6, "bench_daily": 6, "bench_search": 6, "mcp_server": 6, "bench_scale": 6,
    # 7: the front ends
    "web": 7, "cli": 7, "cli_brief": 7, "cli_radar": 7, "cli_jobs": 7, "cli_sources": 7, "cli_mcp": 7, "cli_delivery": 7, "cli_export": 7, "cli_users": 7, "__main__": 7,
}
FRONT_ENDS = ("web", "cli", "cli_")  # first names (cli_ is a prefix)
ENTRY_POINTS = {"cli", "cli_brief", "cli_radar", "cli_jobs", "cli_sources", "cli_mcp", "cli_delivery", "cli_export", "cli_users", "__main__"}  # may import a front end
NO_SQL_IN_FRONT_ENDS = ("sqlalchemy", f"{PACKAGE}.store.schema")
QUERY_CALLS = {"execute", "exec_driver_sql", "scalar", "scalars"}  # a front end calling these runs SQL itself


def _first(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_front_end(module: str) -> bool:
    first = _first(module)
    return first in ("web", "cli") or first.startswith("cli_") or first == "__main__"


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, imported module) for every import of the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import cli` names a module
                candidate = f"{target}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else target))
    return found


def _query_calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        (node.lineno, node.func.attr) for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_CALLS
    ]


def layer_violations(root: Path) -> list[str]:
    """Every breach of the layering under root/academichub, one line each (empty: none)."""
    known = _modules(root)
    problems = []
    for module, path in known.items():
        where = f"{path.relative_to(root)}"
        first = _first(module)
        if first not in LAYERS and not first.startswith("cli_"):
            problems.append(f"{where}: {PACKAGE}.{first} has no layer (add it to LAYERS and docs/design.md)")
            continue
        own = LAYERS.get(first, 7)
        for line, imported in _imports(module, path, known):
            if _is_front_end(module) and imported.startswith(NO_SQL_IN_FRONT_ENDS):
                problems.append(f"{where}:{line}: a front end imports {imported} (its SQL belongs in store/ or app/)")
            if not imported.startswith(PACKAGE + ".") and imported != PACKAGE:
                continue
            target = _first(imported)
            if _is_front_end(imported) and first != target and first not in ENTRY_POINTS:
                problems.append(f"{where}:{line}: imports the front end {imported}")
            level = LAYERS.get(target, 7 if target.startswith("cli_") else None)
            if level is not None and level > own:
                problems.append(f"{where}:{line}: {first or PACKAGE} (layer {own}) imports {imported} (layer {level})")
        if _is_front_end(module):
            for line, call in _query_calls(path):
                problems.append(f"{where}:{line}: a front end runs a query itself (.{call}())")
    return problems


def test_the_code_keeps_its_layers():
    assert layer_violations(SRC) == []


def test_every_layer_is_checked():
    """The check reads real modules: a front end, the app layer and a lower layer are among them."""
    known = _modules(SRC)
    assert {f"{PACKAGE}.web.app", f"{PACKAGE}.cli", f"{PACKAGE}.app.hub", f"{PACKAGE}.store.radars"} <= set(known)
    imported = {m for _, m in _imports(f"{PACKAGE}.web.radar_page", known[f"{PACKAGE}.web.radar_page"], known)}
    assert f"{PACKAGE}.app.hub" in imported and f"{PACKAGE}.store.radars" in imported


@pytest.fixture(scope="module")
def copied(tmp_path_factory) -> Path:
    """The real package, copied (only the .py files), clean: each test adds one bad module to it."""
    root = tmp_path_factory.mktemp("layers") / "src"
    for path in (SRC / PACKAGE).rglob("*.py"):
        target = root / path.relative_to(SRC)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert layer_violations(root) == []
    return root


@pytest.mark.parametrize(
    ("where", "source", "complaint"),
    [
        ("store/bad_upwards.py", "from ..app.hub import Hub\n", "store (layer 2) imports academichub.app.hub (layer 5)"),
        ("rank/bad_lazy.py", "def f():\n    from ..web.app import create_app\n",
         "imports the front end academichub.web.app"),
        ("sources/bad_absolute.py", "import academichub.ingest.pipeline\n", "sources (layer 1) imports academichub.ingest.pipeline"),
        ("web/bad_sql.py", "from sqlalchemy import select\n", "a front end imports sqlalchemy"),
        ("web/bad_schema.py", "from ..store.schema import papers\n", "a front end imports academichub.store.schema"),
        ("web/bad_query.py", "def f(conn):\n    return conn.execute('SELECT 1')\n", "a front end runs a query itself (.execute())"),
        ("web/bad_cli.py", "from .. import cli\n", "imports the front end academichub.cli"),
        ("app/bad_front.py", "from ..cli import _hub\n", "imports the front end academichub.cli"),
        ("mystery.py", "x = 1\n", "academichub.mystery has no layer"),
    ],
)
def test_a_bad_module_fails_the_check(copied, where, source, complaint):
    bad = copied / PACKAGE / where
    bad.write_text(source, encoding="utf-8")
    try:
        problems = layer_violations(copied)
    finally:
        bad.unlink()
    assert problems and all(where in p for p in problems), problems
    assert any(complaint in p for p in problems), problems
