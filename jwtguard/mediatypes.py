"""Rule: media types as a JWS ``typ`` names them (RFC 7515 4.1.9), written once.

``conf`` accepts a ``TOKEN_TYPE`` only if it is a media type; ``validation`` compares the header's ``typ`` with
it. Both sides are compared normalised, so ``at+jwt`` (what issuers send) and ``application/at+jwt`` (RFC
9068's registered name) are one type, in any case.
"""

from __future__ import annotations

import re

#: A media type's name without parameters (RFC 6838 4.2): ``type/subtype``, or the subtype alone.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"(?:{_RESTRICTED_NAME}/)?{_RESTRICTED_NAME}")


def normalise(value: str) -> str:
    """The form a ``typ`` (or ``TOKEN_TYPE``) is compared in: lower case, with ``application/`` added to a name
    without ``/`` (RFC 7515 4.1.9: "the "application/" prefix can be omitted"), so ``at+jwt``, ``AT+JWT`` and
    ``application/at+jwt`` are one type."""
    value = value.lower()
    return value if "/" in value else "application/" + value


def is_media_type(value: str) -> bool:
    """Whether ``value`` names a media type (``at+jwt``, ``application/at+jwt``): no spaces, no parameters,
    at most one ``/``."""
    return _MEDIA_TYPE.fullmatch(value) is not None
