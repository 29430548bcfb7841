"""Date-times as editors give them: a picker in their own time zone, or text such as "Dec 3, 2026 9:00".

The browser posts its IANA time zone beside the picker's value (a hidden input filled by
local-datetime.js), so 09:00 means 09:00 where the editor sits, DST included; without
JavaScript the site's TIME_ZONE is used, and the page says which zone that is.
"""

import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.forms.utils import flatatt
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

# What a datetime-local picker posts, ISO by hand, and the ways people write a date in English.
_FORMATS = [
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    *(
        f"{date} {time}"
        for date in ["%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y"]
        for time in ["%H:%M", "%I:%M %p", "%I:%M%p", "%I %p"]
    ),
]
EXAMPLE = "Dec 3, 2026 9:00"


def zone_named(name: str) -> ZoneInfo:
    """Return the IANA time zone called `name`, or raise ValueError saying it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone such as Europe/Paris.") from None


def local_datetime_parse(text: str, *, zone: ZoneInfo) -> datetime.datetime:
    """Read a date and time written in `zone`; refuse what no format fits and times the clocks skip."""
    cleaned = " ".join(text.replace(",", ", ").split()).replace(" ,", ",")
    for pattern in _FORMATS:
        try:
            naive = datetime.datetime.strptime(cleaned, pattern)
        except ValueError:
            continue
        aware = naive.replace(tzinfo=zone)
        # A time inside a spring-forward gap does not exist there: say so rather than move it.
        if aware.astimezone(datetime.UTC).astimezone(zone).replace(tzinfo=None) != naive:
            raise ValueError(f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip it.")
        return aware
    raise ValueError(f"{text.strip()!r} is not a date and time such as {EXAMPLE} or 2026-12-03 09:00.")


class LocalDateTimeWidget(forms.Widget):
    """A datetime-local picker, the editor's time zone beside it, and the UTC time it stands for."""

    template_name = "admin/newsletters/widgets/local_datetime.html"

    class Media:
        js = ["newsletters/local-datetime.js"]

    def render(self, name, value, attrs=None, renderer=None):
        # The project's template engine (templates/), not the form renderer's (Django's own widgets only).
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))

    def value_from_datadict(self, data, files, name):
        return data.get(name, ""), data.get(f"{name}_tz", "")

    def value_omitted_from_data(self, data, files, name):
        return name not in data

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        zone = settings.TIME_ZONE
        if isinstance(value, datetime.datetime):
            shown = timezone.localtime(value, ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
            context["widget"]["utc"] = value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif isinstance(value, tuple):
            shown, zone = value[0], value[1] or zone
        else:
            shown = ""
        context["widget"].update(
            shown=shown, zone=zone, example=EXAMPLE, flat_attrs=flatatt(context["widget"]["attrs"])
        )
        return context


class LocalDateTimeField(forms.Field):
    """A date-time in the zone the browser posted (else TIME_ZONE), as an aware datetime."""

    widget = LocalDateTimeWidget

    def to_python(self, value):
        text, zone_name = value if isinstance(value, tuple) else (value or "", "")
        if isinstance(text, datetime.datetime):
            return text
        if not str(text).strip():
            return None
        try:
            return local_datetime_parse(str(text), zone=zone_named(zone_name or settings.TIME_ZONE))
        except ValueError as error:
            raise forms.ValidationError(str(error), code="invalid") from None

    def has_changed(self, initial, data):
        try:
            value = self.to_python(data)
        except forms.ValidationError:
            return True
        # The picker shows minutes: a stored time with seconds is unchanged when they are all that differ.
        minute = lambda moment: moment and moment.replace(second=0, microsecond=0)  # noqa: E731
        return minute(initial) != minute(value)
