"""``TokenUser``: the caller as its access token describes it, with no database row behind it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Where the caller's id comes from, in order: users have ``sub``; client-credentials tokens may not.
ID_CLAIMS = ("sub", "client_id", "azp")


def qualified_id(value: str, namespace: str | None) -> str:
    """A user id in its issuer's namespace: ``<namespace>#<value>`` (``USER_ID_NAMESPACE``), or ``value`` as it
    is when the namespace is None. The namespace holds no ``#``, so the first one splits the two apart."""
    return value if namespace is None else f"{namespace}#{value}"


def split_scopes(value: str) -> list[str]:
    """The scope tokens of a scope string: delimited by SP (0x20) only, as RFC 6749 section 3.3 says.

    Any other whitespace or control character (a tab, U+00A0, a line break) is part of the token it stands in,
    so ``"files:read\u00a0admin"`` is one scope of that literal name and never grants ``admin``.
    """
    return [token for token in value.split(" ") if token]


def scopes_of(claims: Mapping[str, Any], names: Iterable[str] = ("scope", "scp")) -> frozenset[str]:
    """Scopes from ``scope`` (space-separated), ``scp`` (string or list), or any claim named in ``names``."""
    found: set[str] = set()
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            found.update(split_scopes(value))
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return frozenset(found)


def scope_list(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """Required scopes as declared: a space-separated string or an iterable of scope names.

    A declared name holding whitespace or a control character could never match a granted scope token the
    way its author meant: it is refused here, when the view is declared.
    """
    names = tuple(split_scopes(scopes) if isinstance(scopes, str) else scopes)
    for name in names:
        if not isinstance(name, str) or not name or not name.isprintable() or any(c.isspace() for c in name):
            raise TypeError(f"a scope is a non-empty string without spaces or control characters, not {name!r}")
    return names


def missing_scopes(
    claims: Mapping[str, Any], required: Iterable[str], names: Iterable[str] = ("scope", "scp")
) -> tuple[str, ...]:
    """The scopes of ``required`` that the token does not grant (read from the claims named in ``names``)."""
    granted = scopes_of(claims, names)
    return tuple(scope for scope in required if scope not in granted)


class TokenUser:
    """A database-free user built from verified claims; two are equal when their claims are.

    ``namespace`` is the issuer's ``USER_ID_NAMESPACE`` (None: off): with it, ``id`` is ``<namespace>#<sub>``,
    so users of two issuers who share a ``sub`` are two users.
    """

    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True

    def __init__(self, claims: Mapping[str, Any], namespace: str | None = None) -> None:
        self.claims = dict(claims)
        self.namespace = namespace

    @property
    def id(self) -> str | None:
        for name in ID_CLAIMS:
            value = self.claims.get(name)
            if isinstance(value, str) and value:
                return qualified_id(value, self.namespace)
        return None

    pk = id
    username = id

    @property
    def scopes(self) -> frozenset[str]:
        return scopes_of(self.claims)

    def get_username(self) -> str:
        return self.id or ""

    @property
    def groups(self) -> Any:
        from django.contrib.auth.models import Group
        from django.db.models.manager import EmptyManager

        return EmptyManager(Group)

    @property
    def user_permissions(self) -> Any:
        from django.contrib.auth.models import Permission
        from django.db.models.manager import EmptyManager

        return EmptyManager(Permission)

    def get_all_permissions(self, obj: object = None) -> set[str]:
        return set()

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenUser):
            return NotImplemented
        return self.claims == other.claims and self.namespace == other.namespace

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.get_username()

    def __repr__(self) -> str:
        return f"<TokenUser {self.id!r}>"
