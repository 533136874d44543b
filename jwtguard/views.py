"""``ready``: a readiness probe (Kubernetes) that is green once every issuer's key set can verify tokens.
``protected_resource_metadata``: the API's RFC 9728 metadata, from ``RESOURCE_METADATA`` and the issuers.

Route them without authentication: ``path("readyz", jwtguard.views.ready)``, and ``path("", include("jwtguard.urls"))``
for ``/.well-known/oauth-protected-resource[/path]``. A cold pod fetches (or reads from the shared cache) on the
first probe, so it turns ready as soon as the key set is there.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from jwtguard.conf import IssuerConfig, JWTGuardSettings, get_settings
from jwtguard.exceptions import KeySetUnavailable
from jwtguard.jwks import get_provider

logger = logging.getLogger("jwtguard")


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """200 when every issuer's key set is usable (fresh, or stale within JWKS_MAX_STALE), else 503."""
    try:
        issuers = get_settings().issuers
    except ImproperlyConfigured as exc:
        # A probe must answer, not crash: the settings error is the reason the pod is not ready.
        return JsonResponse({"ready": False, "error": str(exc), "issuers": []}, status=503)
    reports = [issuer_readiness(config) for config in issuers]
    is_ready = all(report["ready"] for report in reports)
    return JsonResponse({"ready": is_ready, "issuers": reports}, status=200 if is_ready else 503)


def issuer_readiness(config: IssuerConfig) -> dict[str, Any]:
    """One issuer's part of the probe's body; tries to obtain the key set, so a cold process warms up."""
    provider = get_provider(config)
    report: dict[str, Any] = {"issuer": config.issuer, "cache_alias": config.cache_alias}
    try:
        provider.usable_keyset()
    except KeySetUnavailable as exc:
        logger.info("jwtguard: not ready for %s: %s", config.issuer, exc.reason)
        return {**report, "ready": False, "state": "unavailable", "error": provider.last_error or exc.reason}
    except Exception:
        # Never a 500 from a probe: whatever went wrong, this issuer is not ready.
        logger.exception("jwtguard: readiness check for %s failed", config.issuer)
        return {**report, "ready": False, "state": "error", "error": "unexpected error (see the jwtguard log)"}
    # What this process now holds, without another look at the shared cache (a probe must not wait on it).
    return {**report, "ready": True, **provider.status().describe(time.time())}


#: How long clients and caches may keep the metadata (seconds): it changes with a deployment, not per request.
METADATA_MAX_AGE = 3600


def resource_metadata_document(settings: JWTGuardSettings) -> dict[str, Any] | None:
    """The RFC 9728 metadata: what ``RESOURCE_METADATA`` says, over what jwtguard knows (the issuers as
    ``authorization_servers``, Bearer in the header, DPoP's algorithms and whether it is required)."""
    given = settings.resource_metadata
    if given is None:
        return None
    known: dict[str, Any] = {"bearer_methods_supported": ["header"]}
    if settings.issuers:
        # Patterns and ISSUER_SOURCE name no issuer identifier in advance, and [] would say "no server at all":
        # without an ISSUERS entry the member is RESOURCE_METADATA's to give.
        known["authorization_servers"] = [config.issuer for config in settings.issuers]
    if settings.dpop_accepted:
        known["dpop_signing_alg_values_supported"] = list(settings.dpop_algorithms)
        known["dpop_bound_access_tokens_required"] = not settings.bearer_accepted
    return {**known, **given}


@require_safe
def protected_resource_metadata(request: HttpRequest, path: str | None = None) -> JsonResponse:
    """``/.well-known/oauth-protected-resource[/path]``: 200 with the metadata for the configured resource's own
    path (RFC 9728 3.1), 404 for any other, or when ``RESOURCE_METADATA`` is not set."""
    try:
        settings = get_settings()
    except ImproperlyConfigured:
        settings = None
    document = None if settings is None else resource_metadata_document(settings)
    if document is None or (path or "") != _resource_path(document["resource"]):
        return JsonResponse({"error": "not_found"}, status=404)
    response = JsonResponse(document)
    response["Cache-Control"] = f"public, max-age={METADATA_MAX_AGE}"
    # Public by nature (RFC 9728 3), and read by clients in browsers too.
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _resource_path(resource: str) -> str:
    path = urlsplit(resource).path
    return "" if path == "/" else path
