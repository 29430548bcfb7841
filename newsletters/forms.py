"""Reader forms: subscribe and preferences. Fields carry the same validators as the models."""

from functools import cache

from django import forms
from django.forms.utils import flatatt
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from newsletters.languages import shipped_languages
from newsletters.models import Frequency, Newsletter, Subscriber, SubscriptionStatus
from newsletters.validators import email_normalize, timezone_names, validate_single_line


@cache
def _timezone_choices() -> tuple[tuple[str, str], ...]:
    return tuple((name, name.replace("_", " ")) for name in sorted(timezone_names()))


def _options_html(choices) -> str:
    return "".join(f'<option value="{escape(value)}">{escape(label)}</option>' for value, label in choices)


@cache
def _timezone_options_html() -> str:
    return _options_html(_timezone_choices())


class PlainSelect(forms.Select):
    """A Select whose options are built in Python, not through a template each.

    Django's Select renders every <option> through its own template, which costs about
    20 µs an option. The HTML is the same as Select's (label, id, attributes), so pages
    look and behave the same, keyboard and screen readers included.
    """

    def options_html(self) -> str:
        return _options_html(self.choices)

    def render(self, name, value, attrs=None, renderer=None):
        options = self.options_html()
        chosen = self.format_value(value)
        if chosen:
            option = f'<option value="{escape(chosen[0])}">'
            options = options.replace(option, option[:-1] + " selected>", 1)
        return mark_safe(
            f'<select name="{escape(name)}"{flatatt(self.build_attrs(self.attrs, attrs))}>{options}</select>'
        )


class TimezoneSelect(PlainSelect):
    """The ~600-zone select: its options are one string built once per process (the zones do not change)."""

    def options_html(self) -> str:
        return _timezone_options_html()

    def use_required_attribute(self, initial) -> bool:
        # What Select answers when the first option has a value, without listing 600 choices to find out.
        return False


class TimezoneField(forms.ChoiceField):
    """A choice of IANA zone, checked against the set of names rather than the list of choices."""

    widget = TimezoneSelect

    def __init__(self, **kwargs):
        super().__init__(choices=_timezone_choices, **kwargs)

    def valid_value(self, value) -> bool:
        return value in timezone_names()


class SubscribeForm(forms.Form):
    """Email, name, time zone, and for each newsletter whether to follow it and how often."""

    email = forms.EmailField(max_length=254, label=_("Email address"))
    name = forms.CharField(
        max_length=200, required=False, validators=[validate_single_line], label=_("Name (optional)")
    )
    timezone = TimezoneField(initial="UTC", label=_("Time zone"))

    def clean_email(self) -> str:
        # One reader however the domain is written: Bücher.example, bücher.example, xn--bcher-kva.example.
        return email_normalize(self.cleaned_data["email"])

    def __init__(self, *args, newsletters: list[Newsletter], **kwargs):
        super().__init__(*args, **kwargs)
        self.newsletters = newsletters
        for newsletter in newsletters:
            self.fields[f"nl_{newsletter.pk}"] = forms.BooleanField(required=False, label=newsletter.name)
            self.fields[f"freq_{newsletter.pk}"] = forms.ChoiceField(
                choices=Frequency.choices,
                widget=PlainSelect,
                initial=Frequency.WEEKLY,
                label=_("How often for %(newsletter)s") % {"newsletter": newsletter.name},
            )

    def rows(self):
        """(newsletter, follow field, frequency field) for the template."""
        return [(n, self[f"nl_{n.pk}"], self[f"freq_{n.pk}"]) for n in self.newsletters]

    def clean(self):
        cleaned = super().clean()
        known = {f"nl_{n.pk}" for n in self.newsletters}
        if any(key.startswith("nl_") and key not in known for key in self.data):
            raise forms.ValidationError(_("One of the chosen newsletters does not exist."), code="unknown_newsletter")
        if not self.choices():
            raise forms.ValidationError(_("Choose at least one newsletter."), code="none_chosen")
        return cleaned

    def choices(self) -> dict[int, str]:
        return {
            n.pk: self.cleaned_data[f"freq_{n.pk}"]
            for n in self.newsletters
            if self.cleaned_data.get(f"nl_{n.pk}") and f"freq_{n.pk}" in self.cleaned_data
        }


STATUS_CHOICES = [
    (SubscriptionStatus.ACTIVE, SubscriptionStatus.ACTIVE.label),
    (SubscriptionStatus.PAUSED, SubscriptionStatus.PAUSED.label),
    (SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.UNSUBSCRIBED.label),
]


def language_choices() -> list[tuple[str, str]]:
    """The shipped languages, each named in itself, after "the newsletter's"."""
    return [("", pgettext_lazy("language", "The newsletter's")), *shipped_languages()]


class PreferencesForm(forms.Form):
    """A reader's name, time zone, language, and each subscription's frequency and status."""

    name = forms.CharField(max_length=200, required=False, validators=[validate_single_line], label=_("Name"))
    timezone = TimezoneField(label=_("Time zone"))
    language = forms.ChoiceField(choices=language_choices, required=False, widget=PlainSelect, label=_("Language"))

    def __init__(self, *args, subscriber: Subscriber, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscriptions = list(subscriber.subscriptions.select_related("newsletter").order_by("newsletter__name"))
        self.fields["name"].initial = subscriber.name
        self.fields["timezone"].initial = subscriber.timezone
        self.fields["language"].initial = subscriber.language
        for s in self.subscriptions:
            self.fields[f"freq_{s.pk}"] = forms.ChoiceField(
                choices=Frequency.choices,
                widget=PlainSelect,
                initial=s.frequency,
                label=_("How often for %(newsletter)s") % {"newsletter": s.newsletter.name},
            )
            current = s.status if s.status != SubscriptionStatus.PENDING else SubscriptionStatus.ACTIVE
            self.fields[f"status_{s.pk}"] = forms.ChoiceField(
                choices=STATUS_CHOICES,
                widget=PlainSelect,
                initial=current,
                label=_("Status of %(newsletter)s") % {"newsletter": s.newsletter.name},
            )

    def rows(self):
        return [(s, self[f"freq_{s.pk}"], self[f"status_{s.pk}"]) for s in self.subscriptions]


class EmbedForm(forms.Form):
    """The embeddable form: an address for one newsletter, posted from any page."""

    email = forms.EmailField(max_length=254, label=_("Email address"))
    name = forms.CharField(max_length=200, required=False, validators=[validate_single_line])
    newsletter = forms.SlugField(max_length=100, allow_unicode=True)
    frequency = forms.ChoiceField(choices=Frequency.choices, required=False)
    timezone = forms.CharField(max_length=64, required=False)

    def clean_email(self) -> str:
        return email_normalize(self.cleaned_data["email"])

    def clean_frequency(self) -> str:
        return self.cleaned_data["frequency"] or Frequency.WEEKLY

    def clean_timezone(self) -> str:
        # A browser's zone unknown to this machine falls back to UTC rather than losing the reader.
        value = self.cleaned_data["timezone"]
        return value if value in timezone_names() else "UTC"
