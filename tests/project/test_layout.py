"""The layout's rules: `newsletters` (what is sent, to whom) never imports `digest` (when and how), and
neither imports `hooks` (which listens to both)."""

import ast
from pathlib import Path

from django.conf import settings


def _imports_of(app: str, forbidden: str) -> list[str]:
    offenders = []
    for path in sorted((Path(settings.BASE_DIR) / app).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(settings.BASE_DIR)}: {name}" for name in names if name.split(".")[0] == forbidden
            ]
    return offenders


def test_newsletters_imports_nothing_from_digest():
    assert _imports_of("newsletters", "digest") == []


def test_neither_newsletters_nor_digest_imports_hooks():
    assert _imports_of("newsletters", "hooks") + _imports_of("digest", "hooks") == []
