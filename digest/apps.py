from django.apps import AppConfig


class DigestConfig(AppConfig):
    name = "digest"
    verbose_name = "Digest delivery"

    def ready(self):
        from digest import checks  # noqa: F401  (registers the system checks)
        from digest.webhooks import tracking_connect

        tracking_connect()
