"""Where the outbox's messages go: one URL per destination, read from the environment.

``BATCHLINE_OUTBOX_<NAME>`` names the place and its scheme the transport (docs/integration.md):

- ``https://erp.example/b2mml`` (or ``http://``): a POST per message, HMAC-signed when
  ``BATCHLINE_OUTBOX_<NAME>_SECRET`` is set;
- ``amqp://user:password@host:5672/vhost?exchange=X&routing_key=Y`` (or ``amqps://``): a
  persistent message to RabbitMQ, counted as delivered once the broker confirmed it;
- ``nats://host:4222?subject=S&stream=STREAM`` (or ``tls://``): a JetStream publish, counted
  once the stream acknowledged it; the stream is created when absent, with a duplicate window.

``_TIMEOUT`` (seconds) and ``_MAX_ATTEMPTS`` may follow the name too. The names are the ones the
code writes to: ``qms`` (deviations; ``BATCHLINE_QMS_WEBHOOK_URL`` and ``_SECRET`` still configure
it), ``erp`` and ``lims``. Settings hold the parsed form, plain strings, so that a test can put a
destination in place with ``override_settings(OUTBOX_DESTINATIONS=...)``.

This module imports nothing of Django at load: settings.py calls it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# The destinations Batchline's code writes to.
NAMES = ("qms", "erp", "lims")
TYPES = {
    "http": "webhook",
    "https": "webhook",
    "amqp": "amqp",
    "amqps": "amqp",
    "nats": "nats",
    "tls": "nats",
}
# Parameters of the URL's query that are Batchline's, not the client library's.
OWN_PARAMETERS = {
    "amqp": ("exchange", "routing_key"),
    "nats": ("subject", "stream", "duplicate_window"),
    "webhook": (),
}
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 12
# JetStream drops a message whose Nats-Msg-Id it saw within this window. A day covers every
# retry a worker makes after a publish whose acknowledgement was lost (backoff is at most an hour).
DEFAULT_DUPLICATE_WINDOW = 86_400.0


class DestinationError(ValueError):
    """A destination that cannot be used as configured; the message says which variable and why."""


@dataclass(frozen=True)
class Destination:
    name: str
    type: str  # webhook, amqp, nats
    url: str  # as configured, credentials included: never shown
    secret: str = ""
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # amqp
    exchange: str = ""
    routing_key: str = ""
    # nats
    subject: str = ""
    stream: str = ""
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW

    @property
    def connect_url(self) -> str:
        """The URL for the client library: Batchline's own query parameters taken out."""
        parts = urlsplit(self.url)
        own = OWN_PARAMETERS[self.type]
        rest = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in own]
        return urlunsplit(parts._replace(query=urlencode(rest)))

    @property
    def shown(self) -> str:
        """Where it goes, for the delivery log and the pages: no password, no token."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        if parts.username and parts.password is not None:
            netloc = f"{quote(parts.username)}:***@{netloc}"
        elif parts.username:
            netloc = f"***@{netloc}"  # a NATS token is the user part
        target = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        if self.type == "amqp":
            target += f" exchange {self.exchange or '(default)'} routing key {self.routing_key}"
        elif self.type == "nats":
            target += f" subject {self.subject}" + (f" stream {self.stream}" if self.stream else "")
        return target[:500]


def parse(name: str, spec: Mapping[str, str]) -> Destination:
    """A destination from its settings entry (``{"url": ..., "secret": ...}``); raises DestinationError."""
    url = str(spec.get("url", "")).strip()
    where = spec.get("variable") or f"BATCHLINE_OUTBOX_{name.upper()}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise DestinationError(f"{where}: {url!r} is not a URL ({exc}).") from exc
    scheme = parts.scheme.lower()
    if scheme not in TYPES:
        raise DestinationError(
            f"{where}: {url!r} has no known scheme; use https:// (a webhook), amqp:// (RabbitMQ) or "
            "nats:// (NATS JetStream)."
        )
    if not parts.hostname:
        raise DestinationError(f"{where}: {url!r} names no host.")
    kind = TYPES[scheme]
    declared = spec.get("type")
    if declared and declared != kind:
        raise DestinationError(f"{where}: type {declared!r} does not match the URL's scheme {scheme}://.")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    timeout = _number(spec.get("timeout"), DEFAULT_TIMEOUT, f"{where}_TIMEOUT")
    max_attempts = int(_number(spec.get("max_attempts"), DEFAULT_MAX_ATTEMPTS, f"{where}_MAX_ATTEMPTS"))
    if timeout <= 0 or max_attempts < 1:
        raise DestinationError(f"{where}: the timeout must be above 0 and at least one attempt allowed.")
    base = Destination(
        name=name,
        type=kind,
        url=url,
        secret=str(spec.get("secret", "")),
        timeout=timeout,
        max_attempts=max_attempts,
    )
    if kind == "amqp":
        exchange = query.get("exchange", "")
        routing_key = query.get("routing_key", "" if exchange else name)
        return replace(base, exchange=exchange, routing_key=routing_key)
    if kind == "nats":
        subject = query.get("subject", "").strip()
        if not subject or any(c in subject for c in " *>"):
            raise DestinationError(
                f"{where}: a NATS destination needs ?subject= (one subject, no wildcards), "
                "e.g. nats://127.0.0.1:4222?subject=batchline.erp&stream=BATCHLINE_OUT."
            )
        stream = query.get("stream", "").strip()
        if stream and any(c in stream for c in " .*>"):
            raise DestinationError(
                f"{where}: the JetStream stream name {stream!r} may not hold . * > or spaces."
            )
        window = _number(query.get("duplicate_window"), DEFAULT_DUPLICATE_WINDOW, f"{where} duplicate_window")
        return replace(base, subject=subject, stream=stream, duplicate_window=window)
    return base


def _number(value: object, default: float, where: str) -> float:
    if value is None or str(value).strip() == "":
        return default
    try:
        number = float(str(value).strip())
    except ValueError:
        raise DestinationError(f"{where}: {value!r} is not a number.") from None
    if not math.isfinite(number):
        raise DestinationError(f"{where}: {value!r} is not a number.")
    return number


def from_environment(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The settings entry of every destination the environment configures, each checked.

    ``qms`` falls back to the QMS webhook's own variables, which came first and keep working.
    """
    found: dict[str, dict[str, str]] = {}
    for name in NAMES:
        prefix = f"BATCHLINE_OUTBOX_{name.upper()}"
        spec = {
            "url": environ.get(prefix, "").strip(),
            "secret": environ.get(f"{prefix}_SECRET", ""),
            "timeout": environ.get(f"{prefix}_TIMEOUT", "").strip(),
            "max_attempts": environ.get(f"{prefix}_MAX_ATTEMPTS", "").strip(),
            "variable": prefix,
        }
        if name == "qms" and not spec["url"] and environ.get("BATCHLINE_QMS_WEBHOOK_URL", "").strip():
            spec = {
                "url": environ["BATCHLINE_QMS_WEBHOOK_URL"].strip(),
                "secret": spec["secret"] or environ.get("BATCHLINE_QMS_WEBHOOK_SECRET", ""),
                "timeout": spec["timeout"] or environ.get("BATCHLINE_QMS_TIMEOUT", "").strip(),
                "max_attempts": spec["max_attempts"] or environ.get("BATCHLINE_QMS_MAX_ATTEMPTS", "").strip(),
                "variable": "BATCHLINE_QMS_WEBHOOK_URL",
            }
        if not spec["url"]:
            continue
        destination = parse(name, spec)  # refused at start-up, in words, rather than at the first message
        found[name] = {k: v for k, v in spec.items() if v} | {"type": destination.type}
    return found


def configured() -> dict[str, Destination]:
    """The destinations of this installation (settings.OUTBOX_DESTINATIONS), parsed."""
    from django.conf import settings

    return {name: parse(name, spec) for name, spec in getattr(settings, "OUTBOX_DESTINATIONS", {}).items()}
