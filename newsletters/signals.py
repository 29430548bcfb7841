"""Signals other apps answer: how this app hears about sending without importing it."""

from django.dispatch import Signal

# Sent by publish_issue once an issue is saved, with issue=. Each receiver returns a list of
# warnings for the editor (digest: an issue too long for Gmail's clip), which the command prints.
issue_saved_from_file = Signal()
