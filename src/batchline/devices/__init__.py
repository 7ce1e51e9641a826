"""Devices reached through their own protocols, each behind a small adapter with a simulator.

Plain Python and asyncio, no Django: this package runs in a device process
as well as under a service (DESIGN.md "Shape of the code"; docs/devices.md).
"""

from .mtsics import (
    Identity,
    Reading,
    ScaleDisconnected,
    ScaleError,
    ScaleNoAnswer,
    ScaleNotReady,
    ScaleOverload,
    ScaleProtocolError,
    ScaleRefusal,
    ScaleTimeout,
    ScaleUnderload,
    ScaleWrongDevice,
)
from .scale import AsyncMtSicsScale, MtSicsScale

__all__ = [
    "AsyncMtSicsScale",
    "Identity",
    "MtSicsScale",
    "Reading",
    "ScaleDisconnected",
    "ScaleError",
    "ScaleNoAnswer",
    "ScaleNotReady",
    "ScaleOverload",
    "ScaleProtocolError",
    "ScaleRefusal",
    "ScaleTimeout",
    "ScaleUnderload",
    "ScaleWrongDevice",
]
