from django.urls import path, register_converter

from newsletters import embed, image_views, privacy_views, undo, views


class UnicodeSlugConverter:
    """Slugs as SlugField(allow_unicode=True) stores them: letters of any script, digits, _ and -."""

    regex = r"[-\w]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UnicodeSlugConverter, "uslug")

app_name = "newsletters"
urlpatterns = [
    path("", views.home, name="home"),
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/sent/", views.subscribe_sent, name="subscribe_sent"),
    path("subscribe/challenge/", embed.challenge, name="challenge"),
    path("embed/subscribe/", embed.embed_subscribe, name="embed_subscribe"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("p/<str:token>/", views.preferences, name="preferences"),
    path("p/<str:token>/join/", undo.join, name="join"),
    path("p/<str:token>/data.json", privacy_views.data, name="data"),
    path("p/<str:token>/delete/", privacy_views.erase_request, name="erase_request"),
    path("delete/<str:token>/", privacy_views.erase, name="erase"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("keep/<str:token>/", views.keep, name="keep"),
    path("undo/<str:token>/", undo.undo, name="undo"),
    path("u/<str:token>/weekly/", views.unsubscribe_to_weekly, name="unsubscribe_weekly"),
    path("images/<uslug:slug>/<str:name>", image_views.image, name="image"),
    path("n/<uslug:slug>/", views.archive, name="archive"),
    path("n/<uslug:slug>/feed/", views.NewsletterFeed(), name="feed"),
    path("n/<uslug:slug>/<uslug:issue_slug>/", views.issue_detail, name="issue"),
]
