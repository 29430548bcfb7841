from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path

from digest.desk.views import breaker_resume, dashboard, deliverability
from digest.returns.links import link_follow
from newsletters.sitemaps import SITEMAPS
from staff.views import two_factor

urlpatterns = [
    # Under admin/, with the admin's staff login; linked first from the admin index.
    path("admin/dashboard/", admin.site.admin_view(dashboard), name="dashboard"),
    path("admin/dashboard/resume/<int:pk>/", admin.site.admin_view(breaker_resume), name="breaker_resume"),
    path("admin/deliverability/", admin.site.admin_view(deliverability), name="deliverability"),
    path("admin/two-factor/", admin.site.admin_view(two_factor), name="two_factor"),
    path("admin/", admin.site.urls),
    # ESPs' tracking webhooks (django-anymail), for bounces and complaints: digest.returns.webhooks.
    path("anymail/", include("digest.returns.webhooks")),
    # The REST API (api/): /api/v1/, its OpenAPI schema and docs.
    path("api/", include("api.urls")),
    # The counting redirect of links in digests (newsletters with count_links on).
    path("l/<str:token>/", link_follow, name="link_follow"),
    path("dev/", include("newsletters.dev_urls")),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
    path("", include("newsletters.urls")),
] + static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
