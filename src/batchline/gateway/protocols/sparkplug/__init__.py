"""MQTT with Sparkplug B 3.0: the gateway's host application (``host``), its session logic
(``session``) and wire format (``codec``) over the vendored Tahu proto (README.md)."""

from batchline.gateway.protocols.sparkplug.host import SparkplugHost

__all__ = ["SparkplugHost"]
