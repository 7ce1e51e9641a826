"""The execution screen, rendered once per state of the database and reused (docs/performance.md).

What the screen shows comes from four places, and each is handled apart:

- the batch's data (its state, steps, values, signatures, exceptions, the
  recipe, people's printed names): every key carries the audit trail's head,
  read before the data in the same statement that finds the batch
  (:func:`batchline.execution.selectors.batch_version`). Every committed GMP
  write moves the head, so a cached rendering is never older than the last
  write;
- who is looking: whether they may control the batch and execute its steps,
  their roles (a step's role decides whether its Start is offered), whether
  their next signature needs the user ID as well (a session that has signed
  once needs only the password), and for the whole page (menu, name) the
  person and the set of their permissions, read afresh on every request. All
  are in the key;
- the zone times are shown in (the site's, web/middleware.py): in the key;
- the request's CSRF token: a rendering is made with a random stand-in that
  is replaced by the request's own token on the way out;
- messages waiting for the person ("Batch created"): a page that shows one is
  never cached.

A panel that carries a refusal or a signing error is never cached, and
nothing is cached while an application transaction is open (inside one, the
head could be an entry that is later rolled back). Anything added to the
execution templates or to ``web/base.html`` that depends on more than this
must be added to the key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.core.cache import caches

import batchline
from batchline.audit.chain import in_action_transaction

CACHE_ALIAS = "screens"
T = TypeVar("T")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def panel_key(
    version: tuple[int, int],
    *,
    selected: str | None,
    can_control: bool,
    can_execute: bool,
    roles: Iterable[str],
    username_required: bool,
    zone: str,
) -> str:
    batch_id, head = version
    step = "-" if selected is None else _digest(selected)
    person = (
        f"{int(can_control)}{int(can_execute)}{int(username_required)}:{_digest(' '.join(sorted(roles)))}"
    )
    return f"panel:{batchline.__version__}:{batch_id}:{head}:{person}:{_digest(zone)}:{step}"


def page_key(panel: str, *, user_id: int, permissions: Iterable[str]) -> str:
    return f"page:{panel}:{user_id}:{_digest(' '.join(sorted(permissions)))}"


def at_head(head: int, what: str, read: Callable[[], T]) -> T:
    """``read()``, kept under the audit trail's ``head``: for what changes only with an audited
    write (a person's roles, the site's zone), so that a cached screen costs no statement for it."""
    if in_action_transaction():
        return read()
    cache = caches[CACHE_ALIAS]
    key = f"at:{batchline.__version__}:{head}:{what}"
    found = cache.get(key)
    if found is None:
        found = (read(),)
        cache.set(key, found)
    return found[0]


def cached_html(key: str | None, *, csrf_token: str, render: Callable[[str], str]) -> str:
    """The HTML filed under ``key`` (``None``: do not cache), with this request's CSRF token.

    ``render(token)`` renders it with ``token`` wherever the CSRF token goes.
    """
    if key is None or in_action_transaction():
        return render(csrf_token)
    cache = caches[CACHE_ALIAS]
    hit = cache.get(key)
    if hit is None:
        stand_in = secrets.token_hex(16)
        hit = (stand_in, render(stand_in))
        cache.set(key, hit)
    stand_in, html = hit
    return html.replace(stand_in, csrf_token)
