"""Issues: listed and read with `read`; drafted, changed, scheduled and published with `issues`."""

import datetime
from typing import Literal

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from api import engine
from api.auth import ISSUES, READ
from api.exceptions import Conflict, Invalid
from api.pagination import PAGE_SIZE, PAGE_SIZE_MAX, Page, filtered, paginate
from api.problems import answers
from api.schemas import Id, IssueIn, IssueOut, IssuePatch, Moment, PreviewOut, ScheduleIn
from api.services import issue_change, issue_draft_create
from newsletters.exceptions import MarkupError
from newsletters.markup import markdown_to_html
from newsletters.models import Issue, IssueStatus, Newsletter
from newsletters.services import issue_publish
from project.clock import db_now

router = Router(tags=["issues"])


@router.get("/issues", response=answers(200, Page[IssueOut]), auth=READ, summary="List issues")
def issue_list(
    request,
    newsletter: Id | None = None,
    status: Literal["draft", "scheduled", "published"] | None = None,
    published_after: Moment | None = None,
    published_before: Moment | None = None,
    cursor: str | None = None,
    limit: int = Query(PAGE_SIZE, ge=1, le=PAGE_SIZE_MAX),
):
    """Issues in id order, filtered by newsletter, state and publish time (after: inclusive, before: exclusive)."""
    queryset = filtered(
        Issue.objects.all(),
        newsletter_id=newsletter,
        publish_at__gte=published_after,
        publish_at__lt=published_before,
    )
    now = db_now()
    if status == "draft":
        queryset = queryset.filter(status=IssueStatus.DRAFT)
    elif status == "scheduled":
        queryset = queryset.filter(status=IssueStatus.PUBLISHED, publish_at__gt=now)
    elif status == "published":
        queryset = queryset.filter(status=IssueStatus.PUBLISHED, publish_at__lte=now)
    return paginate(queryset, cursor=cursor, limit=limit)


@router.post("/issues", response=answers(201, IssueOut), auth=ISSUES, summary="Create a draft from Markdown")
def issue_create(request, payload: IssueIn):
    """Save a draft; the same checks as the admin (single-line title, slug, Markdown limits)."""
    newsletter = Newsletter.objects.filter(pk=payload.newsletter).first()
    if newsletter is None:
        raise Invalid("No such newsletter.", errors=[{"field": "newsletter", "message": "no such newsletter"}])
    issue = issue_draft_create(
        newsletter=newsletter,
        title=payload.title,
        slug=payload.slug,
        body=payload.body,
        preheader=payload.preheader,
        author=request.auth.created_by,
    )
    return Status(201, issue)


@router.get("/issues/{issue_id}", response=answers(200, IssueOut), auth=READ, summary="Read an issue")
def issue_read(request, issue_id: Id):
    return get_object_or_404(Issue, pk=issue_id)


@router.patch("/issues/{issue_id}", response=answers(200, IssueOut), auth=ISSUES, summary="Change an issue")
def issue_update(request, issue_id: Id, payload: IssuePatch):
    """Change the fields given; leave the others."""
    issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=issue_id)
    return issue_change(issue=issue, changes=payload.model_dump(exclude_unset=True, exclude_none=True))


def _publishable(issue: Issue, *, now: datetime.datetime) -> None:
    if issue.status == IssueStatus.PUBLISHED and issue.publish_at <= now:
        raise Conflict("The issue is published: readers may have it, so its publish time stays.")
    try:
        markdown_to_html(issue.body)
    except MarkupError as error:
        raise Invalid(str(error), errors=[{"field": "body", "message": str(error)}]) from None


@router.post("/issues/{issue_id}/schedule", response=answers(200, IssueOut), auth=ISSUES, summary="Schedule an issue")
def issue_schedule(request, issue_id: Id, payload: ScheduleIn):
    """Publish at a future time: digests carry it from then on."""
    issue = get_object_or_404(Issue, pk=issue_id)
    now = db_now()
    _publishable(issue, now=now)
    if payload.publish_at <= now:
        raise Invalid("publish_at is in the past; publish now instead.")
    return issue_publish(issue=issue, now=now, publish_at=payload.publish_at)


@router.post("/issues/{issue_id}/publish", response=answers(200, IssueOut), auth=ISSUES, summary="Publish now")
def issue_publish_now(request, issue_id: Id):
    """Publish at once (a scheduled issue too): the next digest runs carry it."""
    issue = get_object_or_404(Issue, pk=issue_id)
    now = db_now()
    _publishable(issue, now=now)
    return issue_publish(issue=issue, now=now)


@router.get("/issues/{issue_id}/preview", response=answers(200, PreviewOut), auth=READ, summary="Preview the digest")
def issue_preview(request, issue_id: Id):
    """The digest a reader gets when this issue is the only new one: subject, HTML and plain text."""
    issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=issue_id)
    try:
        rendered = engine.preview_issue(issue=issue, now=db_now())
    except (engine.RenderError, MarkupError) as error:
        raise Invalid(f"The issue cannot be rendered: {error}") from None
    text, html = engine.preview_personalize(rendered, name="")
    return {"subject": rendered.subject, "html": html, "text": text}
