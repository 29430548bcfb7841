"""Feeds a newsletter follows, and the items already gathered from each (by GUID)."""

from django.db import models

from newsletters.models import Issue, Newsletter


class FeedMode(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISH = "publish", "Publish at once"


class Feed(models.Model):
    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="feeds")
    url = models.URLField(max_length=1000, help_text="The RSS or Atom feed's address.")
    mode = models.CharField(
        max_length=10,
        choices=FeedMode,
        default=FeedMode.DRAFT,
        help_text="What the issue of new posts becomes: a draft an editor publishes, or published for the next digests.",
    )
    active = models.BooleanField(default=True)
    title = models.CharField(max_length=300, blank=True, help_text="The feed's own title, from its last fetch.")
    last_fetched_at = models.DateTimeField(null=True, blank=True, help_text="The last fetch that read the feed.")
    last_error = models.TextField(blank=True, help_text="Why the last fetch failed (empty once one succeeds).")
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["newsletter", "url"]
        constraints = [models.UniqueConstraint(fields=["newsletter", "url"], name="feed_unique_url_per_newsletter")]

    def __str__(self) -> str:
        return self.title or self.url


class FeedItem(models.Model):
    """One entry seen in a feed: gathered into `issue`, or noted on the first fetch (issue empty)."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="items")
    guid = models.CharField(max_length=1000)
    issue = models.ForeignKey(Issue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    seen_at = models.DateTimeField()

    class Meta:
        # Serves the "already seen?" look-up of every fetch, and keeps an item to one issue.
        constraints = [models.UniqueConstraint(fields=["feed", "guid"], name="feeditem_unique_guid_per_feed")]

    def __str__(self) -> str:
        return self.guid
