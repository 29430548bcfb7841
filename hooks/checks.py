"""System checks: every HOOKS_* setting is valid; outside DEBUG, endpoints may not reach private addresses."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from hooks.conf import hooks_settings


@checks.register("hooks")
def check_settings(app_configs, **kwargs):
    """Every HOOKS_* setting is valid (from settings or the environment)."""
    try:
        hooks_settings.check_all()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="hooks.E001")]
    return []


@checks.register("hooks", deploy=True)
def check_private_addresses(app_configs, **kwargs):
    """Outside DEBUG, HOOKS_ALLOW_PRIVATE lets anyone who may add an endpoint make this server call its own network."""
    if settings.DEBUG or not hooks_settings.ALLOW_PRIVATE:
        return []
    return [
        checks.Warning(
            "HOOKS_ALLOW_PRIVATE=1: webhook endpoints may be on loopback and private addresses, so an admin "
            "user can make this server POST to its database, a metadata service or the intranet.",
            hint="Unset HOOKS_ALLOW_PRIVATE unless a receiver really runs inside this network.",
            id="hooks.W001",
        )
    ]
