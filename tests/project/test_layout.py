"""The layout's rules: `newsletters` (what is sent, to whom) never imports `digest` (when and how);
`api` takes from `digest` only in api/engine.py."""

import ast
from pathlib import Path

from django.conf import settings


def digest_imports(path: Path) -> list[str]:
    """The modules of `digest` a Python file imports."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return [name for name in names if name.split(".")[0] == "digest"]


def test_newsletters_imports_nothing_from_digest():
    offenders = []
    for path in sorted((Path(settings.BASE_DIR) / "newsletters").rglob("*.py")):
        offenders += [f"{path.relative_to(settings.BASE_DIR)}: {name}" for name in digest_imports(path)]
    assert offenders == []


def test_the_api_takes_from_digest_only_through_api_engine():
    """So the digest package can be rearranged with one module of the API to follow it."""
    offenders = []
    for path in sorted((Path(settings.BASE_DIR) / "api").rglob("*.py")):
        if path.name == "engine.py" and path.parent.name == "api":
            continue
        offenders += [f"{path.relative_to(settings.BASE_DIR)}: {name}" for name in digest_imports(path)]
    assert offenders == []
