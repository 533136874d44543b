from __future__ import annotations

from django.apps import AppConfig


class JWTGuardConfig(AppConfig):
    name = "jwtguard"
    verbose_name = "jwtguard"
    default_auto_field = "django.db.models.AutoField"
