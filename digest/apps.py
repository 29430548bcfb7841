from django.apps import AppConfig


class DigestConfig(AppConfig):
    name = "digest"
    verbose_name = "Digest delivery"

    def ready(self):
        from digest import checks  # noqa: F401  (registers the system checks)
        from digest.dkim import message_sign
        from digest.webhooks import tracking_connect
        from newsletters.messages import signer_install

        tracking_connect()
        signer_install(message_sign)  # every mail to readers, not only digests, is DKIM-signed
