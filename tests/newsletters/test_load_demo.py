"""The demo data loads with one command, exercises the features, and loads again safely."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from newsletters.markup import markdown_to_html
from newsletters.models import Attachment, Frequency, Issue, Newsletter, Subscriber, Subscription

pytestmark = pytest.mark.django_db


def test_demo_loads_and_reloads_without_duplicates():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert "Editor login: editor / " in out.getvalue()
    assert get_user_model().objects.get(username="editor").is_staff
    assert Newsletter.objects.count() == 2
    assert Issue.objects.count() == 6
    assert {issue.state for issue in Issue.objects.all()} == {"published", "scheduled", "draft"}
    assert Attachment.objects.count() == 1
    assert Subscriber.objects.count() >= 20
    assert set(Subscription.objects.values_list("frequency", flat=True)) == set(Frequency.values)
    assert len(set(Subscriber.objects.values_list("timezone", flat=True))) >= 5
    html = "".join(markdown_to_html(issue.body) for issue in Issue.objects.all())
    for tag in ["<h2>", "<table>", "<code", "<a href", "<img", "<li>"]:
        assert tag in html, tag

    call_command("load_demo", "--no-editor", stdout=io.StringIO())
    assert Issue.objects.count() == 6
    assert Subscription.objects.count() == Subscription.objects.values("subscriber", "newsletter").distinct().count()


def test_demo_data_produces_real_digests(smtp_server):
    from django.utils import timezone

    from digest.run import digest_run

    call_command("load_demo", "--no-editor", stdout=io.StringIO())
    summary = digest_run(now=timezone.now())
    assert summary.sent > 0 and summary.failed == 0
    assert len(smtp_server.received) == summary.sent
    message = smtp_server.received[0].message
    assert message.get_body(preferencelist=("html",)) is not None
    assert message["List-Unsubscribe"].startswith("<http://localhost:8000/u/")


def test_the_editor_keeps_one_password_across_runs(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    passwords = []
    for _ in range(2):
        out = io.StringIO()
        call_command("load_demo", stdout=out)
        [password] = re.findall(r"Editor login: editor / (\S+)", out.getvalue())
        assert str(tmp_path / "demo-editor-password") in out.getvalue()
        passwords.append(password)
    assert passwords[0] == passwords[1]
    assert get_user_model().objects.get(username="editor").check_password(passwords[0])
    assert (tmp_path / "demo-editor-password").stat().st_mode & 0o077 == 0


def test_the_demo_newsletters_welcome_their_readers(smtp_server):
    from django.utils import timezone

    from tests.letters import welcome_deliver

    call_command("load_demo", "--no-editor", stdout=io.StringIO())
    for newsletter in Newsletter.objects.all():
        assert newsletter.onboarding_steps.get(position=1).body.strip(), newsletter.slug
        subscriber = Subscriber.objects.filter(subscriptions__newsletter=newsletter).first()
        assert welcome_deliver(subscriber=subscriber, newsletter=newsletter, now=timezone.now())
    assert {received.message["Subject"] for received in smtp_server.received} == {
        f"Welcome to {name}" for name in Newsletter.objects.values_list("name", flat=True)
    }
