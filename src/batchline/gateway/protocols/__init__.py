"""Protocol adapters of the equipment gateway: each turns one protocol's messages into readings (batchline.gateway.readings)."""
