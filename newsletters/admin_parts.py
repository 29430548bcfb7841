"""What our admin lists and forms share: tabular inlines a screen reader can name, short times.

Django's tabular inline labels a column once, in its header, so each row's inputs, selects
and "Delete" box have no name of their own (axe-core: "Form elements must have labels",
critical): each one is given its column's name and its row, "Frequency, row 2".
"""

from django.contrib import admin
from django.contrib.admin.widgets import AdminFileWidget
from django.forms.models import BaseInlineFormSet
from django.utils import timezone
from django.utils.formats import date_format


class LabelledInlineFormSet(BaseInlineFormSet):
    def add_fields(self, form, index):
        super().add_fields(form, index)
        row = "new row" if index is None else f"row {index + 1}"
        for name, field in form.fields.items():
            label = "Delete" if name == "DELETE" else field.label or name
            # A related field's widget is wrapped (the add and change links): its select is inside.
            widget = getattr(field.widget, "widget", field.widget)
            widget.attrs["aria-label"] = f"{label}, {row}"


class LabelledTabularInline(admin.TabularInline):
    """A TabularInline whose every field carries an accessible name (aria-label)."""

    formset = LabelledInlineFormSet


def list_time(moment) -> str:
    """A time as a list shows it, short: "1 Dec 2026, 16:41" (Django's "Dec. 1, 2026, 4:41 p.m." is a third wider)."""
    return date_format(timezone.localtime(moment), "j M Y, H:i") if moment else "–"


class LabelledFileWidget(AdminFileWidget):
    """A file input its row's <label for> names: Django draws file inputs in a fieldset whose
    legend names no input (axe-core: "Form elements must have labels", critical)."""

    use_fieldset = False
