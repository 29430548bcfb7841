"""Newsletters, read only: editors set them up in the admin."""

from django.shortcuts import get_object_or_404
from ninja import Query, Router

from api.auth import READ
from api.pagination import PAGE_SIZE, PAGE_SIZE_MAX, Page, filtered, paginate
from api.problems import answers
from api.schemas import Id, NewsletterOut
from newsletters.models import Newsletter

router = Router(tags=["newsletters"], auth=READ)


@router.get("/newsletters", response=answers(200, Page[NewsletterOut]), summary="List newsletters")
def newsletter_list(
    request,
    active: bool | None = None,
    cursor: str | None = None,
    limit: int = Query(PAGE_SIZE, ge=1, le=PAGE_SIZE_MAX),
):
    """Every newsletter in id order; `active=true` gives those readers may subscribe to."""
    return paginate(filtered(Newsletter.objects.all(), active=active), cursor=cursor, limit=limit)


@router.get("/newsletters/{newsletter_id}", response=answers(200, NewsletterOut), summary="Read a newsletter")
def newsletter_read(request, newsletter_id: Id):
    return get_object_or_404(Newsletter, pk=newsletter_id)
