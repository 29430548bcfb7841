"""Test data factories."""

import datetime
import uuid

import factory
from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.utils import timezone as dj_timezone

from newsletters.models import (
    Frequency,
    Issue,
    IssueStatus,
    Newsletter,
    OnboardingStep,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletters.roles import ROLES


class NewsletterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Newsletter
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Newsletter {n}")
    slug = factory.Sequence(lambda n: f"newsletter-{n}")
    from_email = "News <news@example.com>"
    send_time = datetime.time(8, 0)

    @factory.post_generation
    def welcome_text(newsletter, create, text, **kwargs):
        """A welcome text: the newsletter's onboarding step one, sent at once (as the old welcome_text field was)."""
        if create and text and text.strip():
            OnboardingStep.objects.create(
                newsletter=newsletter,
                position=1,
                body=text,
                created_at=dj_timezone.now() - datetime.timedelta(days=3650),
            )


class IssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issue

    newsletter = factory.SubFactory(NewsletterFactory)
    title = factory.Sequence(lambda n: f"Issue {n}")
    slug = factory.Sequence(lambda n: f"issue-{n}")
    body = "Hello **readers**.\n\n- one\n- two\n"
    status = IssueStatus.PUBLISHED
    publish_at = factory.LazyFunction(lambda: dj_timezone.now() - datetime.timedelta(hours=1))


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    name = factory.Sequence(lambda n: f"Reader {n}")
    timezone = "UTC"
    status = SubscriberStatus.ACTIVE
    confirmed_at = factory.LazyFunction(dj_timezone.now)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    newsletter = factory.SubFactory(NewsletterFactory)
    frequency = Frequency.DAILY
    status = SubscriptionStatus.ACTIVE


def claimant_new() -> str:
    """A sender's claimant id, as a send task's result id would be."""
    return uuid.uuid4().hex


def roles_make() -> None:
    """The role groups with their permissions, as the migrations made them.

    A transactional test (a browser test's live server) flushes every table, the groups and
    permissions the migrations wrote with them: a test that signs in an Editor or an Owner
    makes them again first.
    """
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for name, permissions in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        codes = [permission.split(".") for permission in permissions]
        group.permissions.set(
            [Permission.objects.get(content_type__app_label=app_label, codename=code) for app_label, code in codes]
        )
