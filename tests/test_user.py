"""TokenUser: a database-free user whose identity and equality come from the verified claims."""

from __future__ import annotations

import pytest

from jwtguard.user import TokenUser, scope_list, scopes_of


def test_identity_comes_from_sub() -> None:
    user = TokenUser({"sub": "auth0|42", "client_id": "machine"})
    assert user.id == user.pk == user.username == "auth0|42"
    assert user.get_username() == "auth0|42"
    assert str(user) == "auth0|42"
    assert repr(user) == "<TokenUser 'auth0|42'>"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"client_id": "svc-a", "azp": "svc-b"}, "svc-a"),
        ({"azp": "svc-b"}, "svc-b"),
        ({"sub": "", "azp": "svc-b"}, "svc-b"),
        ({}, None),
    ],
)
def test_machine_tokens_without_sub_take_their_id_from_client_id_or_azp(
    claims: dict[str, str], expected: str | None
) -> None:
    assert TokenUser(claims).id == expected


@pytest.mark.parametrize(
    ("claims", "expected"),
    [({"sub": "auth0|42"}, "https://idp.example/#auth0|42"), ({"azp": "svc"}, "https://idp.example/#svc"), ({}, None)],
)
def test_a_namespace_qualifies_the_id(claims: dict[str, str], expected: str | None) -> None:
    user = TokenUser(claims, "https://idp.example/")
    assert user.id == user.pk == user.username == expected
    assert user.id is None or user.id.split("#", 1) == ["https://idp.example/", claims.get("sub") or claims["azp"]]


def test_the_same_claims_in_two_namespaces_are_two_users() -> None:
    assert TokenUser({"sub": "a"}, "one") != TokenUser({"sub": "a"}, "two")
    assert TokenUser({"sub": "a"}, "one") == TokenUser({"sub": "a"}, "one")
    assert TokenUser({"sub": "a"}) != TokenUser({"sub": "a"}, "one")


def test_it_is_authenticated_and_has_no_privileges() -> None:
    user = TokenUser({"sub": "a"})
    assert user.is_authenticated
    assert user.is_active
    assert (user.is_anonymous, user.is_staff, user.is_superuser) == (False, False, False)
    assert not user.has_perm("app.view_thing")
    assert not user.has_perms(["app.view_thing"])
    assert not user.has_module_perms("app")
    assert user.get_all_permissions() == set()


@pytest.mark.django_db
def test_groups_and_permissions_are_empty_managers() -> None:
    user = TokenUser({"sub": "a"})
    assert list(user.groups.all()) == []
    assert list(user.user_permissions.all()) == []


def test_equal_when_claims_are_equal() -> None:
    assert TokenUser({"sub": "a", "scope": "x"}) == TokenUser({"sub": "a", "scope": "x"})
    assert TokenUser({"sub": "a", "scope": "x"}) != TokenUser({"sub": "a", "scope": "y"})
    assert TokenUser({"sub": "a"}) != {"sub": "a"}
    assert len({TokenUser({"sub": "a"}), TokenUser({"sub": "a"})}) == 1


def test_the_claims_are_a_copy() -> None:
    claims = {"sub": "a"}
    user = TokenUser(claims)
    claims["sub"] = "b"
    assert user.id == "a"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"scope": "read:friends  write:friends"}, {"read:friends", "write:friends"}),
        ({"scp": "a b"}, {"a", "b"}),
        ({"scp": ["a", "b", 3]}, {"a", "b"}),
        ({"scope": "a", "scp": ["b"]}, {"a", "b"}),
        ({"scope": 5}, set()),
        ({}, set()),
        # RFC 6749 3.3: SP (0x20) is the only delimiter; any other whitespace is part of a literal scope.
        ({"scope": "files:read\u00a0admin"}, {"files:read\u00a0admin"}),
        ({"scope": "files:read\tadmin  files:write"}, {"files:read\tadmin", "files:write"}),
        ({"scp": "read\nadmin"}, {"read\nadmin"}),
        ({"scope": " a  b "}, {"a", "b"}),
        ({"scope": "   "}, set()),
    ],
)
def test_scopes(claims: dict[str, object], expected: set[str]) -> None:
    assert TokenUser(claims).scopes == expected


@pytest.mark.parametrize("declared", ["read\tadmin", "read\u00a0admin", ["read\nadmin"], ["read\x00"], [""]])
def test_a_required_scope_with_other_whitespace_or_controls_is_refused_when_declared(declared: object) -> None:
    with pytest.raises(TypeError, match="without spaces or control characters"):
        scope_list(declared)  # type: ignore[arg-type]


def test_required_scopes_are_split_on_spaces() -> None:
    assert scope_list(" read:a  write:b ") == ("read:a", "write:b")


def test_scopes_from_other_claims_when_asked() -> None:
    assert scopes_of({"permissions": ["read:a"], "scope": "b"}, ["permissions"]) == {"read:a"}
