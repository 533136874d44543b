from __future__ import annotations

import importlib.util

from django.apps import AppConfig
from django.core import checks


class JWTGuardConfig(AppConfig):
    name = "jwtguard"
    verbose_name = "jwtguard"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from jwtguard import issuers, metrics  # noqa: F401 - connect issuer_changed, and the rejection counter
        from jwtguard.checks import check_configuration, check_security

        checks.register(check_configuration)
        checks.register(check_security, checks.Tags.security)
        load_optional_integrations()


def load_optional_integrations() -> list[str]:
    """Import the integrations whose library is installed (importing registers them); returns their modules."""
    loaded = []
    if _installed("drf_spectacular") and _installed("rest_framework"):
        import jwtguard.contrib.spectacular  # noqa: F401 - drf-spectacular finds extensions by subclassing

        loaded.append("jwtguard.contrib.spectacular")
    return loaded


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
