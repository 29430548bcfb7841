"""Signals other apps answer: how this app hears about sending without importing it."""

from django.dispatch import Signal

# Sent by publish_issue once an issue is saved, with issue= and now=. Each receiver returns a list of
# warnings for the editor (digest: an issue too long for Gmail's clip), which the command prints.
issue_saved_from_file = Signal()

# Sent inside the transaction of the change they announce, so whatever a receiver writes (the
# hooks app's outbox) commits or rolls back with it. Each comes with now= as well.
# subscriber=, subscriptions= (those that became active): a reader confirmed.
subscriber_confirmed = Signal()
# subscription=: its frequency or status changed (other than to unsubscribed).
subscription_changed = Signal()
# subscription_ids=: these subscriptions were unsubscribed.
subscriptions_unsubscribed = Signal()

# Sent by privacy.subscriber_export with subscriber=. Each receiver returns a dict of what its
# app holds about that reader (digest: deliveries and bounce events), merged into the download.
subscriber_data_export = Signal()

# Sent by privacy.subscriber_erase inside its transaction, with subscriber= (the address still
# readable) and address_hash=, before the reader's personal data is removed. Receivers remove
# theirs (digest: the bounce events' raw messages and diagnostics, deliveries' last errors) and
# keep only what the sending ledger needs.
subscriber_erasing = Signal()

# Sent by subscriber_imports.subscriber_import_run once an admin import in "invite" mode has
# written its rows (each chunk committed), with subscriber_import= and now=. The digest app
# plans one invitation letter per subscription the import named that waits for confirmation.
subscribers_imported = Signal()
