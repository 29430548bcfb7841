"""The signup firewall's counts, SignupRefusal (newsletters.models re-exports it; newsletters.firewall writes them).

Apart from newsletters/models.py to keep that module short.
"""

from django.db import models


class SignupRefusalReason(models.TextChoices):
    HONEYPOT = "honeypot", "Honeypot field filled"
    CHALLENGE = "challenge", "Challenge missing or wrong"
    CLIENT = "client", "Too many from one IP"
    NETWORK = "network", "Too many from one network"
    DOMAIN = "domain", "Too many for one domain"
    DISPOSABLE = "disposable", "Disposable domain"
    NO_MAIL = "no_mail", "Domain receives no mail"


class SignupRefusal(models.Model):
    """Subscribe requests the signup firewall refused, counted per day and reason."""

    day = models.DateField()
    reason = models.CharField(max_length=20, choices=SignupRefusalReason)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "reason"]
        constraints = [models.UniqueConstraint(fields=["day", "reason"], name="signup_refusal_unique_day_reason")]

    def __str__(self) -> str:
        return f"{self.day} {self.reason}: {self.count}"
