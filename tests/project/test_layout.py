"""The layout's one rule: `newsletters` (what is sent, to whom) never imports `digest` (when and how)."""

import ast
from pathlib import Path

from django.conf import settings


def test_newsletters_imports_nothing_from_digest():
    offenders = []
    for path in sorted((Path(settings.BASE_DIR) / "newsletters").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(settings.BASE_DIR)}: {name}" for name in names if name.split(".")[0] == "digest"
            ]
    assert offenders == []
