from django.urls import path

from newsletters import views

app_name = "newsletters"
urlpatterns = [
    path("", views.home, name="home"),
    path("n/<slug:slug>/", views.archive, name="archive"),
    path("n/<slug:slug>/<slug:issue_slug>/", views.issue_detail, name="issue"),
]
