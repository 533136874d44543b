"""Signals for metrics and alerting; receivers must be cheap, they run on the request path."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent after a key set was fetched: ``issuer``, ``url``, ``reason``, ``duration``, ``status``, ``kids``.
jwks_fetched = Signal()

#: Sent when a fetch failed: ``issuer``, ``url``, ``reason``, ``duration``, ``error``.
jwks_fetch_failed = Signal()

#: Sent when a token is refused: ``code`` (the rejection's code) and ``issuer`` (or None).
token_rejected = Signal()

#: Sent when this process starts refusing a distrusted kid (``jwtguard.distrust``): ``issuer``, ``kid``, ``reason``,
#: ``until`` (epoch seconds; ``inf`` for ``DISTRUSTED_KIDS``) and ``source`` (``"cache"`` or ``"settings"``).
key_distrusted = Signal()

#: Sent at most once a minute per issuer while tokens signed by distrusted kids are refused: ``issuer`` and
#: ``refused`` (a dict: kid -> tokens refused since the last summary).
distrusted_key_refused = Signal()

#: Send with ``issuer`` (the ``iss``) when a tenant's ``ISSUER_SOURCE`` answer changed or is gone: the shared
#: answer and this process's resolved issuer and key provider are dropped at once (``jwtguard.issuers``).
issuer_changed = Signal()
