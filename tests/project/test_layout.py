"""The layout of the code, as docs/development/layout.md draws it, enforced.

`digest/` is one app with a sub-package per stage of the pipeline. Each module belongs to
a layer, and a layer may import only the layers its row of LAYERS names: the floor (models,
settings, exceptions, the shared policies) is used by all; the stages (planning, rendering,
sending, returns) never import each other, except that sending uses rendering; the desk
(what editors and operators see) is imported only by the admin and the project's urls;
nothing below the top imports the wiring (run, tasks, cron, admin). `newsletters` (what is
sent, to whom) never imports `digest` (when and how); the apps around the engine (`hooks`,
outgoing webhooks) listen to both and are imported by neither; the REST API takes from
`digest` only in api/engine.py. No import circles anywhere,
no imports inside functions except in `AppConfig.ready()`, no module over 400 lines.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
PACKAGES = ("digest", "newsletters", "project", "hooks", "feeds", "staff", "api")
MOST_LINES = 400

# A module's layer: the first prefix of its dotted name found here.
LAYER_OF = {
    "digest.models": "floor",
    "digest.conf": "floor",
    "digest.exceptions": "floor",
    "digest.verp": "floor",
    "digest.crontab": "floor",
    "digest.breaker": "floor",
    "digest.link_tokens": "floor",
    "digest.providers": "floor",
    "digest.planning": "planning",
    "digest.rendering": "rendering",
    "digest.sending": "sending",
    "digest.returns": "returns",
    "digest.deliverability": "deliverability",
    "digest.desk": "desk",
    "digest.run": "top",
    "digest.processes": "top",
    "digest.privacy": "top",
    "digest.tasks": "top",
    "digest.cron": "top",
    "digest.checks": "top",
    "digest.apps": "top",
    "digest.management": "top",
    "digest.admin": "admin",
    "digest": "floor",
    "newsletters": "newsletters",
    "hooks": "hooks",
    "feeds": "feeds",
    "staff": "staff",
    "api.engine": "api_engine",
    "api": "api",
    "project.urls": "urls",
    "project": "project",
}

# What each layer may import (besides itself and outside code).
LAYERS = {
    "project": set(),
    "newsletters": {"project"},
    "floor": {"project", "newsletters"},
    "planning": {"project", "newsletters", "floor"},
    "rendering": {"project", "newsletters", "floor"},
    "sending": {"project", "newsletters", "floor", "rendering"},
    "returns": {"project", "newsletters", "floor"},
    # The preflight check compares the published DKIM key with the one rendering signs with.
    "deliverability": {"project", "newsletters", "floor", "rendering"},
    # Previews render; the dashboard reads plans and returns; it never sends.
    "desk": {"project", "newsletters", "floor", "planning", "rendering", "returns", "deliverability"},
    "top": {"project", "newsletters", "floor", "planning", "rendering", "sending", "returns", "deliverability"},
    "admin": {"project", "newsletters", "floor", "planning", "rendering", "returns", "deliverability", "desk", "top"},
    "urls": {"project", "newsletters", "floor", "returns", "desk", "admin", "staff", "api"},
    # Outgoing webhooks: events from newsletters' signals and digest's models.
    "hooks": {"project", "newsletters", "floor"},
    # Feeds draft and publish issues through newsletters' services; the second factor stands alone.
    "feeds": {"project", "newsletters"},
    "staff": {"project"},
    # The REST API is a front end like the admin: it reads the desk's figures, in one module.
    "api_engine": {"project", "newsletters", "floor", "desk"},
    "api": {"project", "newsletters", "api_engine"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((BASE / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(BASE).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


MODULES = _modules()


def _layer(name: str) -> str:
    for prefix, layer in LAYER_OF.items():
        if name == prefix or name.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{name} has no layer in tests/project/test_layout.py: add it to LAYER_OF")


def _imported(module: str, node: ast.AST) -> list[str]:
    """The project modules an import statement names (a `from x import y` may name module x.y)."""
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".")[: -node.level] if not MODULES[module].name == "__init__.py" else module.split(".")
            base = ".".join(parts + ([base] if base else []))
        candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
    else:
        return []
    named = []
    for candidate in candidates:
        # `import digest.sending.pool` names digest.sending.pool, not its packages.
        while candidate and candidate not in MODULES:
            candidate = candidate.rpartition(".")[0]
        if candidate and candidate != module:
            named.append(candidate)
    return named


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    """Each module's module-level imports of project modules, and every import inside a function."""
    graph, inner = {}, []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = set()

        def visit(node, function, name=name, path=path):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Import | ast.ImportFrom):
                    if child.__class__ is ast.ImportFrom and child.module == "__future__":
                        continue
                    if function is None:
                        graph[name].update(_imported(name, child))
                    elif function != "ready" or not name.endswith(".apps"):
                        inner.append(f"{path.relative_to(BASE)}:{child.lineno} in {function}()")
                inside = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
                # TYPE_CHECKING blocks and try/except ImportError stay module level.
                visit(child, inside)

        visit(tree, None)
    return graph, inner


GRAPH, INNER = _imports()


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_what_its_row_allows(layer):
    offenders = [
        f"{name} ({layer}) imports {target} ({_layer(target)})"
        for name in sorted(GRAPH)
        if _layer(name) == layer
        for target in sorted(GRAPH[name])
        if _layer(target) != layer and _layer(target) not in LAYERS[layer]
    ]
    assert offenders == []


def test_there_is_no_import_circle():
    """Tarjan's strongly connected components over module-level imports: none larger than one module."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            # A package's __init__ importing its own modules is not a circle of design.
            if len(component) > 1:
                circles.append(" <-> ".join(sorted(component)))

    for node in sorted(GRAPH):
        if node not in index:
            connect(node)
    assert circles == []


def test_no_import_hides_inside_a_function():
    assert INNER == []


def test_no_module_is_longer_than_the_limit():
    long = [
        f"{path.relative_to(BASE)}: {lines} lines"
        for path in MODULES.values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MOST_LINES
    ]
    assert long == []


def test_the_layer_table_knows_every_module():
    assert [name for name in MODULES if not any(name == p or name.startswith(p + ".") for p in LAYER_OF)] == []


def test_newsletters_imports_nothing_from_digest():
    offenders = [
        f"{name} imports {target}"
        for name in GRAPH
        if name.startswith("newsletters")
        for target in GRAPH[name]
        if target.startswith("digest")
    ]
    assert offenders == []
