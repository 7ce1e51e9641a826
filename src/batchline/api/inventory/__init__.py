"""The inventory over the API (issue 14): lots by material and lot number, containers by their
label's code, goods receipts, signed dispositions, returns and waste, label prints, the ledger.

The services, permissions, audit entries and signatures of the Materials pages and of a batch's
remainders panel; a refusal answers 4xx with the service's sentence and writes nothing but what
GMP records of a refused attempt (a failed signature, an entry from an unregistered station).
docs/integration.md, "Inventory API", describes each endpoint for a client's author.
"""

from __future__ import annotations

from ninja import Router

from . import containers, ledger, lots

router = Router(tags=["inventory"])
router.add_router("", lots.router)
router.add_router("", containers.router)
router.add_router("", ledger.router)
