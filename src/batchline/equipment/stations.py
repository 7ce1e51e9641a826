"""Which registered station a request comes from, and entries taken only from one (21 CFR 11.10(h)).

A station (master data, ``Station``) is a terminal of the floor with its network
address, or the small network of a booth's tablets, and the instruments it may
use. The middleware here names the request's terminal for its length; the
actor made for it (``Actor.of``) carries the station's code, which every entry
records. With the GMP setting ``registered_stations_only`` on, the services of
the floor and the warehouse refuse an actor of the web or the API that comes
from no registered station, and a weighing refuses a scale not registered to
the station. Reads are never refused; the command line is the server's own
(its people are the engineers and the demo), not a terminal of the floor.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import transaction

from batchline.audit.services import TERMINAL, Actor, audit_append
from batchline.configuration import selectors as configuration
from batchline.rules.verdict import Reason, Refused, Verdict

from .models import Station

security_log = logging.getLogger("batchline.security")

P = ParamSpec("P")
R = TypeVar("R")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class StationRefused(Refused):
    """An entry from a terminal that is no registered station: nothing written, the attempt recorded."""


def _ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack server shows an IPv4 tablet as ::ffff:10.20.1.5
    return address


def _within(address: IPAddress, networks: Sequence[str]) -> bool:
    for text in networks:
        try:
            if address in ipaddress.ip_network(text, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(meta: Mapping[str, Any], trusted_proxies: Sequence[str] = ()) -> str:
    """The address of the terminal: the one that connected, unless that is a trusted proxy.

    Behind a trusted proxy, X-Forwarded-For is read from its right end (the entries
    the proxies appended), skipping the trusted proxies; the first other address is
    the terminal. What a client wrote at the left end itself is never reached.
    """
    remote = str(meta.get("REMOTE_ADDR", "") or "")
    connected = _ip(remote)
    if connected is None or not trusted_proxies or not _within(connected, trusted_proxies):
        return str(connected) if connected is not None else remote
    hops = [h.strip() for h in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            return hop  # a hop the proxy wrote that is no address: no station has it
        if not _within(address, trusted_proxies):
            return str(address)
    return str(connected)


def station_of(address: str) -> Station | None:
    """The active station whose address or network holds ``address`` (master data keeps them apart)."""
    ip = _ip(address)
    if ip is None:
        return None
    found: tuple[int, Station] | None = None
    for station in Station.objects.filter(retired_at__isnull=True):
        try:
            network = ipaddress.ip_network(station.address, strict=False)
        except ValueError:
            continue
        # The narrowest network wins, should an overlap have been registered before it was refused.
        if ip in network and (found is None or network.prefixlen > found[0]):
            found = (network.prefixlen, station)
    return found[1] if found else None


class RequestTerminal:
    """The request's terminal; its station is looked up once, when an actor first asks for it."""

    def __init__(self, address: str) -> None:
        self.address = address

    @functools.cached_property
    def station(self) -> str:
        found = station_of(self.address)
        return found.code if found is not None else ""


class StationMiddleware:
    """Names the terminal of each request for the actors made while it is served."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        terminal = RequestTerminal(client_address(request.META, settings.BATCHLINE_TRUSTED_PROXIES))
        request.terminal = terminal
        token = TERMINAL.set(terminal)
        try:
            return self.get_response(request)
        finally:
            TERMINAL.reset(token)


def control_on() -> bool:
    return configuration.current().registered_stations_only


def _at_terminal(actor: Actor) -> bool:
    """An actor at a terminal of the plant (a page or the API), not the server's own command line."""
    return actor.via in ("web", "api")


def terminal_address() -> str:
    terminal = TERMINAL.get()
    return terminal.address if terminal is not None and terminal.address else "unknown address"


def entry_reason(actor: Actor) -> Reason | None:
    """Why an entry by ``actor`` is refused at this terminal, or None (control off, a registered station)."""
    if actor.station or not _at_terminal(actor) or not control_on():
        return None
    return Reason(
        "STATION_NOT_REGISTERED",
        f"This terminal ({terminal_address()}) is not a registered station: entries are accepted only "
        "from registered stations (21 CFR 11.10(h)). Ask the engineer to register it.",
    )


def _attempted(name: str, kwargs: Mapping[str, Any]) -> str:
    """What was attempted, for the record of the refusal: the action and what it was on."""
    batch = kwargs.get("batch")
    parts = [name.replace("_", " ")]
    if batch is not None:
        parts.append(f"batch {getattr(batch, 'number', batch)}")
    for key in ("step_key", "code", "lot_number"):
        if kwargs.get(key):
            parts.append(f"{key.replace('_', ' ')} {kwargs[key]}")
    return ", ".join(parts)


def station_refusal_record(actor: Actor, reason: Reason, attempted: str) -> None:
    """The refused attempt, kept as a security event naming the address, in its own transaction."""
    address = terminal_address()
    with transaction.atomic():
        audit_append(
            actor=actor,
            action="station_refused",
            record_type="equipment.station",
            record_id=address,
            reason=f"{attempted} from {address}: {reason.message} [{reason.code}]",
        )
    security_log.warning(
        "entry refused from unregistered terminal %s: %s by %s", address, attempted, actor.username
    )


def registered_station_only(action: Callable[P, R]) -> Callable[P, R]:
    """Refuse the entry, before anything is read or locked, when it comes from no registered station.

    For the services of the floor and the warehouse (keyword ``actor``). The
    refusal is recorded after the caller's nothing-written: outside the action's
    transaction, so its rollback cannot take the record with it.
    """

    @functools.wraps(action)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        actor = kwargs["actor"]
        assert isinstance(actor, Actor)
        # The setting read here is the version the whole action acts under (its other rules ask too).
        with configuration.one_version():
            reason = entry_reason(actor)
            if reason is not None:
                station_refusal_record(actor, reason, _attempted(action.__name__, kwargs))
                raise StationRefused(Verdict.of(reason))
            return action(*args, **kwargs)

    return run


def instrument_reason(actor: Actor, code: str) -> Reason | None:
    """Why ``actor``'s station may not take a reading from the instrument ``code``, or None."""
    if not _at_terminal(actor) or not control_on():
        return None
    refused = entry_reason(actor)
    if refused is not None:
        return refused
    station = Station.objects.filter(code=actor.station, retired_at__isnull=True).first()
    if station is None:  # retired while the person was at it
        return Reason(
            "STATION_NOT_REGISTERED",
            f"Station {actor.station} is retired: entries are accepted only from registered stations "
            "(21 CFR 11.10(h)). Ask the engineer to register it.",
        )
    wanted = code.strip().upper()
    if wanted in {str(d).upper() for d in station.devices}:
        return None
    others = ", ".join(str(d) for d in station.devices)
    return Reason(
        "INSTRUMENT_NOT_AT_STATION",
        f"{wanted or 'That scale'} is not registered to station {station.code}: "
        + (f"weigh on {others}." if others else "no scale is; ask the engineer to register one."),
    )
