"""Reading the gateway's configuration and its process data, for the gateway, pages and the record.

Process data is read from the raw readings and, for periods downsampling summarised, from the
summaries (``downsample``): a trend over old data still draws, as a band of each bucket's lowest
and highest value.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.equipment.models import Equipment
from batchline.execution.instruments import DeviceValue

from .models import (
    REQUEST_KINDS,
    ConnectionStatus,
    Endpoint,
    GatewayStatus,
    ProcessSummary,
    StoredReading,
    Tag,
)
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
    # A summarised bucket (downsample) stands as one point: ``at`` its start, ``value`` the mean of its
    # usable values, ``low`` and ``high`` their range, ``readings`` how many raw readings it summarises.
    summary: bool = False
    low: float | None = None
    high: float | None = None
    readings: int = 1

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


def _summary_quality(s: ProcessSummary) -> Quality:
    if s.usable:
        return Quality.UNCERTAIN if s.uncertain else Quality.GOOD
    if s.good or s.uncertain:  # text values: counted, not kept
        return Quality.UNCERTAIN if s.uncertain else Quality.GOOD
    return Quality.STALE if s.stale and not s.bad else Quality.BAD


def _merged(parts: list[ProcessSummary]) -> ProcessSummary:
    """One bucket's parts (readings summarised on later runs) as one summary, unsaved."""
    if len(parts) == 1:
        return parts[0]
    first, last = min(parts, key=lambda p: p.first_at), max(parts, key=lambda p: p.last_at)
    numbers = [p for p in parts if p.usable]
    usable = sum(p.usable for p in numbers)
    return ProcessSummary(
        unit=first.unit,
        protocol=first.protocol,
        endpoint=first.endpoint,
        tag=first.tag,
        historical=first.historical,
        bucket=first.bucket,
        seconds=max(p.seconds for p in parts),
        readings=sum(p.readings for p in parts),
        good=sum(p.good for p in parts),
        uncertain=sum(p.uncertain for p in parts),
        bad=sum(p.bad for p in parts),
        stale=sum(p.stale for p in parts),
        usable=usable,
        minimum=min((p.minimum for p in numbers if p.minimum is not None), default=None),
        maximum=max((p.maximum for p in numbers if p.maximum is not None), default=None),
        mean=sum((p.mean or 0.0) * p.usable for p in numbers) / usable if usable else None,
        first_value=min(numbers, key=lambda p: p.first_at).first_value if numbers else None,
        last_value=max(numbers, key=lambda p: p.last_at).last_value if numbers else None,
        value_type=max((p.value_type for p in parts), default=""),
        first_at=first.first_at,
        last_at=last.last_at,
        unit_of_measure=last.unit_of_measure or first.unit_of_measure,
    )


def _summary_point(s: ProcessSummary) -> Point:
    return Point(
        at=s.bucket,
        value=s.mean if s.usable else None,
        quality=_summary_quality(s),
        status="",
        unit_of_measure=s.unit_of_measure,
        source_time=None,
        gateway_time=s.last_at,
        historical=s.historical,
        endpoint=s.endpoint,
        protocol=s.protocol,
        summary=True,
        low=s.minimum,
        high=s.maximum,
        readings=s.readings,
    )


def series(*, unit: str, tag: str, start: dt.datetime, end: dt.datetime, limit: int = 100_000) -> list[Point]:
    """A tag's values of one unit observed from ``start`` (inclusive) to ``end`` (exclusive), in time order.

    Bad and Stale observations are included (a chart shows the gap and why); ``Point.usable`` says
    which values count. Where downsampling replaced the raw rows, each summarised bucket with a
    reading in the period is one point (``Point.summary``, with its range and count). Two queries,
    on PostgreSQL the raw one pruned to the partitions of the period.
    """
    rows = StoredReading.objects.filter(unit=unit, tag=tag, at__gte=start, at__lt=end).order_by(
        "at", "sequence"
    )
    points = [_point(r) for r in rows[:limit]]
    parts: dict[tuple[object, ...], list[ProcessSummary]] = defaultdict(list)
    for s in ProcessSummary.objects.filter(unit=unit, tag=tag, bucket__lt=end, last_at__gte=start).order_by(
        "bucket", "part"
    ):
        parts[(s.bucket, s.endpoint, s.protocol, s.historical)].append(s)
    if not parts:
        return points
    merged = [_summary_point(_merged(p)) for p in parts.values()]
    return sorted(points + merged, key=lambda p: p.at)[:limit]  # stable: raw rows keep their order


@dataclass(frozen=True)
class TagNow:
    """A configured tag and its last stored value (None when nothing was ever stored)."""

    tag: Tag
    last: Point | None


def last_values(*, endpoint: str | None = None) -> list[TagNow]:
    """Each active configured tag with its last stored observation (by observation time).

    Two queries: the tags with the time of their last row (and of their last summary), then those
    rows; a third only when a tag's raw rows were all downsampled, whose last summarised value
    then stands for its last (``Point.summary``).
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
            ),
            # Where downsampling took every raw row, the last summary stands for the last value.
            summary_last_at=Subquery(
                ProcessSummary.objects.filter(
                    unit=OuterRef("equipment__code"),
                    tag=OuterRef("tag"),
                    endpoint=OuterRef("endpoint__address"),
                )
                .order_by()
                .values("unit")
                .annotate(m=Max("last_at"))
                .values("m")[:1]
            ),
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
    # A third query only when a tag has summaries and no raw row left.
    summarised = [
        (t.equipment.code, t.tag, t.endpoint.address, t.summary_last_at)
        for t in tags
        if t.last_at is None and t.summary_last_at is not None
    ]
    last_summary: dict[tuple[str, str, str], Point] = {}
    if summarised:
        condition = Q()
        for unit, tag, address, at in summarised:
            condition |= Q(unit=unit, tag=tag, endpoint=address, last_at=at)
        for s in ProcessSummary.objects.filter(condition).order_by("summarised_at", "part"):
            last_summary[(s.unit, s.tag, s.endpoint)] = _last_of(s)
    out = []
    for t in tags:
        key = (t.equipment.code, t.tag, t.endpoint.address)
        out.append(TagNow(tag=t, last=_point(found[key]) if key in found else last_summary.get(key)))
    return out


def _last_of(s: ProcessSummary) -> Point:
    """A summary's last usable value as the tag's last value (its time the bucket's last reading's)."""
    value: float | int | bool | None = s.last_value
    if value is not None and s.value_type == "b":
        value = bool(value)
    elif value is not None and s.value_type == "i":
        value = int(value)
    point = _summary_point(s)
    return Point(
        **{**point.__dict__, "at": s.last_at, "value": value if s.usable else None, "readings": s.readings}
    )


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
    # Where downsampling summarised the period: each bucket's lowest value at its first reading and
    # its highest at its last, so a trend frozen from them keeps each bucket's range (the record's
    # ProcessTrend keeps no more). A bucket without a usable number is one gap.
    summaries = ProcessSummary.objects.filter(
        unit=unit, tag__in=list(configured), bucket__lte=end, last_at__gte=start, historical=False
    ).exclude(value_type="b")
    for s in summaries.order_by("bucket", "part"):
        uom = s.unit_of_measure or configured[s.tag]
        if s.usable and s.minimum is not None and s.maximum is not None:
            out.append((max(s.first_at, start), s.minimum, uom))
            out.append((min(s.last_at, end), s.maximum, uom))
        else:
            out.append((max(s.bucket, start), None, uom))
    out.sort(key=lambda item: item[0])  # stable: each raw reading keeps its place among its equals
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
