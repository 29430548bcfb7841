from django.urls import path

from newsletters import views

app_name = "newsletters"
urlpatterns = [
    path("", views.home, name="home"),
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/sent/", views.subscribe_sent, name="subscribe_sent"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("p/<str:token>/", views.preferences, name="preferences"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/weekly/", views.unsubscribe_to_weekly, name="unsubscribe_weekly"),
    path("n/<slug:slug>/", views.archive, name="archive"),
    path("n/<slug:slug>/feed/", views.NewsletterFeed(), name="feed"),
    path("n/<slug:slug>/<slug:issue_slug>/", views.issue_detail, name="issue"),
]
