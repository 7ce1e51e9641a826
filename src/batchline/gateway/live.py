"""Readings judged as they are stored: the gateway's hooks into ``gateway.judging`` (issue 15).

Each stored reading of a configured tag goes to the judge as the parameter the tag carries (the
tag's name, as recipes name it) in the tag's unit of measure. The judge's list of running steps is
at most a second old when it judges a reading (a step started since is judged from its first
values), and every status round it says which signals went silent. Readings that waited in the
spool while the database was away are judged when they are forwarded, in order and at their own
times: an excursion during an outage is recorded late, never lost. An outage longer than a
monitor's signal timeout also shows as a loss of signal on it: nothing judged it meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from .judging import Judging
from .readings import Connection, Reading, TagSpec, now

log = logging.getLogger("batchline.gateway")

# How stale the judge's list of running steps may be when a reading is judged: a step started since
# is judged from its first readings, not only from the next status round (seconds later).
REFRESH_SECONDS = 1.0


class LiveJudging:
    def __init__(self, configuration: Sequence[Connection], judging: Judging | None = None) -> None:
        self.judging = judging or Judging()
        # By unit and tag: an adapter's Source.endpoint may name more than its connection (a device).
        self.tags: dict[tuple[str, str], TagSpec] = {
            (t.unit, t.tag): t for c in configuration for t in c.tags if t.name
        }
        self._refreshed_at: float | None = None

    def _refresh(self) -> None:
        self.judging.refresh()
        self._refreshed_at = time.monotonic()

    def stored(self, readings: Sequence[Reading]) -> None:
        """Judge a stored batch, in the order the readings came (the gateway's database thread)."""
        # The steps running now (one cheap query a second at most); silence is asked at the rounds,
        # after these readings count.
        if self._refreshed_at is None or time.monotonic() - self._refreshed_at >= REFRESH_SECONDS:
            self._refresh()
        for reading in readings:
            spec = self.tags.get((reading.source.unit, reading.source.tag))
            if spec is None:
                continue
            try:
                self.judging.reading(reading, spec.name, spec.unit_of_measure or reading.unit_of_measure)
            except Exception:  # one reading the judge cannot take must not keep the others from it
                log.exception("%s %s: reading not judged", reading.source.unit, reading.source.tag)

    def round(self) -> None:
        """Which steps run now, and which signals went silent."""
        self._refresh()
        self.judging.silence(now())
