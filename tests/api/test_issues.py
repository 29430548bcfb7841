"""Issues through the API: drafts from Markdown, changes, scheduling, publishing, previews, by the admin's rules."""

import datetime

from django.utils import timezone

from newsletters.models import Issue, IssueStatus
from tests.api.conftest import assert_problem
from tests.factories import IssueFactory, NewsletterFactory


def test_a_draft_is_made_from_markdown(api, api_token):
    newsletter = NewsletterFactory()
    response = api.call(
        "post", "/issues", {"newsletter": newsletter.pk, "title": "Spring notes", "body": "# Hi\n\nSome *news*."}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "draft" and body["slug"] == "spring-notes" and body["publish_at"] is None
    issue = Issue.objects.get(pk=body["id"])
    assert issue.status == IssueStatus.DRAFT and issue.body == "# Hi\n\nSome *news*."


def test_bad_input_is_refused_and_nothing_is_saved(api):
    newsletter = NewsletterFactory()
    cases = [
        ({"newsletter": newsletter.pk, "title": "Two\nlines", "body": "x"}, "title"),
        ({"newsletter": newsletter.pk, "title": "Deep", "body": ">" * 200 + " quote"}, "body"),
        ({"newsletter": 999999, "title": "Nowhere", "body": "x"}, "newsletter"),
        ({"newsletter": newsletter.pk, "title": "No body"}, "body"),
        ({"newsletter": newsletter.pk, "title": "Slug", "slug": "not a slug!", "body": "x"}, "slug"),
    ]
    for payload, field in cases:
        body = assert_problem(api.call("post", "/issues", payload), 422)
        assert field in [error["field"] for error in body["errors"]], body
    assert not Issue.objects.exists()


def test_a_slug_taken_in_the_newsletter_is_a_conflict(api):
    issue = IssueFactory(slug="hello")
    payload = {"newsletter": issue.newsletter_id, "title": "Hello", "body": "Again."}
    assert_problem(api.call("post", "/issues", payload), 409)
    assert Issue.objects.count() == 1


def test_hostile_markdown_is_stored_as_written_and_sanitised_in_the_preview(api):
    newsletter = NewsletterFactory()
    body = 'Hi <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror="alert(1)">'
    issue_id = api.call("post", "/issues", {"newsletter": newsletter.pk, "title": "Hostile", "body": body}).json()["id"]
    preview = api.call("get", f"/issues/{issue_id}/preview").json()
    assert (
        "<script" not in preview["html"] and "javascript:" not in preview["html"] and "onerror" not in preview["html"]
    )
    assert "Hostile" in preview["subject"] and "Hi" in preview["text"]


def test_a_change_keeps_what_was_not_sent(api):
    issue = IssueFactory(status=IssueStatus.DRAFT, publish_at=None, title="Old", body="Old body")
    response = api.call("patch", f"/issues/{issue.pk}", {"title": "New"})
    assert response.status_code == 200 and response.json()["title"] == "New"
    issue.refresh_from_db()
    assert (issue.title, issue.body) == ("New", "Old body")
    assert_problem(api.call("patch", f"/issues/{issue.pk}", {"title": "Bad\rtitle"}), 422)
    issue.refresh_from_db()
    assert issue.title == "New"


def test_a_published_issue_keeps_its_slug(api):
    issue = IssueFactory(slug="out-there")
    assert_problem(api.call("patch", f"/issues/{issue.pk}", {"slug": "moved"}), 409)
    issue.refresh_from_db()
    assert issue.slug == "out-there"


def test_schedule_then_publish_now(api):
    issue = IssueFactory(status=IssueStatus.DRAFT, publish_at=None)
    later = timezone.now() + datetime.timedelta(days=2)
    response = api.call("post", f"/issues/{issue.pk}/schedule", {"publish_at": later.isoformat()})
    assert response.status_code == 200 and response.json()["status"] == "scheduled"
    issue.refresh_from_db()
    assert issue.status == IssueStatus.PUBLISHED and issue.publish_at == later
    response = api.call("post", f"/issues/{issue.pk}/publish")
    assert response.json()["status"] == "published"
    issue.refresh_from_db()
    assert issue.publish_at <= timezone.now()


def test_a_published_issue_is_not_moved_and_the_past_is_not_a_schedule(api):
    published = IssueFactory()
    before = published.publish_at
    future = (timezone.now() + datetime.timedelta(days=1)).isoformat()
    assert_problem(api.call("post", f"/issues/{published.pk}/schedule", {"publish_at": future}), 409)
    assert_problem(api.call("post", f"/issues/{published.pk}/publish"), 409)
    published.refresh_from_db()
    assert published.publish_at == before
    draft = IssueFactory(status=IssueStatus.DRAFT, publish_at=None)
    past = (timezone.now() - datetime.timedelta(hours=1)).isoformat()
    assert_problem(api.call("post", f"/issues/{draft.pk}/schedule", {"publish_at": past}), 422)
    draft.refresh_from_db()
    assert draft.status == IssueStatus.DRAFT


def test_the_list_filters_by_state_newsletter_and_publish_time(api):
    newsletter = NewsletterFactory()
    now = timezone.now()
    draft = IssueFactory(newsletter=newsletter, status=IssueStatus.DRAFT, publish_at=None)
    scheduled = IssueFactory(newsletter=newsletter, publish_at=now + datetime.timedelta(days=1))
    old = IssueFactory(newsletter=newsletter, publish_at=now - datetime.timedelta(days=10))
    recent = IssueFactory(newsletter=newsletter, publish_at=now - datetime.timedelta(days=1))
    IssueFactory()  # another newsletter's

    def ids(**query):
        return [
            item["id"] for item in api.call("get", "/issues", {"newsletter": newsletter.pk, **query}).json()["items"]
        ]

    assert ids() == [draft.pk, scheduled.pk, old.pk, recent.pk]
    assert ids(status="draft") == [draft.pk]
    assert ids(status="scheduled") == [scheduled.pk]
    assert ids(status="published") == [old.pk, recent.pk]
    assert ids(published_after=(now - datetime.timedelta(days=2)).isoformat()) == [scheduled.pk, recent.pk]
    assert ids(published_before=(now - datetime.timedelta(days=2)).isoformat()) == [old.pk]
    assert_problem(api.call("get", "/issues", {"status": "lost"}), 422)


def test_an_unknown_issue_is_a_404_problem(api):
    assert_problem(api.call("get", "/issues/424242"), 404)
    assert_problem(api.call("get", "/issues/424242/preview"), 404)
    assert_problem(api.call("post", "/issues/424242/publish"), 404)
