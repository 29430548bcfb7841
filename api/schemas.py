"""What the API reads and answers: typed schemas, from which the OpenAPI document is generated."""

import datetime
import re
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from newsletters.conf import site_url

Frequency = Literal["immediate", "daily", "weekly"]
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]")


def _iso_text(value):
    """Refuse what pydantic would otherwise read as a moment, such as a number of seconds since 1970."""
    if isinstance(value, str) and not ISO_DATE.match(value):
        raise ValueError("expected an ISO 8601 date-time with an offset, such as 2026-05-01T09:00:00+02:00")
    return value


# A row's id: what a database's bigint holds (a larger number is refused, not sent to the database).
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _in_utc(value: datetime.datetime) -> datetime.datetime:
    """The same moment in UTC: databases refuse offsets Python allows (PostgreSQL's end at ±15:59)."""
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError("the date-time is out of range") from None


# An ISO 8601 date-time with its offset: a bare "09:00" on a server means nothing to a caller elsewhere.
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]


class NewsletterOut(Schema):
    id: int
    name: str
    slug: str
    description: str
    language: str
    from_email: str
    active: bool
    # A wall-clock time without an offset, which JSON Schema's "time" format does not allow.
    send_time: str = Field(
        pattern=r"^\d{2}:\d{2}$",
        description="HH:MM in each subscriber's own time zone: when daily and weekly digests go.",
    )
    weekly_day: int = Field(description="0 Monday … 6 Sunday: the day of weekly digests.")
    url: str

    @staticmethod
    def resolve_send_time(obj) -> str:
        return f"{obj.send_time:%H:%M}"

    @staticmethod
    def resolve_url(obj) -> str:
        return site_url(obj.get_absolute_url())


class IssueOut(Schema):
    id: int
    newsletter: int = Field(alias="newsletter_id")
    title: str
    slug: str
    preheader: str
    body: str = Field(description="Markdown.")
    status: Literal["draft", "scheduled", "published"] = Field(alias="state")
    publish_at: datetime.datetime | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class IssueIn(Schema):
    newsletter: Id
    title: str = Field(min_length=1, max_length=250)
    slug: str | None = Field(None, max_length=250, description="Empty: made from the title.")
    body: str = Field(min_length=1, description="Markdown, as editors write it in the admin.")
    preheader: str = Field("", max_length=200)


class IssuePatch(Schema):
    title: str | None = Field(None, min_length=1, max_length=250)
    slug: str | None = Field(None, min_length=1, max_length=250)
    body: str | None = Field(None, min_length=1)
    preheader: str | None = Field(None, max_length=200)


class ScheduleIn(Schema):
    publish_at: Moment = Field(description="In the future.")


class PreviewOut(Schema):
    subject: str
    html: str
    text: str


class SubscriptionOut(Schema):
    id: int
    subscriber: int = Field(alias="subscriber_id")
    newsletter: int = Field(alias="newsletter_id")
    frequency: Frequency
    status: Literal["pending", "active", "paused", "unsubscribed"]
    created_at: datetime.datetime
    unsubscribed_at: datetime.datetime | None


class SubscriberOut(Schema):
    id: int
    email: str
    name: str
    timezone: str
    language: str = Field(
        description="The reader's language for pages and mails (one of LANGUAGES); empty: the newsletter's."
    )
    status: Literal["pending", "active", "unsubscribed", "suppressed"]
    confirmed_at: datetime.datetime | None
    created_at: datetime.datetime
    subscriptions: list[SubscriptionOut]


class Choice(Schema):
    newsletter: Id
    frequency: Frequency = "weekly"


class ConsentIn(Schema):
    text: str = Field(min_length=1, max_length=5000, description="What the reader agreed to, as they saw it.")
    given_at: Moment
    source_ip: str | None = Field(None, description="The reader's IP address when they agreed.")


class SubscriberIn(Schema):
    email: str = Field(min_length=1, max_length=254)
    name: str = Field("", max_length=200)
    timezone: str = "UTC"
    language: str = Field("", description="The reader's language (one of LANGUAGES); empty: the newsletter's.")
    subscriptions: list[Choice] = Field(min_length=1)
    confirmation: Literal["double_opt_in", "consent_recorded"] = Field(
        "double_opt_in",
        description="double_opt_in: mail the reader a confirmation link, store nothing until they follow it. "
        "consent_recorded: the reader consented in your app; `consent` is kept as evidence.",
    )
    consent: ConsentIn | None = None
    client_ip: str | None = Field(
        None,
        description="double_opt_in: the reader's IP address, so the per-client rate limit (NEWSLETTERS_RATE_PER_CLIENT) "
        "counts readers; without it every request of this token counts as one client.",
    )


class Accepted(Schema):
    detail: str


class SubscriberPatch(Schema):
    name: str | None = Field(None, max_length=200)
    timezone: str | None = None
    language: str | None = Field(None, description="One of LANGUAGES; empty: the newsletter's.")


class SubscriptionPatch(Schema):
    frequency: Frequency | None = None
    status: Literal["active", "paused", "unsubscribed"] | None = None


class BounceOut(Schema):
    id: int
    subscriber: int = Field(alias="subscriber_id")
    delivery: int | None = Field(alias="delivery_id")
    kind: Literal["hard", "soft", "complaint", "unsubscribed", "lifted"]
    action: str
    source: str
    occurred_at: datetime.datetime
    status: str = Field(description="Enhanced status code (RFC 3463), e.g. 5.1.1.")
    diagnostic: str


class IssueStatsOut(Schema):
    issue: int
    digests: int = Field(description="Digests that carried the issue.")
    by_outcome: dict[str, int]
    unsubscribed_after: int
    bounces: int
    complaints: int


class DayStats(Schema):
    start: datetime.date = Field(description="The day, or the Monday of the week when by_week.")
    readers: dict[str, int] = Field(description="subscribed, confirmed, unsubscribed.")
    digests: dict[str, int] = Field(description="sent, deferred, failed, skipped, queued.")


class DailyStatsOut(Schema):
    by_week: bool
    buckets: list[DayStats]
