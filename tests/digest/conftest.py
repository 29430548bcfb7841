import datetime
import re

import pytest
from django.db.models import F

from digest.conf import digest_settings
from digest.models import Delivery, DeliveryStatus
from digest.run import digest_run
from newsletters.models import Subscription
from newsletters.tokens import token_read
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

UTC = datetime.UTC


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def leases_expire() -> int:
    """Age every claim in flight past its lease, as the database's clock would without a renewal; return how many.

    Only for claims whose sender is dead (killed, or done): a live one would renew them.
    """
    lease = datetime.timedelta(seconds=digest_settings.CLAIM_TIMEOUT + 1)
    return Delivery.objects.filter(status=DeliveryStatus.SENDING).update(claimed_at=F("claimed_at") - lease)


def mailto_unsubscribe_names(header: str) -> int:
    """Check a List-Unsubscribe's mailto carries its URL's signed token; return the subscription it names."""
    url, mailto = (part.strip().strip("<>") for part in header.split(","))
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe%20"), mailto
    assert mailto.removeprefix("mailto:unsubscribe@example.com?subject=unsubscribe%20") == token
    return token_read(token, purpose="unsubscribe", kind=int)


def style_block_rules(html: str) -> list[str]:
    """The top-level rules' preludes in an HTML document's <style> blocks (what premailer left there)."""
    preludes = []
    for block in re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL):
        depth, start = 0, 0
        for position, character in enumerate(block):
            if character == "{":
                if depth == 0:
                    preludes.append(" ".join(block[start:position].split()))
                depth += 1
            elif character == "}":
                depth -= 1
                start = position + 1 if depth == 0 else start
    return preludes


def body(message, subtype: str) -> str:
    """Return a message's text or HTML part with normalised line ends."""
    return message.get_body(preferencelist=(subtype,)).get_content().replace("\r\n", "\n")


class World:
    """A newsletter with readers and a clock: publish issues, run digests, read inboxes."""

    def __init__(self, smtp_server):
        self.smtp = smtp_server
        self.newsletter = NewsletterFactory(
            name="Weekly Notes",
            slug="weekly",
            send_time=datetime.time(8, 0),
            weekly_day=0,
            reply_to="editors@example.com",
        )

    def subscribe(self, email: str, *, frequency="daily", tz="UTC", name="", since: datetime.datetime, newsletter=None):
        subscriber = SubscriberFactory(email=email, timezone=tz, name=name or email.split("@")[0].title())
        subscription = SubscriptionFactory(
            subscriber=subscriber, newsletter=newsletter or self.newsletter, frequency=frequency
        )
        Subscription.objects.filter(pk=subscription.pk).update(created_at=since)
        subscription.refresh_from_db()
        return subscription

    def publish(self, title: str, when: datetime.datetime, **kwargs):
        kwargs.setdefault("newsletter", self.newsletter)
        return IssueFactory(title=title, publish_at=when, **kwargs)

    def run(self, when: datetime.datetime, **kwargs):
        return digest_run(now=when, **kwargs)

    def inbox(self, email: str) -> list:
        return [r.message for r in self.smtp.received if email in r.recipients]

    def titles(self, email: str) -> list[str]:
        """Every issue title each message to `email` carried, in order received (from the text part)."""
        seen = []
        for message in self.inbox(email):
            text = body(message, "plain")
            seen.extend(line for line in text.splitlines() if line.startswith("Issue "))
        return seen


@pytest.fixture
def world(db, smtp_server):
    return World(smtp_server)
