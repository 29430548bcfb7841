"""The API's writes that no web page or command already has: issues from JSON, consent kept as evidence.

Every rule is the one the admin and `publish_issue` apply: the model's validators, the
Markdown limits (newsletters.markup), the publish service (newsletters.services).
"""

import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from api.exceptions import Conflict, Invalid
from api.models import Consent
from newsletters.exceptions import MarkupError
from newsletters.markup import markdown_to_html, markup_check
from newsletters.models import Issue, IssueStatus, Newsletter, Subscriber


def invalid_from(error: ValidationError) -> Invalid:
    """An Invalid naming each field Django's validation refused."""
    fields = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
    errors = [{"field": field, "message": message} for field, messages in fields.items() for message in messages]
    return Invalid(
        "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors), errors=errors
    )


def _markdown_check(body: str) -> None:
    try:
        markup_check(body)
        markdown_to_html(body)  # rendered once now (and cached): its cost is bounded
    except MarkupError as error:
        raise Invalid(str(error), errors=[{"field": "body", "message": str(error)}]) from None


def _issue_save(issue: Issue) -> Issue:
    try:
        issue.full_clean(exclude=["author"])
    except ValidationError as error:
        raise invalid_from(error) from None
    _markdown_check(issue.body)
    try:
        with transaction.atomic():
            issue.save()
    except IntegrityError:  # the same slug saved by a concurrent call
        raise Conflict(f"The newsletter already has an issue with the slug {issue.slug!r}.") from None
    return issue


def issue_draft_create(
    *, newsletter: Newsletter, title: str, slug: str | None, body: str, preheader: str, author
) -> Issue:
    """Save a new draft issue from Markdown."""
    slug = slug or slugify(title, allow_unicode=True)
    if not slug:
        raise Invalid("The title has no letters or digits to make a slug from; give a slug.")
    if newsletter.issues.filter(slug=slug).exists():
        raise Conflict(f"The newsletter already has an issue with the slug {slug!r}.")
    issue = Issue(
        newsletter=newsletter, title=title, slug=slug, body=body, preheader=preheader, status=IssueStatus.DRAFT
    )
    issue.author = author
    return _issue_save(issue)


def issue_change(*, issue: Issue, changes: dict) -> Issue:
    """Change an issue's title, slug, body or preheader; a published issue keeps its slug (its URL is out there)."""
    if "slug" in changes and changes["slug"] != issue.slug and issue.status == IssueStatus.PUBLISHED:
        raise Conflict("A published issue keeps its slug: readers have its address.")
    if changes.get("slug") and issue.newsletter.issues.filter(slug=changes["slug"]).exclude(pk=issue.pk).exists():
        raise Conflict(f"The newsletter already has an issue with the slug {changes['slug']!r}.")
    for field, value in changes.items():
        setattr(issue, field, value)
    return _issue_save(issue)


def consent_record(
    *,
    subscriber: Subscriber,
    newsletters: list[Newsletter],
    text: str,
    given_at: datetime.datetime,
    source_ip: str | None,
    recorded_by: str,
) -> Consent:
    """Keep a reader's consent, given in a caller's app, as evidence beside the subscription it made."""
    consent = Consent(
        subscriber=subscriber,
        newsletters=sorted(n.slug for n in newsletters),
        text=text,
        given_at=given_at,
        source_ip=source_ip,
        recorded_by=recorded_by,
    )
    try:
        consent.full_clean(exclude=["subscriber"])
    except ValidationError as error:
        raise invalid_from(error) from None
    consent.save()
    return consent
