"""Reader forms: the selects built in Python give the same HTML as Django's Select, and validate the same."""

import pytest
from django import forms
from django.test.html import parse_html

from newsletters.forms import PlainSelect, SubscribeForm, TimezoneSelect, _timezone_choices
from newsletters.models import Frequency


@pytest.mark.parametrize("value", ["Europe/Paris", "UTC", None, "", "Mars/Olympus"])
@pytest.mark.parametrize("attrs", [{"id": "id_timezone"}, {"id": "id_tz", "aria-invalid": "true", "class": "x<y"}])
def test_timezone_select_is_the_html_django_would_render(value, attrs):
    django_select = forms.Select(choices=_timezone_choices())
    expected = django_select.render("timezone", value, attrs)
    assert parse_html(TimezoneSelect().render("timezone", value, attrs)) == parse_html(expected)


@pytest.mark.parametrize("value", ["daily", "weekly", None, "hourly"])
def test_plain_select_is_the_html_django_would_render(value):
    attrs = {"id": "id_freq_3", "required": True}
    expected = forms.Select(choices=Frequency.choices).render("freq_3", value, attrs)
    assert parse_html(PlainSelect(choices=Frequency.choices).render("freq_3", value, attrs)) == parse_html(expected)


def test_option_values_and_labels_are_escaped():
    html = PlainSelect(choices=[('a"b', "<i>x</i>")]).render("f", 'a"b', {})
    assert html == '<select name="f"><option value="a&quot;b" selected>&lt;i&gt;x&lt;/i&gt;</option></select>'


def test_the_chosen_zone_is_the_only_one_selected():
    # Etc/GMT+1 is a prefix of Etc/GMT+10, +11 and +12.
    html = TimezoneSelect().render("timezone", "Etc/GMT+1", {"id": "id_timezone"})
    assert html.count(" selected") == 1
    assert '<option value="Etc/GMT+1" selected>Etc/GMT+1</option>' in html


@pytest.mark.parametrize(("zone", "valid"), [("Asia/Tokyo", True), ("UTC", True), ("Mars/Olympus", False), ("", False)])
def test_timezone_field_accepts_known_zones_only(zone, valid):
    form = SubscribeForm({"email": "a@example.com", "timezone": zone}, newsletters=[])
    form.is_valid()
    assert ("timezone" not in form.errors) is valid
