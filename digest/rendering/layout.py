"""The layout check: every email template, rendered on sample content, keeps the guarantees of the default.

Every template a newsletter can choose (emails/themes/<name>/, and the default emails/) and
every newsletter's own templates (emails/<slug>/) are rendered: a digest of two issues, the
welcome (onboarding step one: the newsletter's first written step, else a sample) and the
confirmation request. What is checked is what a mail client, a law or a
mailbox provider depends on, and what can be checked mechanically:

- the doctype (standards mode), the viewport and the dark-mode metas (color-scheme and
  supported-color-schemes, light dark);
- the layout in tables (role="presentation") and Outlook for Windows' fixed-width wrapper
  (<!--[if mso]><table …>), which keeps Word's engine from stretching the card;
- the sender's postal address, in the HTML and the text (CAN-SPAM, and providers' trust);
- the reader's unsubscribe link in the digest (the welcome's link to their preferences, where
  they unsubscribe), in the HTML and the text; the confirmation's link;
- a subject on one line.

Used by `manage.py check_email_templates`, the gallery (digest.desk.gallery) and the tests.
"""

import datetime
import html as html_lib
import re
from dataclasses import dataclass

from django.db import transaction

from digest.rendering.content import UNSUBSCRIBE_URL, digest_render
from newsletters.emails import email_themes, template_dirs
from newsletters.letters import Letter, confirm_render
from newsletters.models import Issue, IssueStatus, Newsletter, OnboardingStep
from newsletters.onboarding import step_render

SAMPLE_ADDRESS = "Sample Press Ltd, 1 Layout Street, 10115 Checktown"
SAMPLE_PREFERENCES = "https://layout-check.invalid/preferences"
SAMPLE_CONFIRM = "https://layout-check.invalid/confirm"
SAMPLE_WELCOME = "Welcome! This is what we write about."
SAMPLE_ISSUES = [
    (
        "What changed this week",
        "A paragraph with **bold**, a [link](https://example.com/post) and `code`.\n\n"
        "## A section\n\n- one\n- two\n\n> A quote.\n\n| Client | Engine |\n|---|---|\n| Outlook | Word |\n",
    ),
    ("Notes from the desk", "A second issue, so the digest holds two.\n\n1. first\n2. second\n"),
]

_TAG = re.compile(r"<[^>]+>")
_META = '<meta name="{name}" content="{content}"'


@dataclass(frozen=True)
class Finding:
    """One guarantee a template dropped: which template, which mail, which part, what is missing."""

    template: str
    mail: str
    part: str
    missing: str

    def __str__(self) -> str:
        return f"{self.template}: the {self.mail} mail's {self.part} has no {self.missing}"


def _text_of(document: str) -> str:
    """What a reader reads in an HTML part: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html_lib.unescape(_TAG.sub(" ", document)).split())


def _html_missing(document: str) -> list[str]:
    """The layout guarantees an HTML part lacks (the same for every mail)."""
    head = document[:4000].lower()
    rules = {
        "doctype (<!doctype html>, else clients draw it in quirks mode)": head.lstrip().startswith("<!doctype html"),
        'viewport meta (<meta name="viewport">)': '<meta name="viewport"' in head,
        'dark-mode metas (color-scheme and supported-color-schemes "light dark")': all(
            _META.format(name=name, content="light dark") in head
            for name in ("color-scheme", "supported-color-schemes")
        ),
        'layout table (<table role="presentation">)': '<table role="presentation"' in document,
        "Outlook wrapper (<!--[if mso]><table …> around the card)": "<!--[if mso]><table" in document,
    }
    return [what for what, present in rules.items() if not present]


def letter_findings(letter: Letter, *, template: str, mail: str, address: str, links: dict[str, str]) -> list[Finding]:
    """Check one rendered mail: the layout of its HTML, the address and the links in both parts."""
    findings = [Finding(template, mail, "HTML", what) for what in _html_missing(letter.html)]
    if not letter.subject or "\n" in letter.subject:
        findings.append(Finding(template, mail, "subject", "single line of text"))
    for part, present in (("HTML", _text_of(letter.html)), ("text", " ".join(letter.text.split()))):
        if address and " ".join(address.split()) not in present:
            findings.append(Finding(template, mail, part, f"postal address ({address!r})"))
    for what, url in links.items():
        if f'href="{html_lib.escape(url)}"' not in letter.html:
            findings.append(Finding(template, mail, "HTML", f"{what} (a link to {url})"))
        if url not in letter.text:
            findings.append(Finding(template, mail, "text", f"{what} ({url})"))
    return findings


def newsletter_findings(
    newsletter: Newsletter, issues: list[Issue], *, template: str, now: datetime.datetime
) -> list[Finding]:
    """Render a newsletter's digest (of `issues`), welcome and confirmation, and check each."""
    address = newsletter.postal_address.strip()
    rendered = digest_render(
        newsletter=newsletter, issues=issues, window_start=now - datetime.timedelta(days=7), window_end=now
    )
    digest = Letter(subject=rendered.subject, text=rendered.text, html=rendered.html)
    step = newsletter.onboarding_steps.filter(issue__isnull=True).exclude(body="").order_by("position").first()
    welcome = step_render(
        step or OnboardingStep(newsletter=newsletter, position=1, body=SAMPLE_WELCOME),
        name="Ada",
        email="ada@example.com",
        preferences_url=SAMPLE_PREFERENCES,
        now=now,
    )
    confirm = confirm_render(
        name="Ada", newsletters=[(newsletter, "Daily")], confirm_url=SAMPLE_CONFIRM, max_age_days=7
    )
    return [
        *letter_findings(
            digest, template=template, mail="digest", address=address, links={"unsubscribe link": UNSUBSCRIBE_URL}
        ),
        *letter_findings(
            welcome,
            template=template,
            mail="welcome",
            address=address,
            links={"link to unsubscribe": SAMPLE_PREFERENCES},
        ),
        *letter_findings(
            confirm,
            template=template,
            mail="confirmation",
            address=address,
            links={"confirmation link": SAMPLE_CONFIRM},
        ),
    ]


def own_template_slugs() -> list[str]:
    """The newsletters with templates of their own (a folder emails/<slug>/ on a template path)."""
    folders = {path.name for folder in template_dirs() for path in (folder / "emails").glob("*/") if path.is_dir()}
    return sorted(Newsletter.objects.filter(slug__in=folders).values_list("slug", flat=True))


def templates_check(*, now: datetime.datetime) -> list[Finding]:
    """Render every template and every newsletter's own templates on sample content; return what they lack.

    The sample newsletter and issues are written inside a transaction rolled back at the end:
    nothing is left in the database.
    """
    findings = []
    with transaction.atomic():
        sample = Newsletter.objects.create(
            name="Layout check",
            slug=f"layout-check-{now:%Y%m%d%H%M%S%f}",
            postal_address=SAMPLE_ADDRESS,
            accent_color="#8a3ffc",
            header_text="Brought to you by **our readers**.",
            footer_text="Written in [Checktown](https://example.com/about).",
        )
        for theme in email_themes():
            sample.template = theme
            label = f"template {theme!r} (emails/themes/{theme}/)" if theme else "the default template (emails/)"
            findings += newsletter_findings(sample, _sample_issues(sample, now), template=label, now=now)
        for newsletter in Newsletter.objects.filter(slug__in=own_template_slugs()):
            newsletter.postal_address = newsletter.postal_address.strip() or SAMPLE_ADDRESS
            label = f"the newsletter {newsletter.slug!r}'s own templates (emails/{newsletter.slug}/)"
            findings += newsletter_findings(newsletter, _sample_issues(newsletter, now), template=label, now=now)
        transaction.set_rollback(True)
    return findings


def _sample_issues(newsletter: Newsletter, now: datetime.datetime) -> list[Issue]:
    issues = []
    for number, (title, body) in enumerate(SAMPLE_ISSUES):
        issue, _ = Issue.objects.get_or_create(
            newsletter=newsletter,
            slug=f"layout-check-{number}",
            defaults={
                "title": title,
                "body": body,
                "status": IssueStatus.PUBLISHED,
                "publish_at": now - datetime.timedelta(days=len(SAMPLE_ISSUES) - number),
            },
        )
        issues.append(issue)
    return issues
