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


def test_the_api_takes_from_digest_only_through_api_engine():
    """So the digest package can be rearranged with one module of the API to follow it."""
    offenders = []
    for path in sorted((Path(settings.BASE_DIR) / "api").rglob("*.py")):
        if path.name == "engine.py" and path.parent.name == "api":
            continue
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
