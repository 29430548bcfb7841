"""sitemap.xml (django.contrib.sitemaps): every public newsletter's archive and its visible issues, at SITE_URL."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.utils import timezone

from newsletters.models import Issue
from newsletters.selectors import newsletters_public


class _AtSiteUrl(Sitemap):
    """Absolute addresses from SITE_URL, not from the request's Host header."""

    def get_protocol(self, protocol=None) -> str:
        return urlsplit(settings.SITE_URL).scheme

    def get_domain(self, site=None) -> str:
        return urlsplit(settings.SITE_URL).netloc


class ArchiveSitemap(_AtSiteUrl):
    changefreq = "weekly"

    def items(self):
        return newsletters_public().order_by("slug")


class IssueSitemap(_AtSiteUrl):
    changefreq = "monthly"

    def items(self):
        return (
            Issue.objects.visible(now=timezone.now())
            .filter(newsletter__active=True)
            .select_related("newsletter")
            .only("slug", "updated_at", "newsletter__slug")
            .order_by("newsletter__slug", "-publish_at", "-id")
        )

    def lastmod(self, issue):
        return issue.updated_at


SITEMAPS = {"archives": ArchiveSitemap, "issues": IssueSitemap}
