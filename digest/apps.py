from django.apps import AppConfig
from django.core.signals import request_started


class DigestConfig(AppConfig):
    name = "digest"
    verbose_name = "Digest delivery"

    def ready(self):
        from digest import checks  # noqa: F401  (registers the system checks)
        from digest.desk.previews import issue_published_warnings
        from digest.planning.invitations import invitations_on_import
        from digest.planning.letters import onboarding_restart
        from digest.privacy import subscriber_data, subscriber_erase
        from digest.rendering.dkim import message_sign
        from digest.rendering.warm import WARM_UID, rendering_warm_on_first_request
        from digest.returns.webhooks import tracking_connect
        from newsletters.messages import signer_install
        from newsletters.signals import (
            issue_saved_from_file,
            subscriber_confirmed,
            subscriber_data_export,
            subscriber_erasing,
            subscribers_imported,
        )

        tracking_connect()
        signer_install(message_sign)  # every mail to readers, not only digests, is DKIM-signed
        issue_saved_from_file.connect(issue_published_warnings, dispatch_uid="digest.rendering.clip")
        subscriber_data_export.connect(subscriber_data, dispatch_uid="digest.privacy")
        subscriber_erasing.connect(subscriber_erase, dispatch_uid="digest.privacy")
        request_started.connect(rendering_warm_on_first_request, dispatch_uid=WARM_UID)
        subscriber_confirmed.connect(
            lambda sender, subscriptions, now, **kwargs: onboarding_restart(subscriptions=subscriptions, now=now),
            dispatch_uid="digest.onboarding",
            weak=False,
        )
        subscribers_imported.connect(invitations_on_import, dispatch_uid="digest.planning.invitations")
