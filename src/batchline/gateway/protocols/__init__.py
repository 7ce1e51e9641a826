"""Protocol adapters of the equipment gateway: plain asyncio, no Django."""
