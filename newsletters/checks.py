"""System checks: every NEWSLETTERS_* setting is valid."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from newsletters.conf import newsletters_settings


@checks.register("newsletters")
def check_settings(app_configs, **kwargs):
    """Every NEWSLETTERS_* setting is valid (from settings or the environment)."""
    try:
        newsletters_settings.check_all()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="newsletters.E001")]
    return []
