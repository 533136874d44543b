"""``manage.py jwtguard status | refresh | inspect <token> | distrust <kid> | trust <kid> | distrusted |
forget-issuer <iss>``: look at, warm and question the shared key set, refuse a leaked key everywhere, and drop a
tenant's ``ISSUER_SOURCE`` answer."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jwtguard import signals
from jwtguard.cache import SharedCache
from jwtguard.conf import (
    ISSUER_DEFAULTS,
    SOURCE_DEFAULTS_ISSUER,
    IssuerConfig,
    JWTGuardSettings,
    get_settings,
    is_issuer_pattern,
    source_defaults,
)
from jwtguard.distrust import (
    DEFAULT_FOR,
    MAX_FOR,
    Distrust,
    IssuerDistrust,
    caches_of,
    distrust_kid,
    merge,
    read_shared,
    trust_kid,
)
from jwtguard.exceptions import DPoPRequired, KeySetUnavailable, MalformedToken, TokenError
from jwtguard.issuers import RECHECK_SECONDS
from jwtguard.jwks import KeyProviderStatus, get_provider, providers, resolved_provider_stats
from jwtguard.validation import get_validator, parse

#: Claims holding NumericDate times, shown as dates by ``inspect``.
TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
#: Seconds from the epoch past which ``inspect`` says "far" (about 31,700 years) instead of computing a span.
FAR = 10**12


class Command(BaseCommand):
    help = (
        "Inspect and warm jwtguard's shared key sets: 'status' shows each issuer's cached key set, 'refresh' "
        "fetches now (non-zero exit on failure, for deploy hooks), 'inspect TOKEN' decodes a token without "
        "trusting it and says whether jwtguard would accept it and why; 'distrust KID' makes every process refuse "
        "a key, 'trust KID' ends that, 'distrusted' lists what is refused; 'forget-issuer ISS' drops "
        "ISSUER_SOURCE's answer for an issuer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(
            dest="subcommand", metavar="{status,refresh,inspect,distrust,trust,distrusted,forget-issuer}"
        )
        # Django's CommandParser needs the subparsers built with its own class to report errors properly.
        status = subcommands.add_parser("status", help="each issuer's key set: where it is cached, age, kids")
        status.add_argument("--issuer", help="only this issuer (its ISSUER value)")
        status.add_argument("--json", action="store_true", help="machine-readable output")
        refresh = subcommands.add_parser("refresh", help="fetch every issuer's key set now; exit 1 on failure")
        refresh.add_argument("--issuer", help="only this issuer (its ISSUER value)")
        refresh.add_argument(
            "--forget-stale",
            action="store_true",
            help="if the issuer cannot answer, drop the key set held in every process (503s until it answers)",
        )
        inspect = subcommands.add_parser("inspect", help="decode a token (untrusted) and say if it would pass")
        inspect.add_argument("token", help="the JWT, or - to read it from standard input (keeps it out of ps)")
        add_distrust_parsers(subcommands)
        forget = subcommands.add_parser(
            "forget-issuer", help="drop ISSUER_SOURCE's answer for an issuer now (every process re-asks it)"
        )
        forget.add_argument("iss", help="the issuer, as its tokens' iss")

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = options.get("subcommand")
        if subcommand is None:
            raise CommandError(
                "say what to do: status, refresh, inspect TOKEN, distrust KID, trust KID, distrusted or "
                "forget-issuer ISS"
            )
        try:
            settings = get_settings()
        except ImproperlyConfigured as exc:
            raise CommandError(f"settings.JWTGUARD is invalid: {exc}") from exc
        if subcommand == "status":
            resolved = resolved_issuers_status(settings) if options.get("issuer") is None else None
            self.status(
                _selected(settings, options.get("issuer")), as_json=bool(options.get("json")), resolved=resolved
            )
        elif subcommand == "refresh":
            if options.get("issuer") is None and (settings.patterns or settings.issuer_source is not None):
                self.stdout.write(
                    "issuers from patterns and ISSUER_SOURCE are fetched on first use; 'refresh --issuer ISS' "
                    "fetches one now"
                )
            self.refresh(_selected(settings, options.get("issuer")), forget_stale=bool(options.get("forget_stale")))
        elif subcommand == "distrust":
            self.distrust(settings, options["kid"], options.get("issuer"), options.get("seconds"), options["reason"])
        elif subcommand == "trust":
            self.trust(settings, options["kid"], options.get("issuer"))
        elif subcommand == "distrusted":
            self.distrusted(_distrusted_rows(settings, options.get("issuer")), as_json=bool(options.get("json")))
        elif subcommand == "forget-issuer":
            if settings.issuer_source is None:
                raise CommandError(
                    "no ISSUER_SOURCE is configured: forget-issuer drops its answers (ISSUERS entries and patterns "
                    "change with the settings)"
                )
            self.forget_issuer(options["iss"])
        else:
            self.inspect(_read_token(options["token"]))

    # -- status -------------------------------------------------------------------------------------------

    def status(self, issuers: list[IssuerConfig], *, as_json: bool, resolved: dict[str, Any] | None = None) -> None:
        reports = [issuer_status(config) for config in issuers]
        if as_json:
            # With patterns or a source, an object: the issuers' list and what was resolved at run time.
            document: Any = reports if resolved is None else {"issuers": reports, "resolved_issuers": resolved}
            self.stdout.write(json.dumps(document, indent=2))
            return
        for report in reports:
            self.stdout.write(self.style.MIGRATE_HEADING(f"issuer {report['issuer']}"))
            self.stdout.write(f"  JWKS URL:    {report['jwks_url']}")
            self.stdout.write(f"  cache:       alias {report['cache_alias']!r} ({report['cache_backend']})")
            self.stdout.write(f"  cache key:   {report['cache_key']}")
            if report["state"] == "none":
                self.stdout.write(self.style.WARNING("  key set:     none cached (run: manage.py jwtguard refresh)"))
            else:
                line = (
                    f"  key set:     {report['state']}, fetched {_ago(report['age_seconds'])} "
                    f"at {_when(report['fetched_at'])}; "
                )
                if report["state"] == "fresh":
                    line += f"fresh for {report['fresh_for_seconds']:.0f}s more"
                elif report["state"] == "stale":
                    line += f"stale: usable for {report['usable_for_seconds']:.0f}s more while the issuer fails"
                else:
                    line += "expired: too old to verify tokens"
                style = self.style.SUCCESS if report["state"] == "fresh" else self.style.WARNING
                self.stdout.write(style(line))
                etag = f", ETag {report['etag']}" if report["etag"] else ""
                self.stdout.write(f"  kids:        {len(report['kids'])}{etag}")
                for kid, algorithms in report["kids"].items():
                    self.stdout.write(f"    {kid}: {', '.join(algorithms)}")
            self.stdout.write(f"  last fetch:  {report['last_fetch']}")
        if resolved is not None:
            self.resolved_status(resolved)

    def resolved_status(self, report: dict[str, Any]) -> None:
        """Patterns and ``ISSUER_SOURCE``: what is configured, and what this process holds of them."""
        self.stdout.write(self.style.MIGRATE_HEADING("issuers resolved at run time"))
        for pattern in report["patterns"]:
            self.stdout.write(f"  pattern:     {pattern['pattern']} (JWKS URL: {pattern['jwks_url'] or 'discovered'})")
        if report["source"]:
            source = report["source"]
            self.stdout.write(
                f"  source:      {source['path']} (answers shared {source['ttl']:g}s, untrusted "
                f"{source['negative_ttl']:g}s)"
            )
        held = report["this_process"]
        self.stdout.write(
            f"  this process: {held['patterns']} from patterns and {held['source']} from the source held "
            f"(of {report['cache_size']}), {held['untrusted']} untrusted, {held['evicted']} evicted, "
            f"{held['source_calls']} source calls; key providers: {held['providers_held']} held, "
            f"{held['providers_evicted']} evicted, {held['fetched']} key sets fetched"
        )
        self.stdout.write("  (each worker holds its own; jwtguard.metrics.snapshot() reports a worker's)")

    # -- refresh ------------------------------------------------------------------------------------------

    def refresh(self, issuers: list[IssuerConfig], *, forget_stale: bool = False) -> None:
        failed = []
        for config in issuers:
            provider = get_provider(config)
            try:
                keyset = provider.refresh("manage.py jwtguard refresh")
            except KeySetUnavailable as exc:
                # refresh() raises unless this very call got a new key set: the last good one is no refresh.
                failed.append(config.issuer)
                self.stderr.write(f"{config.issuer}: refresh FAILED: {provider.last_error or exc.reason}")
                if forget_stale:
                    provider.forget_stale()
                    self.stderr.write(
                        f"{config.issuer}: key set DROPPED in every process within JWKS_L1_RECHECK "
                        f"({config.jwks_l1_recheck:g}s): tokens get 503 until the issuer answers"
                    )
                continue
            kids = ", ".join(sorted(keyset.keys))
            self.stdout.write(
                self.style.SUCCESS(
                    f"{config.issuer}: refreshed from {keyset.url}: kids {kids}; fresh for {keyset.fresh_for:.0f}s, "
                    f"shared as {provider.status().cache_key!r} in cache {config.cache_alias!r}"
                )
            )
        if failed:
            raise CommandError(f"could not refresh the key set of {', '.join(failed)}")

    # -- forget-issuer ------------------------------------------------------------------------------------

    def forget_issuer(self, iss: str) -> None:
        signals.issuer_changed.send(sender=Command, issuer=iss)
        self.stdout.write(
            self.style.SUCCESS(
                f"{iss}: ISSUER_SOURCE's answer dropped; every process asks again within {RECHECK_SECONDS:.0f}s"
            )
        )

    # -- inspect ------------------------------------------------------------------------------------------

    def inspect(self, raw: str) -> None:
        settings = get_settings()
        try:
            parsed = parse(raw, max_bytes=settings.max_token_bytes)
        except MalformedToken as exc:
            self.stdout.write(f"rejected: {exc.code} ({exc.reason})")
            raise CommandError(f"token rejected ({exc.code})") from exc
        now = time.time()
        self.stdout.write(self.style.MIGRATE_HEADING("header (not verified)"))
        self.stdout.write(json.dumps(parsed.header, indent=2, sort_keys=True))
        self.stdout.write(self.style.MIGRATE_HEADING("claims (not verified)"))
        self.stdout.write(json.dumps(parsed.claims, indent=2, sort_keys=True))
        for name in TIME_CLAIMS:
            value = parsed.claims.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.stdout.write(f"  {name}: {_when(value)} ({_from_now(value, now)})")
        self.stdout.write(self.style.MIGRATE_HEADING("verdict"))
        try:
            token = get_validator().validate(raw)
        except TokenError as exc:
            self.stdout.write(self.style.ERROR(f"rejected: {exc.code} ({_explain(exc, parsed.claims, now)})"))
            raise CommandError(f"token rejected ({exc.code})") from exc
        except KeySetUnavailable as exc:
            self.stdout.write(self.style.WARNING(f"undecided: {exc.code} ({exc.reason}); the token is not at fault"))
            raise CommandError("no key set to check the token with", returncode=2) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"accepted: signed by key {token.header.get('kid')!r} of {token.issuer.issuer}, "
                f"subject {token.subject!r}, expires {_from_now(token.claims['exp'], now)}"
            )
        )

    # -- distrust -----------------------------------------------------------------------------------------

    def distrust(
        self, settings: JWTGuardSettings, kid: str, issuer: str | None, seconds: float | None, reason: str
    ) -> None:
        configs, scope, named = _distrust_scope(settings, issuer)
        if seconds is not None and not 0 < seconds <= MAX_FOR:
            raise CommandError(f"--for must be a number of seconds from 1 to {MAX_FOR:.0f}, not {seconds!r}")
        for cache in caches_of(configs):
            record = distrust_kid(cache, kid, issuer=scope, seconds=seconds, reason=reason)
            _written(cache, record is not None)
            # Read back through a new wrapper (no memory of ours): a cache that keeps nothing shares nothing.
            if record is not None and read_shared(SharedCache(cache.alias)).get(record.scope) != record:
                raise CommandError(
                    f"cache {cache.alias!r} does not keep what is written (DummyCache?): the distrust list was NOT "
                    "shared; use DISTRUSTED_KIDS and deploy"
                )
        _read_now(configs)
        until = _when(time.time() + (DEFAULT_FOR if seconds is None else seconds))
        recheck = max((c.jwks_l1_recheck for c in configs), default=ISSUER_DEFAULTS["JWKS_L1_RECHECK"])
        self.stdout.write(
            self.style.WARNING(
                f"kid {kid!r} distrusted for {named} until {until}: every process refuses it "
                f"within JWKS_L1_RECHECK ({recheck:g}s)"
            )
        )

    def trust(self, settings: JWTGuardSettings, kid: str, issuer: str | None) -> None:
        configs, scope, _named = _distrust_scope(settings, issuer)
        ended = 0
        for cache in caches_of(configs):
            records = trust_kid(cache, kid, issuer=scope)
            _written(cache, records is not None)
            ended += len(records or [])
        _read_now(configs)
        still = [
            f"{config.issuer} ({entry.source}{'' if entry.issuer else ', every issuer'})"
            for config in configs
            for entry in _distrusted(config)
            if entry.kid == kid
        ]
        if still:
            raise CommandError(
                f"kid {kid!r} is still distrusted for {', '.join(still)}: remove it from DISTRUSTED_KIDS, or trust "
                "it without --issuer"
            )
        if not ended:
            self.stdout.write(f"kid {kid!r} was not distrusted")
            return
        self.stdout.write(self.style.SUCCESS(f"kid {kid!r} trusted again: every process within JWKS_L1_RECHECK"))

    def distrusted(self, listed: list[tuple[str, Distrust]], *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps([_distrust_row(issuer, entry) for issuer, entry in listed], indent=2))
            return
        if not listed:
            self.stdout.write("no kid is distrusted")
        for issuer, entry in listed:
            if entry.source == "settings":
                when = "since start-up, until removed from DISTRUSTED_KIDS"
            else:
                when = f"since {_when(entry.since)}, until {_when(entry.until)}"
            scope = "this issuer" if entry.issuer else "every issuer"
            self.stdout.write(
                f"{entry.kid}  issuer {issuer} ({scope})  {when}  source {entry.source}  reason: {entry.reason or '-'}"
            )


def _distrusted_rows(settings: JWTGuardSettings, issuer: str | None) -> list[tuple[str, Distrust]]:
    """What ``distrusted`` lists, by issuer. Without ``--issuer``, also the shared records that none of the issuers
    listed answers for: those given for a tenant, named by its key set (its JWKS URL when that is shared)."""
    if issuer is not None:
        return [(config.issuer, entry) for config in _selected(settings, issuer) for entry in _distrusted(config)]
    configs = _distrust_scope(settings, None)[0]
    rows = [(config.issuer, entry) for config in configs for entry in _distrusted(config)]
    named = {config.issuer for config in configs}
    for cache in caches_of(configs):
        for record in merge(read_shared(cache), now=time.time()).values():
            if not record.trusted and record.issuer is not None and record.issuer not in named:
                rows.append((record.issuer, record))
    return rows


def _distrust_row(issuer: str, entry: Distrust) -> dict[str, Any]:
    """One line of ``distrusted --json``: times are None for ``DISTRUSTED_KIDS`` (from start-up, for ever)."""
    from_settings = entry.source == "settings"
    return {
        "kid": entry.kid,
        "issuer": issuer,
        "every_issuer": entry.issuer is None,
        "since": None if from_settings else entry.since,
        "until": None if from_settings else entry.until,
        "reason": entry.reason,
        "source": entry.source,
    }


def add_distrust_parsers(subcommands: Any) -> None:
    """The ``distrust``, ``trust`` and ``distrusted`` subcommands."""
    every = "(default: every issuer)"
    parser = subcommands.add_parser("distrust", help="refuse a kid in every process, whatever the key set holds")
    parser.add_argument("kid", help="the key id to refuse")
    parser.add_argument("--issuer", help=f"only for this issuer (its ISSUER value) {every}")
    parser.add_argument(
        "--for",
        dest="seconds",
        type=float,
        help=f"for this many seconds (default: until 'trust', at most {DEFAULT_FOR / 86400:.0f} days)",
    )
    parser.add_argument("--reason", default="", help="why: shown by 'distrusted' and in the log")
    parser = subcommands.add_parser("trust", help="end a distrust: the kid verifies again if the key set has it")
    parser.add_argument("kid", help="the key id")
    parser.add_argument("--issuer", help=f"only the distrust for this issuer {every}")
    parser = subcommands.add_parser("distrusted", help="list the distrusted kids: settings and shared list")
    parser.add_argument("--issuer", help="only this issuer (its ISSUER value)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _written(cache: SharedCache, locked: bool) -> None:
    """A distrust that only this process would know is no distrust: fail loudly."""
    if cache.is_down:
        raise CommandError(f"cache {cache.alias!r} does not answer: the distrust list was NOT shared")
    if not locked:
        raise CommandError(f"cache {cache.alias!r}: another writer holds the distrust list's lock; try again")


def issuer_status(config: IssuerConfig) -> dict[str, Any]:
    """What ``status`` shows for one issuer, as plain data: the shared entry as every process sees it."""
    status = get_provider(config).read_shared_status()
    report: dict[str, Any] = {
        "issuer": config.issuer,
        "jwks_url": _jwks_url(status),
        "cache_alias": config.cache_alias,
        "cache_backend": _backend_name(config.cache_alias),
        "cache_key": status.cache_key,
        "last_fetch": _last_fetch(status),
    }
    if status.fetched_at is None:
        return {**report, "state": "none", "kids": {}, "etag": None}
    return {**status.describe(time.time()), **report, "fetched_at": status.fetched_at, "etag": status.etag}


def resolved_issuers_status(settings: JWTGuardSettings) -> dict[str, Any] | None:
    """The patterns, the source, and what this process holds of the issuers they resolved; None without either."""
    if not settings.patterns and settings.issuer_source is None:
        return None
    providers = resolved_provider_stats()
    held = get_validator().issuers.held()
    source = None
    if settings.issuer_source is not None:
        source = {
            "path": settings.issuer_source,
            "ttl": settings.issuer_source_ttl,
            "negative_ttl": settings.issuer_source_negative_ttl,
        }
    return {
        "patterns": [{"pattern": p.pattern, "jwks_url": p.template.jwks_url} for p in settings.patterns],
        "source": source,
        "cache_size": settings.issuer_cache_size,
        "this_process": {
            **held,
            "providers_held": providers["held"],
            "providers_evicted": providers["evicted"],
            "fetched": providers["fetched"],
        },
    }


def _selected(settings: JWTGuardSettings, issuer: str | None) -> list[IssuerConfig]:
    if issuer is None:
        return list(settings.issuers)
    chosen = [config for config in settings.issuers if config.issuer == issuer]
    if not chosen and any(pattern.pattern == issuer for pattern in settings.patterns):
        raise CommandError(
            f"{issuer!r} is an ISSUER pattern, not an issuer: run without --issuer (every issuer), or with --issuer "
            "and one of its issuers (a token's iss)"
        )
    if not chosen and (settings.patterns or settings.issuer_source is not None):
        # A tenant's issuer: resolved as a token naming it would be (the source may be asked).
        try:
            resolved = get_validator().issuers.resolve(issuer)
        except KeySetUnavailable as exc:
            raise CommandError(f"{issuer}: {exc.reason}") from exc
        chosen = [resolved] if isinstance(resolved, IssuerConfig) else []
    if not chosen:
        known = ", ".join([config.issuer for config in settings.issuers] + [p.pattern for p in settings.patterns])
        source = " (nor by ISSUER_SOURCE)" if settings.issuer_source is not None else ""
        raise CommandError(f"no issuer {issuer!r} is configured{source}; configured: {known or 'none'}")
    return chosen


def _distrust_scope(settings: JWTGuardSettings, issuer: str | None) -> tuple[list[IssuerConfig], str | None, str]:
    """What ``distrust`` and ``trust`` act on: the issuers whose lists they read, the records' issuer (None:
    every issuer) and how to name it. Without ``--issuer``, the patterns' templates and the source's too. With a
    resolved issuer, the records name its key provider, which serves every issuer whose keys are at one JWKS URL
    (all Entra ID tenants): a kid is distrusted for the key set it is in, so for all of them."""
    if issuer is None:
        templates = [pattern.template for pattern in settings.patterns]
        if settings.issuer_source is not None:
            try:
                templates.append(source_defaults(settings))
            except ImproperlyConfigured as exc:  # a top-level key no answer could be read over
                raise CommandError(f"settings.JWTGUARD is invalid: {exc}") from exc
        return [*settings.issuers, *templates], None, "every issuer"
    configs = _selected(settings, issuer)
    keys = get_provider(configs[0]).config.issuer
    if keys == issuer:
        return configs, issuer, issuer
    return configs, keys, f"{issuer} (the keys of {issuer} are those at {keys}: every issuer whose keys are there)"


def _read_now(configs: list[IssuerConfig]) -> None:
    """This process reads the distrust lists at once (and logs what changed): those of ``configs``, and of the key
    providers it holds for issuers resolved at run time."""
    for config in configs:
        _distrusted(config)
    for provider in providers():
        provider.distrusted()


def _distrusted(config: IssuerConfig) -> list[Distrust]:
    """What ``config`` refuses, read now. A pattern's or the source's template is no issuer and gets no key
    provider: its list (``DISTRUSTED_KIDS``, and records for every issuer) is read on its own."""
    if config.issuer != SOURCE_DEFAULTS_ISSUER and not is_issuer_pattern(config.issuer):
        return get_provider(config).distrusted()
    held = IssuerDistrust(config, SharedCache(config.cache_alias))
    held.read()
    return held.entries()


def _read_token(value: str) -> str:
    raw = _read_stdin() if value == "-" else value
    raw = raw.strip()
    if raw.lower().startswith("bearer "):
        raw = raw[7:].strip()
    return raw


def _read_stdin() -> str:
    # Bytes, decoded here: invalid UTF-8 on standard input is a malformed token, not a UnicodeDecodeError.
    stream = getattr(sys.stdin, "buffer", None)
    return stream.read().decode("utf-8", "replace") if stream is not None else sys.stdin.read()


def _jwks_url(status: KeyProviderStatus) -> str:
    if status.jwks_url is None:
        return f"not yet discovered (from {status.discovery_url})"
    return f"{status.jwks_url} (discovered)" if status.discovered else status.jwks_url


def _backend_name(alias: str) -> str:
    try:
        backend = caches[alias]
    except Exception as exc:  # InvalidCacheBackendError, or a backend that cannot be built
        return f"unavailable: {exc}"
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def _last_fetch(status: KeyProviderStatus) -> str:
    """From the shared counters, so it tells what any process last saw, not only this one."""
    if status.failures:
        line = f"FAILED {status.failures} time(s) in a row"
        if status.last_error:
            line += f": {status.last_error}"
        if status.retry_at is not None:
            line += f"; next try after {_when(status.retry_at)}"
        return line
    if status.fetched_at is not None:
        return f"succeeded at {_when(status.fetched_at)}"
    return "never fetched"


def _explain(exc: TokenError, claims: dict[str, Any], now: float) -> str:
    reason = exc.reason
    exp = claims.get("exp")
    if exc.code == "token_expired" and isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return f"expired at {_when(exp)}, {_from_now(exp, now)}"
    if isinstance(exc, DPoPRequired):
        # Checked last, once the token passed everything else; inspect has no proof to give.
        cnf = claims.get("cnf")
        if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str):
            verdict = "it would be accepted with a DPoP proof by the key it is bound to"
        else:
            verdict = "it is bound to no key (no cnf.jkt): this issuer requires DPoP, so it is never accepted"
        return f"{reason}; the token passed every other check, and {verdict}"
    return reason


def _when(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{timestamp!r} (out of range)"


def _from_now(timestamp: float, now: float) -> str:
    """How far ``timestamp`` is from ``now``, for any JSON number: an integer such as 10**400 (a forgery's
    ``exp``) has no float, so past ``FAR`` seconds the span is only "far"."""
    if abs(timestamp) > FAR:
        return "in the far future" if timestamp > 0 else "in the far past"
    return _relative(timestamp - now)


def _ago(seconds: float) -> str:
    return _relative(-seconds)


def _relative(seconds: float) -> str:
    span = abs(seconds)
    if span < 120:
        amount = f"{span:.0f}s"
    elif span < 7200:
        amount = f"{span / 60:.0f} min"
    elif span < 172800:
        amount = f"{span / 3600:.0f} h"
    else:
        amount = f"{span / 86400:.0f} days"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
