"""The equipment gateway: process values from the machines, with their source, time and quality (issue 15).

``readings`` is the one shape every protocol adapter produces (OPC UA, MQTT with Sparkplug B or plain
JSON, Modbus TCP); the adapters are plain asyncio and know nothing of Django, so each is tested
against its real protocol without a database. What stores, judges and shows readings sits above.
"""
