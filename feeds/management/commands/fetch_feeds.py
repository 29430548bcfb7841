from django.core.management.base import BaseCommand

from feeds.models import Feed
from feeds.services import feed_fetch
from project.clock import db_now


class Command(BaseCommand):
    help = "Fetch every active feed once and draft or publish an issue of each one's new items."

    def handle(self, *args, **options):
        now = db_now()
        failed = 0
        for feed in Feed.objects.filter(active=True, newsletter__active=True).select_related("newsletter"):
            outcome = feed_fetch(feed=feed, now=now)
            detail = f": {feed.last_error}" if outcome == "failed" else ""
            self.stdout.write(f"  {outcome:9} {feed.newsletter.slug} {feed.url}{detail}")
            failed += outcome == "failed"
        if failed:
            self.stderr.write(self.style.WARNING(f"{failed} feed(s) failed; the feeds' admin list shows why."))
