"""What is sent and to whom. Models hold data and constraints; services do the writes."""

import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, ProhibitNullCharactersValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from newsletters.choices import (
    Frequency,
    IssueStatus,
    SignupRefusalReason,
    SubscriberStatus,
    SubscriptionStatus,
    Weekday,
)
from newsletters.emails import theme_choices
from newsletters.languages import validate_shipped_language

# Models of this app kept in a module of their own; imported here, where Django looks for them.
from newsletters.media import Attachment, Image, attachment_upload_to  # noqa: F401
from newsletters.models_imports import ImportMode, ImportStatus, SubscriberImport  # noqa: F401 (defined apart to keep this module short)
from newsletters.models_onboarding import OnboardingStep  # noqa: F401 (the same)
from newsletters.validators import (
    check_not_empty,
    check_single_line,
    validate_hex_colour,
    validate_language,
    validate_logo,
    validate_mailbox,
    validate_origins,
    validate_single_line,
    validate_timezone,
)


def default_language() -> str:
    """A new newsletter's language: the site's LANGUAGE_CODE."""
    return settings.LANGUAGE_CODE


def sender_of(from_email: str) -> str:
    """A newsletter's From, given its from_email field: that, else DEFAULT_FROM_EMAIL."""
    return from_email or settings.DEFAULT_FROM_EMAIL


class Newsletter(models.Model):
    name = models.CharField(max_length=200, validators=[validate_single_line])
    slug = models.SlugField(max_length=100, unique=True, allow_unicode=True)
    description = models.TextField(blank=True)
    from_email = models.CharField(
        max_length=254,
        blank=True,
        validators=[validate_mailbox],
        help_text='One sender address, e.g. "Weekly News <news@example.com>". Empty: DEFAULT_FROM_EMAIL.',
    )
    reply_to = models.EmailField(blank=True)
    list_id = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text="List-Id header value (RFC 2919), e.g. weekly.example.com. Empty: derived from slug and SITE_URL.",
    )
    send_time = models.TimeField(
        default=datetime.time(8, 0),
        help_text="Local time of day, in each subscriber's time zone, for daily and weekly digests.",
    )
    weekly_day = models.IntegerField(
        choices=Weekday,
        default=Weekday.MONDAY,
        help_text="Day of weekly and fortnightly digests (fortnightly: every other week, in the even weeks "
        "counted from Monday 1 January 2024), and of monthly ones when their day of the month is 0.",
    )
    monthly_day = models.PositiveSmallIntegerField(
        default=1,
        validators=[MaxValueValidator(28)],
        help_text="Day of the month of monthly digests, 1 to 28 (every month has it); 0: the first weekly "
        "day of the month instead (the first Monday, say).",
    )
    language = models.CharField(
        max_length=35,
        default=default_language,
        validators=[validate_language],
        help_text="The language its issues are written in (en, de, he, pt-BR): the emails' lang, which screen "
        "readers and hyphenation follow. Default: LANGUAGE_CODE.",
    )
    postal_address = models.TextField(
        blank=True,
        help_text="The sender's physical postal address, shown in every digest's footer "
        "(required in commercial email by CAN-SPAM; mail providers expect a clear identity).",
    )
    template = models.CharField(
        max_length=50,
        blank=True,
        default="",
        choices=theme_choices,
        help_text="The look of its mails: one of the templates in templates/emails/themes/ (see the gallery). "
        "Files in templates/emails/<slug>/ override single templates for this newsletter alone.",
    )
    logo = models.ImageField(
        upload_to="logos/",
        blank=True,
        width_field="logo_width",
        height_field="logo_height",
        validators=[validate_logo],
        help_text="PNG, JPEG or GIF, at most 512 KB, drawn at most 200 px wide atop its mails (upload it 400 px "
        "wide for sharp screens). Empty: its name.",
    )
    logo_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    logo_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    accent_color = models.CharField(
        "accent colour",
        max_length=7,
        blank=True,
        validators=[validate_hex_colour],
        help_text="#rrggbb, e.g. #0b5cad: the rule under the masthead and the buttons; links and the name too "
        "when it reads on white (contrast 4.5:1). Empty: the default blue.",
    )
    header_text = models.TextField(
        "header",
        blank=True,
        validators=[ProhibitNullCharactersValidator()],
        help_text="Markdown shown under the greeting of every mail of this newsletter (e.g. a sponsor line).",
    )
    footer_text = models.TextField(
        "footer",
        blank=True,
        validators=[ProhibitNullCharactersValidator()],
        help_text="Markdown shown in the footer of every mail of this newsletter, above the postal address.",
    )
    active = models.BooleanField(default=True)
    count_links = models.BooleanField(
        default=False,
        help_text="Count how often each link of an issue is followed from the digests, through a signed "
        "redirect on this site: per issue and link, never per reader. Off: links go straight to their site.",
    )
    embed_origins = models.TextField(
        blank=True,
        validators=[validate_origins],
        help_text="Sites whose pages may carry this newsletter's subscribe form, one origin a line, e.g. "
        "https://blog.example.com: the form sends readers back there, and scripts there may read its JSON answer.",
    )
    # Set by the digest engine's circuit breaker when bounces or complaints pass their limits:
    # its digests wait, planned, until an owner resumes sending.
    paused_at = models.DateTimeField(null=True, blank=True, help_text="When sending was paused (circuit breaker).")
    pause_reason = models.CharField(max_length=300, blank=True, help_text="Why sending was paused.")
    resumed_at = models.DateTimeField(
        null=True, blank=True, help_text="When sending was last resumed: rates count from here."
    )
    resumed_by = models.CharField(max_length=150, blank=True, help_text="Who last resumed sending.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            check_single_line("name", "newsletter_name_single_line"),
            check_not_empty("slug", "newsletter_slug_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("newsletters:archive", kwargs={"slug": self.slug})

    @property
    def sender(self) -> str:
        """The From of its mail: its own from_email, else DEFAULT_FROM_EMAIL."""
        return sender_of(self.from_email)


class IssueQuerySet(models.QuerySet):
    def visible(self, *, now: datetime.datetime) -> "IssueQuerySet":
        """Issues readers may see at `now`: published, with a publish time that has passed."""
        return self.filter(status=IssueStatus.PUBLISHED, publish_at__lte=now)


class Issue(models.Model):
    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="issues")
    title = models.CharField(max_length=250, validators=[validate_single_line])
    slug = models.SlugField(max_length=250, allow_unicode=True)
    body = models.TextField(
        help_text="Markdown: headings, lists, tables, fenced code, footnotes, links, images.",
        validators=[ProhibitNullCharactersValidator()],
    )
    preheader = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text="The line inboxes show after the subject. Empty: the first words of the body.",
    )
    status = models.CharField(max_length=10, choices=IssueStatus, default=IssueStatus.DRAFT)
    publish_at = models.DateTimeField(
        null=True, blank=True, help_text="When readers get it. In the future: scheduled. Required to publish."
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IssueQuerySet.as_manager()

    class Meta:
        ordering = ["-publish_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["newsletter", "slug"], name="issue_unique_slug_per_newsletter"),
            models.CheckConstraint(
                condition=Q(status=IssueStatus.DRAFT) | Q(publish_at__isnull=False),
                name="issue_published_has_publish_at",
            ),
            check_single_line("title", "issue_title_single_line"),
            check_not_empty("slug", "issue_slug_not_empty"),
        ]
        indexes = [models.Index(fields=["newsletter", "status", "publish_at"], name="issue_visible_idx")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("newsletters:issue", kwargs={"slug": self.newsletter.slug, "issue_slug": self.slug})

    def state_at(self, now: datetime.datetime) -> str:
        """Draft, scheduled or published at `now`, as an editor thinks of it."""
        if self.status == IssueStatus.DRAFT:
            return "draft"
        return "scheduled" if self.publish_at > now else "published"

    @property
    def state(self) -> str:
        """The state at this moment, for what is only shown (lists, pages, command output).

        Code that decides something takes its `now` from the caller: `state_at(now)`.
        """
        return self.state_at(timezone.now())


class Subscriber(models.Model):
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True, validators=[validate_single_line])
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    language = models.CharField(
        max_length=35,
        blank=True,
        validators=[validate_shipped_language],
        help_text="The reader's language (one of LANGUAGES), for pages and mails. Empty: the newsletter's.",
    )
    status = models.CharField(max_length=20, choices=SubscriberStatus, default=SubscriberStatus.PENDING)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(
        default=0,
        help_text="Permanent delivery failures in a row; the subscriber is suppressed at DIGEST_SUPPRESS_AFTER.",
    )
    last_link_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the reader last used a signed link (confirm, preferences, archive, keep-me): "
        "re-confirmation asks those quiet for DIGEST_RECONFIRM_MONTHS whether they still want mail.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique"),
            check_single_line("name", "subscriber_name_single_line"),
        ]

    def __str__(self) -> str:
        return self.email


class Subscription(models.Model):
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="subscriptions")
    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="subscriptions")
    frequency = models.CharField(max_length=12, choices=Frequency, default=Frequency.WEEKLY)
    status = models.CharField(max_length=20, choices=SubscriptionStatus, default=SubscriptionStatus.PENDING)
    cursor = models.DateTimeField(
        null=True, blank=True, help_text="End of the window of the last digest; the next one starts here."
    )
    next_due_at = models.DateTimeField(null=True, blank=True, help_text="When the scheduler next considers this one.")
    unsubscribed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the reader last unsubscribed (the dashboard and issue reports count these).",
    )
    paused_quiet = models.BooleanField(
        default=False, help_text="Paused by re-confirmation: the reader did not answer “still want this?”."
    )
    joined_at = models.DateTimeField(
        null=True, blank=True, help_text="When the reader last confirmed joining: onboarding steps count from it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    subscriber_import = models.ForeignKey(
        "SubscriberImport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="subscriptions",
        help_text="The admin import that created or activated it (its consent record).",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "newsletter"], name="subscription_unique_pair"),
        ]
        indexes = [
            models.Index(fields=["next_due_at"], condition=Q(status="active"), name="subscription_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} → {self.newsletter} ({self.frequency})"


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
