"""Events of the record, handed to whoever must hear of them inside the transaction that made them.

Execution, materials and quality publish what happened (``batch.started``, ``lot.released``…);
the integrations (erp, lims, quality's QMS feed) subscribe in their AppConfig.ready and write
their outbox messages. A handler runs in the publisher's transaction, so the message commits
or rolls back with the change; a handler that raises refuses the change rather than lose the
message. The publishing apps never import the integrations (tests/test_layers.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

Handler = Callable[..., None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(event: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if handler not in _handlers[event]:
            _handlers[event].append(handler)
        return handler

    return register


def publish(event: str, **data: Any) -> None:
    if not _handlers.get(event):
        return
    # A handler's outbox row must share the change's fate.
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"event {event!r} published outside a transaction")
    for handler in list(_handlers[event]):
        handler(**data)
