"""The Editor and Newsletter owner groups: what each may do in the admin, and what answers 403."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from newsletters.models import Issue, IssueStatus, Newsletter, Subscriber
from newsletters.roles import EDITOR, OWNER, ROLES
from tests.factories import IssueFactory, NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def _member(client, group: str, username: str = "member"):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


@pytest.fixture
def editor(client):
    return _member(client, EDITOR, "editor")


def test_the_migration_made_both_groups_with_every_listed_permission():
    for name, permissions in ROLES.items():
        held = {
            f"{app}.{codename}"
            for app, codename in Group.objects.get(name=name).permissions.values_list(
                "content_type__app_label", "codename"
            )
        }
        assert held == set(permissions), name


def test_an_editor_writes_previews_schedules_and_publishes(client, editor):
    newsletter = NewsletterFactory()
    SubscriptionFactory(newsletter=newsletter)
    response = client.post(
        reverse("admin:newsletters_issue_add"),
        {
            "newsletter": newsletter.pk,
            "title": "First",
            "slug": "first",
            "body": "Hello",
            "status": IssueStatus.DRAFT,
            "attachments-TOTAL_FORMS": 0,
            "attachments-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    issue = Issue.objects.get(slug="first")
    assert issue.author == editor
    for name in ["newsletters_issue_preview", "newsletters_issue_email", "newsletters_issue_report"]:
        assert client.get(reverse(f"admin:{name}", args=[issue.pk])).status_code == 200, name
    response = client.post(
        reverse("admin:newsletters_issue_changelist"),
        {"action": "publish_now", "_selected_action": [issue.pk], "confirmed": "yes"},
    )
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.state == "published"
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.get(reverse("admin:newsletters_subscriber_changelist")).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        lambda: reverse("admin:auth_user_changelist"),
        lambda: reverse("admin:auth_user_add"),
        lambda: reverse("admin:auth_group_changelist"),
        lambda: reverse("admin:newsletters_newsletter_add"),
        lambda: reverse("admin:newsletters_subscriber_delete", args=[SubscriptionFactory().subscriber.pk]),
    ],
    ids=["users", "add-user", "groups", "add-newsletter", "delete-subscriber"],
)
def test_an_editor_gets_403_outside_writing(client, editor, url):
    assert client.get(url()).status_code == 403


def test_an_editor_cannot_change_newsletter_settings_or_delete_subscribers(client, editor):
    newsletter = NewsletterFactory(name="Kept")
    subscriber = SubscriptionFactory(newsletter=newsletter).subscriber
    response = client.post(
        reverse("admin:newsletters_newsletter_change", args=[newsletter.pk]), {"name": "Changed", "slug": "x"}
    )
    assert response.status_code == 403
    assert Newsletter.objects.get(pk=newsletter.pk).name == "Kept"
    response = client.post(
        reverse("admin:newsletters_subscriber_changelist"),
        {"action": "delete_selected", "_selected_action": [subscriber.pk], "post": "yes"},
    )
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    # The admin offers no delete action to an editor, and deletes nothing when one is posted.
    actions = client.get(reverse("admin:newsletters_subscriber_changelist")).context["action_form"]
    assert "delete_selected" not in dict(actions.fields["action"].choices)
    assert response.status_code in (200, 302)


def test_an_owner_changes_settings_and_deletes_subscribers_but_manages_no_users(client):
    _member(client, OWNER, "owner")
    subscriber = SubscriptionFactory().subscriber
    response = client.post(reverse("admin:newsletters_subscriber_delete", args=[subscriber.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()
    assert client.get(reverse("admin:newsletters_newsletter_add")).status_code == 200
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_demo_editor_is_an_editor_not_a_superuser(settings, tmp_path, client):
    settings.VAR_DIR = tmp_path
    call_command("load_demo", stdout=io.StringIO())
    user = get_user_model().objects.get(username="editor")
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [EDITOR]
    client.force_login(user)
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    issue = Issue.objects.filter(status=IssueStatus.DRAFT).first() or IssueFactory()
    assert client.get(reverse("admin:newsletters_issue_change", args=[issue.pk])).status_code == 200
