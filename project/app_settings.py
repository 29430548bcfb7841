"""One accessor per app for its own settings: a table of names, defaults and kinds, read in one place.

A value comes from Django's settings if set there, else from the environment variable of
the same name, else the default. A wrong one raises ImproperlyConfigured naming it. Values
are read on each access, so tests (and `override_settings`) see changes.
"""

import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Setting:
    default: Any
    kind: type
    minimum: float | None = None


class AppSettings:
    """Attribute access to PREFIX_* settings without the prefix: digest_settings.BATCH_SIZE."""

    def __init__(self, prefix: str, table: dict[str, Setting]):
        self._prefix = prefix
        self._table = table

    def __getattr__(self, name: str) -> Any:
        key = f"{self._prefix}{name}"
        if name.startswith("_") or key not in self._table:
            raise AttributeError(name)
        spec = self._table[key]
        value = getattr(settings, key, None)
        if value is None:
            value = _from_environment(key, spec)
        if spec.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ImproperlyConfigured(f"{key} must be an integer, not {value!r}.")
        if spec.kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ImproperlyConfigured(f"{key} must be a number, not {value!r}.")
        if spec.kind is str and not isinstance(value, str):
            raise ImproperlyConfigured(f"{key} must be a string, not {value!r}.")
        if spec.minimum is not None and value < spec.minimum:
            raise ImproperlyConfigured(f"{key} must be at least {spec.minimum}, not {value!r}.")
        return value

    def check_all(self) -> None:
        """Read every setting once, so a wrong one fails at start-up rather than mid-run."""
        for key in self._table:
            getattr(self, key.removeprefix(self._prefix))


def _from_environment(key: str, spec: Setting) -> Any:
    raw = os.environ.get(key, "").strip()
    if not raw:
        return spec.default
    if spec.kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{key}={raw!r} is not an integer.") from None
    if spec.kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{key}={raw!r} is not a number.") from None
    return raw
