"""DRF ``HasScope``: the token must grant every scope the view requires; else 403 ``insufficient_scope``.

Scopes are read from the claims named in ``SCOPE_CLAIMS`` (default ``scope``, space-separated, and ``scp``,
a string or a list as Okta and Entra ID send it; add ``permissions`` for Auth0's RBAC list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from jwtguard.conf import get_settings
from jwtguard.edge import INSUFFICIENT_SCOPE, INSUFFICIENT_SCOPE_CODE, challenge
from jwtguard.user import missing_scopes, scope_list

_CHALLENGE_ATTRIBUTE = "_jwtguard_scope_challenge"


class HasScope(BasePermission):
    """Grants access when the request's token has every scope of the view's ``required_scopes``.

    ``required_scopes`` is a list or a space-separated string, declared on the view, or on the permission
    with ``HasScope.of("read:friends")`` (so that ``HasScope.of("a") | HasScope.of("b")`` composes).
    Without a token the request is left to authentication (401); with one that lacks a scope the answer is
    403 with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``.
    """

    message = INSUFFICIENT_SCOPE
    code = INSUFFICIENT_SCOPE_CODE
    #: Set by ``of()``; None: read ``required_scopes`` from the view.
    required_scopes: tuple[str, ...] | None = None

    @classmethod
    def of(cls, *scopes: str) -> type[HasScope]:
        """A ``HasScope`` that requires ``scopes`` whatever the view declares."""
        required = tuple(name for scope in scopes for name in scope_list(scope))
        if not required:
            raise TypeError("HasScope.of() needs at least one scope")
        return type(f"{cls.__name__}Of", (cls,), {"required_scopes": required})

    def get_required_scopes(self, view: APIView) -> tuple[str, ...]:
        if self.required_scopes is not None:
            return self.required_scopes
        declared: str | Iterable[str] | None = getattr(view, "required_scopes", None)
        if declared is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} uses HasScope but declares no required_scopes; "
                'set required_scopes = ["..."] on the view, or use HasScope.of("...").'
            )
        return scope_list(declared)

    def has_permission(self, request: Request, view: APIView) -> bool:
        required = self.get_required_scopes(view)
        claims = request.auth
        if not isinstance(claims, Mapping):
            return False  # no token: DRF answers 401 (or 403 for a non-token login), as for IsAuthenticated
        if not missing_scopes(claims, required, get_settings().scope_claims):
            return True
        _challenge_if_denied(view, " ".join(required))
        return False


def _challenge_if_denied(view: APIView, scope: str) -> None:
    """Have the view's 403, if the permission check as a whole denies, carry the RFC 6750 challenge.

    A failing ``HasScope`` may not decide the outcome (``HasScope | IsAdminUser``), so it returns False
    rather than raising. DRF then calls ``view.permission_denied`` only when access is refused; wrapping
    that one call, on this view instance (one per request), puts ``auth_header`` on the PermissionDenied it
    raises, and DRF's exception handler turns that into ``WWW-Authenticate`` whatever the status code.
    """
    if getattr(view, _CHALLENGE_ATTRIBUTE, None) is not None:
        return  # the first failing HasScope names the scope
    setattr(view, _CHALLENGE_ATTRIBUTE, scope)
    original: Callable[..., Any] = view.permission_denied

    def permission_denied(request: Request, message: str | None = None, code: str | None = None) -> None:
        if message is None and code is None:
            # A composed permission (AND, OR) has no message of its own; the failing scope is the reason.
            message, code = INSUFFICIENT_SCOPE, INSUFFICIENT_SCOPE_CODE
        try:
            original(request, message=message, code=code)
        except exceptions.PermissionDenied as exc:
            exc.auth_header = challenge(scope=scope)  # type: ignore[attr-defined]
            raise

    instance: Any = view
    instance.permission_denied = permission_denied  # this instance, this request only
