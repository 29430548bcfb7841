"""The shipped catalogues (locale/): every string translated, nothing fuzzy, nothing makemessages would add."""

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
# What makemessages reads: every package and the templates; not the admin's templates (Django's own
# catalogues translate the admin), the tests, the benchmarks or the docs.
IGNORED = ["templates/admin/*", "tests", "bench", "docs", "var", "node_modules", ".venv"]


def _sources() -> list[Path]:
    """What a checkout needs to run manage.py makemessages: manage.py, the packages, templates, locale."""
    packages = [path for path in ROOT.iterdir() if (path / "__init__.py").is_file() and path.name not in IGNORED]
    return [ROOT / "manage.py", ROOT / "templates", ROOT / "locale", *packages]


def _shipped() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def _problems(po: Path) -> list[str]:
    """Untranslated, fuzzy or obsolete entries of one .po file, each named by its msgid."""
    text = po.read_text(encoding="utf-8")
    entries = text.strip().split("\n\n")[1:]  # the first is the header
    problems = []
    for entry in entries:
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', entry.replace("#~ ", ""), re.MULTILINE)
        name = "".join(re.findall(r'"(.*)"', msgid.group(1))) if msgid else entry[:60]
        if entry.lstrip().startswith("#~") or "\n#~" in entry:
            problems.append(f"obsolete: {name}")
        elif re.search(r"^#,.*\bfuzzy\b", entry, re.MULTILINE):
            problems.append(f"fuzzy: {name}")
        elif re.search(r'^msgstr(?:\[\d+\])? ""$(?!\n")', entry, re.MULTILINE):
            problems.append(f"untranslated: {name}")
    return problems


@pytest.mark.parametrize("language", _shipped())
def test_every_string_of_a_shipped_catalogue_is_translated_and_compiled(language):
    po = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
    assert _problems(po) == []
    with (po.with_suffix(".mo")).open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog
    msgids = {key[0] if isinstance(key, tuple) else key for key in compiled} - {""}
    # Each .po entry is in the .mo: it was compiled after the last edit (a fuzzy one would not be).
    assert len(msgids) == po.read_text(encoding="utf-8").count("\nmsgid ") - 1


def test_the_problems_check_sees_an_empty_a_fuzzy_and_an_obsolete_entry(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: de\\n"\n\n'
        'msgid "Done"\nmsgstr ""\n\n'
        '#, fuzzy, python-format\nmsgid "Hi %(name)s,"\nmsgstr "Hallo %(name)s,"\n\n'
        '#~ msgid "Gone"\n#~ msgstr "Weg"\n\n'
        'msgid "Long"\nmsgstr ""\n"Lang"\n',
        encoding="utf-8",
    )
    assert _problems(po) == ["untranslated: Done", "fuzzy: Hi %(name)s,", "obsolete: Gone"]


def test_makemessages_finds_no_string_the_catalogues_lack(tmp_path):
    if not shutil.which("xgettext") or not shutil.which("msgmerge"):
        if os.environ.get("CI"):
            pytest.fail("GNU gettext (xgettext, msgmerge) is missing; apt-get install gettext")
        pytest.skip("GNU gettext (xgettext, msgmerge) is missing")
    copy = tmp_path / "tree"
    copy.mkdir()
    for source in _sources():
        if source.is_dir():
            shutil.copytree(source, copy / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            shutil.copy2(source, copy / source.name)
    languages = [arg for code in _shipped() for arg in ("-l", code)]
    ignores = [arg for pattern in IGNORED for arg in ("--ignore", pattern)]
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--no-location", *languages, *ignores],
        cwd=copy,
        check=True,
        capture_output=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"},
    )
    for code in _shipped():
        assert _problems(copy / "locale" / code / "LC_MESSAGES" / "django.po") == [], code
