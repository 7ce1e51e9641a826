"""Reading the gateway's configuration and its process data, for the gateway, pages and the record."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.equipment.models import Equipment
from batchline.execution.instruments import DeviceValue

from .models import REQUEST_KINDS, ConnectionStatus, Endpoint, GatewayStatus, StoredReading, Tag
from .readings import Connection, Protocol, Quality, TagSpec


def endpoints() -> QuerySet[Endpoint]:
    """Every endpoint as configured, retired ones too, each with the number of its tags in force."""
    return Endpoint.objects.annotate(
        tags_in_force=Count("tags", filter=Q(tags__retired_at__isnull=True))
    ).order_by("retired_at", "code")


def tags() -> QuerySet[Tag]:
    """Every tag as configured, retired ones too (after those in force), with its endpoint and unit."""
    return Tag.objects.select_related("endpoint", "equipment").order_by("retired_at", "endpoint__code", "tag")


def units_in_service() -> QuerySet[Equipment]:
    """The equipment units a tag may be configured for: those not retired."""
    return Equipment.objects.filter(retired_at__isnull=True).order_by("code")


def requests_open() -> QuerySet[ChangeRequest]:
    """Tag and endpoint requests waiting for a QA approver, oldest first."""
    return (
        ChangeRequest.objects.filter(kind__in=REQUEST_KINDS, state=RequestState.REQUESTED)
        .select_related("requested_by")
        .order_by("requested_at", "id")
    )


def connections() -> list[Connection]:
    """The configuration as the adapters take it: each active endpoint with its active tags.

    A retired endpoint, a retired tag and a tag of a retired unit are not read; an endpoint left
    without tags has nothing to read and is left out. Two queries.
    """
    tags = (
        Tag.objects.filter(
            retired_at__isnull=True, endpoint__retired_at__isnull=True, equipment__retired_at__isnull=True
        )
        .select_related("equipment")
        .order_by("endpoint_id", "tag")
    )
    by_endpoint: dict[int, list[TagSpec]] = defaultdict(list)
    for t in tags:
        by_endpoint[t.endpoint_id].append(
            TagSpec(
                unit=t.equipment.code,
                tag=t.tag,
                name=t.name,
                unit_of_measure=t.unit_of_measure,
                sampling_ms=t.sampling_ms,
                deadband=float(t.deadband),
                options=dict(t.options),
            )
        )
    return [
        Connection(
            protocol=Protocol(e.protocol),
            endpoint=e.address,
            tags=tuple(by_endpoint[e.pk]),
            options=dict(e.options),
        )
        for e in Endpoint.objects.filter(retired_at__isnull=True, pk__in=list(by_endpoint)).order_by("code")
    ]


@dataclass(frozen=True)
class Point:
    """One stored value, as pages and the record show it."""

    at: dt.datetime
    value: float | int | bool | str | None
    quality: Quality
    status: str
    unit_of_measure: str
    source_time: dt.datetime | None
    gateway_time: dt.datetime
    historical: bool
    endpoint: str
    protocol: str

    @property
    def usable(self) -> bool:
        """Whether the value may be used as a value: Good or Uncertain (to be flagged), never Bad or Stale."""
        return self.quality in (Quality.GOOD, Quality.UNCERTAIN) and self.value is not None


def _value(row: StoredReading) -> float | int | bool | str | None:
    if row.value_type == "b":
        return bool(row.value_num)
    if row.value_type == "i":
        return int(row.value_text) if row.value_text else int(row.value_num or 0)
    if row.value_type == "f":
        return row.value_num
    if row.value_type == "s":
        return row.value_text
    return None


def _point(row: StoredReading) -> Point:
    return Point(
        at=row.at,
        value=_value(row),
        quality=Quality(row.quality),
        status=row.status,
        unit_of_measure=row.unit_of_measure,
        source_time=row.source_time,
        gateway_time=row.gateway_time,
        historical=row.historical,
        endpoint=row.endpoint,
        protocol=row.protocol,
    )


def series(*, unit: str, tag: str, start: dt.datetime, end: dt.datetime, limit: int = 100_000) -> list[Point]:
    """A tag's values of one unit observed from ``start`` (inclusive) to ``end`` (exclusive), in time order.

    Bad and Stale observations are included (a chart shows the gap and why); ``Point.usable`` says
    which values count. One query, on PostgreSQL pruned to the partitions of the period.
    """
    rows = StoredReading.objects.filter(unit=unit, tag=tag, at__gte=start, at__lt=end).order_by(
        "at", "sequence"
    )
    return [_point(r) for r in rows[:limit]]


@dataclass(frozen=True)
class TagNow:
    """A configured tag and its last stored value (None when nothing was ever stored)."""

    tag: Tag
    last: Point | None


def last_values(*, endpoint: str | None = None) -> list[TagNow]:
    """Each active configured tag with its last stored observation (by observation time).

    Two queries: the tags with the time of their last row, then those rows.
    """
    tags = list(
        Tag.objects.filter(retired_at__isnull=True, endpoint__retired_at__isnull=True)
        .filter(**({"endpoint__code": endpoint} if endpoint else {}))
        .select_related("endpoint", "equipment")
        .annotate(
            last_at=Subquery(
                StoredReading.objects.filter(
                    unit=OuterRef("equipment__code"),
                    tag=OuterRef("tag"),
                    endpoint=OuterRef("endpoint__address"),
                )
                .order_by()
                .values("unit")
                .annotate(m=Max("at"))
                .values("m")[:1]
            )
        )
        .order_by("endpoint__code", "tag")
    )
    wanted = [(t.equipment.code, t.tag, t.endpoint.address, t.last_at) for t in tags if t.last_at is not None]
    found: dict[tuple[str, str, str], StoredReading] = {}
    if wanted:
        condition = Q()
        for unit, tag, address, at in wanted:
            condition |= Q(unit=unit, tag=tag, endpoint=address, at=at)
        # Several observations at one instant (a Sparkplug seq, a Stale after a Good): the one the
        # gateway received last stands for "last".
        for row in StoredReading.objects.filter(condition).order_by("gateway_time", "sequence"):
            found[(row.unit, row.tag, row.endpoint)] = row
    return [
        TagNow(
            tag=t,
            last=_point(found[key])
            if (key := (t.equipment.code, t.tag, t.endpoint.address)) in found
            else None,
        )
        for t in tags
    ]


def is_stale(item: TagNow, *, now: dt.datetime, older_than: dt.timedelta) -> bool:
    """No value, Bad or Stale last, or older than ``older_than`` at ``now``.

    Age alone is a weak sign under a deadband (a steady value sends nothing); a source's own
    STALE (an adapter's on death or lost connection) is the strong one.
    """
    last = item.last
    return (
        last is None or last.quality in (Quality.BAD, Quality.STALE) or now - last.gateway_time > older_than
    )


def stale_tags(*, now: dt.datetime, older_than: dt.timedelta) -> list[TagNow]:
    """Tags whose last value is missing, Bad or Stale, or too old (:func:`is_stale`)."""
    return [item for item in last_values() if is_stale(item, now=now, older_than=older_than)]


def gateway_statuses() -> list[GatewayStatus]:
    """Each gateway's last word about itself: stored, spooled, lost, database reachable (the engineers' page)."""
    return list(GatewayStatus.objects.order_by("name"))


def connection_statuses(*, gateway: str | None = None) -> list[ConnectionStatus]:
    """Each connection's last reported state, by gateway and endpoint."""
    queryset = ConnectionStatus.objects.order_by("gateway", "protocol", "endpoint")
    return list(queryset.filter(gateway=gateway) if gateway else queryset)


def parameter_series(
    unit: str, parameter: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, float | None, str]]:
    """A unit's stored values of a parameter (the tags named so on it) in a period, in time order:
    (time, the value when Good or Uncertain and a number, else None, its unit of measure)."""
    configured = dict(
        Tag.objects.filter(equipment__code=unit, name=parameter).values_list("tag", "unit_of_measure")
    )
    if not configured:
        return []
    rows = StoredReading.objects.filter(
        unit=unit, tag__in=list(configured), at__gte=start, at__lte=end, historical=False
    )
    out: list[tuple[dt.datetime, float | None, str]] = []
    fields = ("at", "tag", "value_num", "value_type", "quality", "unit_of_measure")
    for row in rows.order_by("at", "sequence").only(*fields):
        usable = row.quality in (Quality.GOOD, Quality.UNCERTAIN) and row.value_type in ("f", "i")
        # The unit the reading came with; the tag's configured one where the adapter gave none.
        out.append((row.at, row.value_num if usable else None, row.unit_of_measure or configured[row.tag]))
    return out


def device_value(unit: str, parameter: str) -> DeviceValue | None:
    """The latest stored observation of a unit's parameter, for an input read from the machine
    (execution.instruments): None when no active tag carries the parameter on that unit.

    Two or three queries: the tags, their latest reading (of the last day: a reading older than
    that is no current value, and on PostgreSQL the query stays in the recent partitions), and
    whether its connection is reported alive now.
    """
    tags = list(
        Tag.objects.filter(
            equipment__code=unit, name=parameter, retired_at__isnull=True, endpoint__retired_at__isnull=True
        ).select_related("endpoint")
    )
    if not tags:
        return None
    configured = {(t.endpoint.address, t.tag): t for t in tags}
    which = Q()
    for address, tag in configured:
        which |= Q(endpoint=address, tag=tag)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    row = (
        StoredReading.objects.filter(which, unit=unit, historical=False, at__gte=since)
        .order_by("-at", "-gateway_time", "-sequence")
        .first()
    )
    first = tags[0]
    if row is None:
        # Configured, nothing read lately: a reading that is not there, Stale.
        return DeviceValue(
            equipment=unit,
            parameter=parameter,
            protocol=first.endpoint.protocol,
            endpoint=first.endpoint.address,
            tag=first.tag,
            number=None,
            raw="",
            unit=first.unit_of_measure,
            quality=Quality.STALE,
            status="nothing stored in the last day",
            source_time=None,
            gateway_time=since,
            key="",
            alive_at=None,
        )
    point = _point(row)
    alive = (
        ConnectionStatus.objects.filter(protocol=row.protocol, endpoint=row.endpoint, connected=True)
        .order_by("-updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )
    usable = point.usable and row.value_type in ("f", "i")
    tag = configured.get((row.endpoint, row.tag), first)
    return DeviceValue(
        equipment=unit,
        parameter=parameter,
        protocol=row.protocol,
        endpoint=row.endpoint,
        tag=row.tag,
        number=float(row.value_num) if usable and row.value_num is not None else None,
        raw="" if point.value is None else str(point.value),
        unit=row.unit_of_measure or tag.unit_of_measure,
        quality=str(point.quality),
        status=row.status,
        source_time=row.source_time,
        gateway_time=row.gateway_time,
        key=bytes(row.key).hex(),
        alive_at=alive,
    )
