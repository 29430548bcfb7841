from django.apps import AppConfig


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = "Webhooks"

    def ready(self):
        from hooks import checks  # noqa: F401  (registers the system checks)
        from hooks.receivers import receivers_connect

        receivers_connect()
