"""``manage.py devtoken``: a token from the DEVELOPMENT issuer that JWTGUARD points at (its ``/mint``).

For trying the API by hand (``docker compose exec sample_site python sample_site/manage.py devtoken``).
Only a loopback issuer is asked: a real identity provider has no ``/mint``, and must never need one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jwtguard.conf import get_settings
from jwtguard.urlpolicy import is_loopback_url


class Command(BaseCommand):
    help = "Print an access token minted by the development issuer (python -m jwtguard.testing.issuer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sub", default="alice", help="the token's subject (default: alice)")
        parser.add_argument("--scope", default="read:friends", help="space-separated scopes (default: read:friends)")
        parser.add_argument("--expires-in", type=int, default=300, help="seconds of validity (negative: expired)")
        parser.add_argument("--aud", default=None, help="the audience (default: the issuer's, which is this API's)")

    def handle(self, *args: Any, **options: Any) -> None:
        issuer = get_settings().issuers[0].issuer
        query = {"sub": options["sub"], "scope": options["scope"], "expires_in": str(options["expires_in"])}
        if options["aud"]:
            query["aud"] = options["aud"]
        url = issuer.rstrip("/") + "/mint?" + urlencode(query)
        if not is_loopback_url(url):
            raise CommandError(f"{issuer} is not a development issuer on a loopback address; it cannot mint.")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # a loopback http URL, checked above
                token = json.load(response)["access_token"]
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"the development issuer at {issuer} did not mint a token: {exc}") from exc
        self.stdout.write(str(token))
