"""One row per tenant: the issuer its tokens carry, the audience they must name, and its key set's URL."""

from __future__ import annotations

from django.db import models


class Tenant(models.Model):
    id = models.BigAutoField(primary_key=True)  # the test settings set no DEFAULT_AUTO_FIELD
    issuer = models.CharField(max_length=1024, unique=True)
    audience = models.CharField(max_length=255)
    jwks_url = models.URLField(max_length=1024, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        app_label = "tenants"
