"""The choices of the models' fields (newsletters.models imports them, and is where callers find them)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class IssueStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class SubscriberStatus(models.TextChoices):
    PENDING = "pending", "Pending confirmation"
    ACTIVE = "active", "Active"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    SUPPRESSED = "suppressed", "Suppressed (bounces)"


# Readers choose these on their pages: the labels are translated.
class Frequency(models.TextChoices):
    IMMEDIATE = "immediate", _("Immediately")
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")
    FORTNIGHTLY = "fortnightly", _("Every two weeks")
    MONTHLY = "monthly", _("Monthly")


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", _("Pending confirmation")
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")


class SignupRefusalReason(models.TextChoices):
    HONEYPOT = "honeypot", "Honeypot field filled"
    CHALLENGE = "challenge", "Challenge missing or wrong"
    CLIENT = "client", "Too many from one IP"
    NETWORK = "network", "Too many from one network"
    DOMAIN = "domain", "Too many for one domain"
    DISPOSABLE = "disposable", "Disposable domain"
    NO_MAIL = "no_mail", "Domain receives no mail"
