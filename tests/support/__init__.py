"""Helpers shared by the test modules: the doors into jwtguard, hand-made token parts, raw HTTP servers,
worker processes, protected views, pooled keys. Nothing here is collected as a test.

Modules here import nothing heavy at import time where a spawned child imports them (``forgery``,
``workers``): the child sets Django up first.
"""

from __future__ import annotations
