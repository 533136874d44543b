"""``USER_RESOLVER``: turning a verified access token into ``request.user``.

Without a resolver the user is a database-free ``TokenUser``. Projects that want database users set
``JWTGUARD["USER_RESOLVER"]`` to a dotted path to ``callable(access_token) -> user``; the callable may
raise a ``TokenError`` to refuse the token (401). ``get_or_create_user`` is the shipped one: it maps
``sub`` to the user model's ``USERNAME_FIELD``, creating the user on first sight. ``UserResolver`` makes
other mappings (``UserResolver(claim="email", field="email", create=False)``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from jwtguard.conf import get_settings, on_reset
from jwtguard.exceptions import InvalidClaim, InvalidToken, MissingClaim
from jwtguard.user import TokenUser, qualified_id

if TYPE_CHECKING:
    from jwtguard.tokens import AccessToken

logger = logging.getLogger("jwtguard")

Resolver = Callable[["AccessToken"], Any]


class UserInactive(InvalidToken):
    """Raised when the token is genuine but the user it maps to is inactive (like DRF's TokenAuthentication)."""

    code = "user_inactive"


class UserNotFound(InvalidToken):
    """Raised when the token is genuine but no user matches it and the resolver does not create one."""

    code = "user_not_found"


class UserResolver:
    """Maps one claim of the token to one field of the user model; get-or-create by default.

    ``sub`` is unique only within one issuer: with several ``ISSUERS``, turn ``USER_ID_NAMESPACE`` on and the
    value looked up is ``<namespace>#<value>``, as ``TokenUser.id`` is; ``qualify=False`` looks the claim up
    as it is (a claim unique across the issuers). Users it creates have an unusable password, so the token
    is their only way in. Override ``defaults`` when the user model needs more fields to be created.
    """

    def __init__(
        self, claim: str = "sub", field: str | None = None, *, create: bool = True, qualify: bool = True
    ) -> None:
        self.claim = claim
        self.field = field
        self.create = create
        self.qualify = qualify

    def __call__(self, token: AccessToken) -> Any:
        from django.contrib.auth import get_user_model

        model = get_user_model()
        field = self.field or model.USERNAME_FIELD
        value = self.lookup_value(token, model, field)
        try:
            if self.create:
                user, created = model._default_manager.get_or_create(
                    **{field: value}, defaults=self._creation_defaults(token, model)
                )
                if created:
                    logger.info("jwtguard: created user %s=%r for a first token", field, value)
            else:
                user = model._default_manager.get(**{field: value})
        except model.DoesNotExist as exc:
            raise UserNotFound(f"no user with {field}={value!r}") from exc
        except model.MultipleObjectsReturned as exc:
            logger.error("jwtguard: several users have %s=%r; map a unique field in USER_RESOLVER", field, value)
            raise UserNotFound(f"several users with {field}={value!r}") from exc
        if not getattr(user, "is_active", True):
            raise UserInactive(f"user {field}={value!r} is inactive")
        return user

    def lookup_value(self, token: AccessToken, model: Any, field: str) -> str:
        """The value to look the user up by: the claim, checked to fit the field (never a database error)."""
        if self.claim not in token.claims:
            raise MissingClaim(self.claim)
        value = token.claims[self.claim]
        if not isinstance(value, str) or not value:
            raise InvalidClaim(f"{self.claim} must be a non-empty string to name a user")
        if self.qualify:
            value = qualified_id(value, token.issuer.user_id_namespace)
        max_length = getattr(model._meta.get_field(field), "max_length", None)
        if max_length is not None and len(value) > max_length:
            raise InvalidClaim(f"{self.claim} (as looked up) is longer than {model.__name__}.{field} ({max_length})")
        return value

    def defaults(self, token: AccessToken, model: Any) -> dict[str, Any]:
        """Extra field values for a user created on first sight."""
        return {}

    def _creation_defaults(self, token: AccessToken, model: Any) -> dict[str, Any]:
        from django.contrib.auth.hashers import make_password
        from django.core.exceptions import FieldDoesNotExist

        try:
            model._meta.get_field("password")
        except FieldDoesNotExist:
            return self.defaults(token, model)
        # An unusable password: the token stays the only way in, also for a username a local user might pick.
        return {"password": make_password(None), **self.defaults(token, model)}

    def __repr__(self) -> str:
        qualify = "" if self.qualify else ", qualify=False"
        return f"UserResolver(claim={self.claim!r}, field={self.field!r}, create={self.create!r}{qualify})"


#: ``JWTGUARD["USER_RESOLVER"] = "jwtguard.resolvers.get_or_create_user"``: ``sub`` -> ``USERNAME_FIELD``.
get_or_create_user = UserResolver()

_resolver: tuple[Resolver | None] | None = None
_resolver_lock = threading.Lock()


def get_user_resolver() -> Resolver | None:
    """The configured ``USER_RESOLVER``, imported on first use; None when users are ``TokenUser``."""
    global _resolver
    loaded = _resolver
    if loaded is None:
        with _resolver_lock:
            path = get_settings().user_resolver
            loaded = _resolver = (None if path is None else _import(path),)
    return loaded[0]


def _import(path: str) -> Resolver:
    try:
        resolver = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"JWTGUARD['USER_RESOLVER'] {path!r} cannot be imported: {exc}") from exc
    if not callable(resolver):
        raise ImproperlyConfigured(f"JWTGUARD['USER_RESOLVER'] {path!r} is not callable.")
    result: Resolver = resolver
    return result


@on_reset
def _forget_resolver() -> None:
    global _resolver
    _resolver = None


def resolve_user(token: AccessToken) -> Any:
    """The user for a verified token: ``USER_RESOLVER``'s (which may touch the database), or a ``TokenUser``."""
    resolver = get_user_resolver()
    if resolver is None:
        return TokenUser(token.claims, token.issuer.user_id_namespace)
    user = resolver(token)
    if user is None:
        raise UserNotFound("USER_RESOLVER returned None")
    return user
