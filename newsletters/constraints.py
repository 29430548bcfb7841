"""Check constraints the models share: what the database itself refuses (newsletters.models uses them)."""

from django.db import models
from django.db.models import Q


def not_empty(field: str, name: str) -> models.CheckConstraint:
    """Refuse an empty value in the database itself (an empty slug has no URL)."""
    return models.CheckConstraint(condition=~Q(**{field: ""}), name=name)


def no_newline(field: str, name: str) -> models.CheckConstraint:
    """Refuse CR and LF in a field that ends up in a mail header, in the database itself."""
    return models.CheckConstraint(
        condition=~Q(**{f"{field}__contains": "\n"}) & ~Q(**{f"{field}__contains": "\r"}),
        name=name,
    )
