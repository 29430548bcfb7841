"""System checks: every API_* setting is valid, so a wrong one stops start-up, not the first call."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from api.conf import api_settings


@checks.register("api")
def check_settings(app_configs, **kwargs):
    """Every API_* setting is valid (from settings or the environment)."""
    try:
        api_settings.check_all()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="api.E001")]
    return []
