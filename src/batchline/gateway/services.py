"""The gateway's configuration: endpoints and tags, under two-person change control (P11-11, A11-13).

Which tag carries which unit's which parameter, in which unit of measure, decides what the record
will say a machine measured: GMP configuration, which no administrator changes alone
(DESIGN invariant 8, docs/trust.md). So:

- a tag is created, changed (any field) or retired only by a change request that the administrator
  signs ("requested") and another person, a QA approver, approves with their signature
  (``approvals``); the approval applies it, in its own transaction, only if the tag and its endpoint
  still stand as they did when requested (kind ``gateway_tag``);
- an endpoint's address, protocol options or retirement redirect or stop every tag on it: the same,
  kind ``gateway_endpoint``;
- registering an endpoint and renaming one stay one administrator's audited change: an endpoint
  feeds nothing until an approved tag uses it, and a tag's request binds its endpoint's address.

Every function checks the person holds ``gateway.configure_gateway`` (the administrator role), checks
the values when requested and again when applied, and writes the change and its audit entry (with
its reason) in one transaction. Nothing is deleted: a retired endpoint or tag is no longer read, and
the values it produced keep their source.

A running gateway reads the configuration when it starts (``selectors.connections``); a change
takes effect at its next start.

The commands live in ``tags`` and ``endpoints`` over ``changes`` (what they share); this module names
them for their callers and defines the two request kinds the approval applies.
"""

from __future__ import annotations

from batchline.approvals.services import Kind

from .changes import (
    ENDPOINT_SUBJECT,
    TAG_SUBJECT,
    GatewayRefused,
    may_configure,
    request_withdraw,
    tag_subject,
)
from .endpoints import (
    endpoint_apply,
    endpoint_change_request,
    endpoint_create,
    endpoint_current,
    endpoint_rename,
    endpoint_retire_request,
)
from .models import CONFIGURE_PERMISSION, ENDPOINT_KIND, TAG_KIND
from .tags import tag_apply, tag_change_request, tag_create_request, tag_current, tag_retire_request

__all__ = [
    "ENDPOINT_CHANGE",
    "ENDPOINT_SUBJECT",
    "TAG_CHANGE",
    "TAG_SUBJECT",
    "GatewayRefused",
    "endpoint_change_request",
    "endpoint_create",
    "endpoint_rename",
    "endpoint_retire_request",
    "may_configure",
    "request_withdraw",
    "tag_change_request",
    "tag_create_request",
    "tag_retire_request",
    "tag_subject",
]

TAG_CHANGE = Kind(
    name=TAG_KIND,
    label="Change of a gateway tag",
    request_permission=CONFIGURE_PERMISSION,
    current=tag_current,
    apply=tag_apply,
)
ENDPOINT_CHANGE = Kind(
    name=ENDPOINT_KIND,
    label="Change of a gateway endpoint",
    request_permission=CONFIGURE_PERMISSION,
    current=endpoint_current,
    apply=endpoint_apply,
)
