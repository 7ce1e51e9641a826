"""The gateway's configuration (master data, audited), the process values it stores and its own state.

- :class:`Endpoint` and :class:`Tag` say which equipment unit speaks which protocol at which address,
  and which tag there carries which parameter in which unit. They are GMP configuration: written
  only through ``gateway.services``, every change audited with its reason.
- :class:`StoredReading` is raw process data, high in volume: one row per observation, its
  identity (``key``, the hash of :attr:`readings.Reading.key`) with its time as the primary key,
  so a replay stores nothing twice. On PostgreSQL the table is partitioned by day on ``at``
  (migrations/0001_initial.py, ``gateway.store``).
- :class:`ProcessSummary` is raw data grown old: per tag and time bucket, the count, quality counts,
  lowest, highest, mean, first and last value, once downsampling removed the rows (``gateway.downsample``).
- :class:`ConnectionStatus` and :class:`GatewayStatus` are what running gateways last said about
  themselves, for the engineers' page: operational state, overwritten, not audited.
"""

from __future__ import annotations

from django.db import models

from batchline.audit.models import AuditedModel
from batchline.equipment.models import Equipment

from .readings import Protocol, Quality

CONFIGURE_PERMISSION = "gateway.configure_gateway"
# The kinds of two-person change request that configure it (gateway.services, approvals).
TAG_KIND = "gateway_tag"
ENDPOINT_KIND = "gateway_endpoint"
REQUEST_KINDS = (TAG_KIND, ENDPOINT_KIND)


class Endpoint(AuditedModel):
    """One address the gateway keeps a connection to (an OPC UA server, an MQTT broker's edge node, a PLC)."""

    code = models.SlugField(max_length=40, unique=True, help_text="e.g. gran-01-plc")
    name = models.CharField(max_length=200)
    protocol = models.CharField(max_length=20, choices=[(p.value, p.name) for p in Protocol])
    address = models.CharField(
        max_length=300, help_text="opc.tcp://host:4840, mqtt://host:1883/group/edge, modbus://host:502/1"
    )
    # Protocol settings as text (timeouts, a Sparkplug host id): readings.Connection.options.
    options = models.JSONField(default=dict, blank=True)
    # Never deleted: a retired endpoint's values stay readable with their source.
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        permissions = [("configure_gateway", "Configure the equipment gateway's endpoints and tags")]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "address"], name="gateway_endpoint_address_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.protocol} {self.address})"


class Tag(AuditedModel):
    """One value at an endpoint: which unit's which parameter it carries, in which unit of measure."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="tags")
    equipment = models.ForeignKey(Equipment, on_delete=models.PROTECT, related_name="gateway_tags")
    tag = models.CharField(max_length=300, help_text="node id, Sparkplug metric, JSON topic/field, register")
    name = models.CharField(max_length=200, help_text="the parameter as recipes name it")
    unit_of_measure = models.CharField(max_length=30, blank=True)
    sampling_ms = models.PositiveIntegerField(default=1000)
    deadband = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    options = models.JSONField(default=dict, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["endpoint__code", "tag"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "tag"], name="gateway_tag_address_uniq")]

    def __str__(self) -> str:
        return f"{self.tag} ({self.name})"


class StoredReading(models.Model):
    """One stored observation of one tag, as the adapter reported it (readings.Reading).

    ``at`` is the observation's time: the device's (``source_time``) when it sent one, else the
    gateway's. It is the time inside the key, so the same observation seen again, however much
    later, has the same ``(key, at)`` and lands in the same partition, where the primary key
    refuses it. Rows are never updated (a trigger refuses it); only retention and downsampling
    remove them.
    """

    pk = models.CompositePrimaryKey("key", "at")
    key = models.BinaryField(max_length=16)  # blake2b-128 of Reading.key
    at = models.DateTimeField()
    unit = models.TextField()  # the equipment unit's code
    protocol = models.CharField(max_length=20)
    endpoint = models.TextField()
    tag = models.TextField()
    # "f" float, "i" integer, "b" boolean, "s" text, "" no value (Bad, Stale). Numbers and booleans
    # are in value_num (what charts and limits use); text in value_text, and an integer too big for
    # a double there as well, exactly.
    value_type = models.CharField(max_length=1, blank=True)
    value_num = models.FloatField(null=True)
    value_text = models.TextField(null=True)
    quality = models.CharField(max_length=10, choices=[(q.value, q.name) for q in Quality])
    status = models.TextField(blank=True)
    source_time = models.DateTimeField(null=True)
    gateway_time = models.DateTimeField()
    stored_at = models.DateTimeField()
    unit_of_measure = models.TextField(blank=True)
    sequence = models.TextField(blank=True)
    historical = models.BooleanField(default=False)
    flags = models.TextField(blank=True)  # sorted, comma-separated

    class Meta:
        db_table = "gateway_reading"
        indexes = [models.Index(fields=["unit", "tag", "at"], name="gateway_reading_series")]

    def __str__(self) -> str:
        return f"{self.unit} {self.tag} at {self.at.isoformat()}: {self.quality}"


class ProcessSummary(models.Model):
    """One tag's readings of one time bucket, summarised once their raw rows grew old (``gateway.downsample``).

    Like :class:`StoredReading`, process data outside the audit chain: written by the downsampling
    in the same transaction that removes the raw rows it summarises, never updated (a trigger
    refuses it), removed only by the summaries' own retention. Readings that arrive for a bucket
    already summarised (a spool forwarded days late) become a further ``part`` of that bucket:
    a bucket's figures are the sum of its parts (``selectors``).
    """

    unit = models.TextField()
    protocol = models.CharField(max_length=20)
    endpoint = models.TextField()
    tag = models.TextField()
    historical = models.BooleanField(default=False)
    bucket = models.DateTimeField(help_text="the bucket's start (UTC, aligned to the epoch)")
    seconds = models.PositiveIntegerField(help_text="the bucket's length")
    part = models.PositiveSmallIntegerField(default=0)
    readings = models.PositiveIntegerField(help_text="raw rows summarised, whatever their quality")
    good = models.PositiveIntegerField(default=0)
    uncertain = models.PositiveIntegerField(default=0)
    bad = models.PositiveIntegerField(default=0)
    stale = models.PositiveIntegerField(default=0)
    # Of the Good and Uncertain readings, those with a number (a float, an integer, a boolean):
    # what the figures below are of. Text values are counted above, not kept.
    usable = models.PositiveIntegerField(default=0)
    minimum = models.FloatField(null=True)
    maximum = models.FloatField(null=True)
    mean = models.FloatField(null=True)
    first_value = models.FloatField(null=True)
    last_value = models.FloatField(null=True)
    value_type = models.CharField(max_length=1, blank=True)  # as StoredReading's, of the usable values
    first_at = models.DateTimeField(help_text="the first reading's observation time")
    last_at = models.DateTimeField(help_text="the last reading's observation time")
    unit_of_measure = models.TextField(blank=True)
    summarised_at = models.DateTimeField()

    class Meta:
        db_table = "gateway_summary"
        constraints = [
            # One row per tag, bucket and part: a second run, or two at once, summarises nothing twice.
            models.UniqueConstraint(
                fields=["unit", "protocol", "endpoint", "tag", "historical", "bucket", "part"],
                name="gateway_summary_once",
            )
        ]
        indexes = [models.Index(fields=["unit", "tag", "bucket"], name="gateway_summary_series")]

    def __str__(self) -> str:
        return f"{self.unit} {self.tag} from {self.bucket.isoformat()} ({self.readings} readings)"


class GatewayStatus(models.Model):
    """A running gateway's heartbeat and its store-and-forward counters (the engineers' page)."""

    name = models.CharField(max_length=100, unique=True)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    stored = models.BigIntegerField(default=0)  # readings written since it started
    spooled = models.BigIntegerField(default=0)  # readings waiting in the spool now
    # Readings lost: dropped from a full spool, or refused by the database (a value it cannot hold).
    # Counted over the spool's life, so a restart does not forget a loss.
    dropped = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    last_loss_at = models.DateTimeField(null=True)
    database_ok = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "gateway statuses"

    def __str__(self) -> str:
        return f"gateway {self.name}"


class ConnectionStatus(models.Model):
    """What one adapter last said about its connection (readings.ConnectionState)."""

    gateway = models.CharField(max_length=100)
    protocol = models.CharField(max_length=20)
    endpoint = models.CharField(max_length=300)
    connected = models.BooleanField(default=False)
    since = models.DateTimeField(null=True)
    last_error = models.TextField(blank=True)
    received = models.BigIntegerField(default=0)
    reconnects = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "protocol", "endpoint"], name="gateway_connection_status_uniq"
            )
        ]
        verbose_name_plural = "connection statuses"

    def __str__(self) -> str:
        return f"{self.protocol} {self.endpoint} ({'connected' if self.connected else 'not connected'})"
