"""The docs keep up with the code: every setting the code reads is documented, and no link leads nowhere."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "operating" / "configuration.md"
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target), with an optional "title"; inline code is removed first.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def app_setting_names(path: Path) -> set[str]:
    """Return the keys of every settings table in an app's conf.py: dicts whose values are all Setting(...)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict) and node.values:
            calls = [value for value in node.values if isinstance(value, ast.Call)]
            if len(calls) == len(node.values) and all(
                isinstance(call.func, ast.Name) and call.func.id == "Setting" for call in calls
            ):
                names |= {key.value for key in node.keys if isinstance(key, ast.Constant)}
    return names


def environment_names(path: Path) -> set[str]:
    """Return the variables a project module reads: env_*("NAME", …), os.environ.get("NAME"), os.getenv("NAME")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        function = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if (isinstance(node.func, ast.Name) and function.startswith("env_")) or function in {
            "os.environ.get",
            "os.getenv",
        }:
            names.add(first.value)
    return names


def settings_read_by_the_code() -> set[str]:
    names = set()
    for app in ("digest", "newsletters", "hooks", "api", "feeds"):
        names |= app_setting_names(ROOT / app / "conf.py")
    for path in sorted((ROOT / "project").glob("*.py")):
        names |= environment_names(path)
    return names


def test_the_setting_collector_finds_the_settings_of_each_kind():
    names = settings_read_by_the_code()
    # One of each source, so a parser that silently finds nothing cannot pass the test below.
    assert {
        "DIGEST_BATCH_SIZE",
        "NEWSLETTERS_RATE_PERIOD",
        "HOOKS_TIMEOUT",
        "DATABASE_URL",
        "WEB_CONCURRENCY",
        "ANYMAIL_",
    } <= names


def test_every_setting_the_code_reads_is_in_the_configuration_page():
    text = CONFIGURATION.read_text(encoding="utf-8")
    missing = [
        name
        for name in sorted(settings_read_by_the_code())
        # A prefix (env_prefixed) is documented as `PREFIX…` in any form; a name exactly.
        if f"`{name}" not in text or (not name.endswith("_") and f"`{name}`" not in text)
    ]
    assert not missing, f"Add these to {CONFIGURATION.relative_to(ROOT)}: {', '.join(missing)}"


def github_slug(heading: str) -> str:
    """Return the anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def markdown_lines(path: Path, *, inline_code: bool = False):
    """Yield (line number, line) outside fenced code blocks; inline code removed unless asked for."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield number, line if inline_code else re.sub(r"`+[^`]*`+", "", line)


def anchors(path: Path) -> set[str]:
    """Return the anchors of a Markdown file's headings, numbered as GitHub numbers repeated ones."""
    found, seen = set(), {}
    for _, line in markdown_lines(path, inline_code=True):  # a heading keeps its code's text
        if match := HEADING.match(line):
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path, root: Path) -> list[str]:
    """Return `file:line: target` for each link to a file or anchor that does not exist."""
    broken = []
    for number, line in markdown_lines(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            problem = None
            if not linked.exists():
                problem = "no such file"
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problem = f"no heading with the anchor #{anchor}"
            if problem:
                broken.append(f"{path.relative_to(root)}:{number}: {target} ({problem})")
    return broken


def markdown_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def test_no_markdown_file_links_to_a_file_or_anchor_that_does_not_exist():
    files = markdown_files(ROOT)
    assert len(files) > 10
    broken = [problem for path in files for problem in broken_links(path, ROOT)]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("DKIM signing (`--dkim`)", "dkim-signing---dkim"),
        ("The editors' pages (`bench/dashboard.py`)", "the-editors-pages-benchdashboardpy"),
        ("The production server, locally", "the-production-server-locally"),
        ("Web: reader pages under load", "web-reader-pages-under-load"),
        ("Über DIGEST_MAILERS", "über-digest_mailers"),
    ],
)
def test_anchors_are_made_as_github_makes_them(heading, slug):
    assert github_slug(heading) == slug


def test_a_link_to_a_missing_file_or_anchor_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Same\n\n## Same\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "[ok](docs/page.md#same-1) [gone](docs/gone.md) [no anchor](docs/page.md#other) [here](#readme)\n"
        "`[in code](nowhere.md)` [web](https://example.com/x.md)\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "# Readme\n",
        encoding="utf-8",
    )
    assert broken_links(tmp_path / "README.md", tmp_path) == [
        "README.md:1: docs/gone.md (no such file)",
        "README.md:1: docs/page.md#other (no heading with the anchor #other)",
    ]
