"""Something a waiting message may need became known: a material, a product's effective recipe.

The apps that make such things (master data, materials, recipes) announce them
by a key (``material:LAC-200``, ``recipe:PCM500``); an app above them (the ERP
inbound, whose parked messages wait for exactly these keys) listens. The lower
apps never import the listener, so the layers of DESIGN.md stay as they are.

A listener runs after the announcing transaction has committed, never inside
it: what it does (apply a parked order) is its own transaction, and its failure
must neither undo the approval that made the material nor reach the person who
gave it. A failure is logged; the worker's round tries again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger("batchline.arrivals")

_LISTENERS: list[Callable[[str], None]] = []


def listen(listener: Callable[[str], None]) -> None:
    """Call ``listener(key)`` after each committed announcement (registered once per process)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def announce(key: str) -> None:
    """``key`` is known once the current transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(_deliver, key))


def _deliver(key: str) -> None:
    for listener in list(_LISTENERS):
        try:
            listener(key)
        except Exception:  # one listener's failure must not keep the others from hearing
            log.exception("a listener failed on the arrival of %s", key)
