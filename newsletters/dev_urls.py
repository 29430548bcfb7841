from django.urls import path

from newsletters import dev_views

app_name = "dev"
urlpatterns = [
    path("outbox/", dev_views.outbox, name="outbox"),
    path("outbox/<str:name>/", dev_views.outbox_message, name="outbox_message"),
]
