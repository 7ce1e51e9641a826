"""``batchline check --deploy``: warn when a security alert would reach no person (21 CFR 11.300(d))."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError


@register(Tags.security, deploy=True)
def security_alerts_reach_a_person(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Lockout and other security alerts are always shown in the application and logged; are they sent?"""
    from .alerts import alert_addresses, recipients

    problems: list[Warning] = []
    try:
        people = recipients()
        addresses = alert_addresses()
    except DatabaseError:  # not migrated yet: nothing to say about people
        return problems
    if not people:
        problems.append(
            Warning(
                "No active security administrator or auditor: a lockout alert is shown in the application "
                "to nobody.",
                hint="Give at least one person the administrator or auditor role.",
                id="batchline.W101",
            )
        )
    if not settings.BATCHLINE_MAIL_RELAY:
        problems.append(
            Warning(
                "No mail relay is configured: a lockout alert reaches a person only when a security "
                "administrator or auditor next opens Batchline, not at once; credentials go through "
                "enrolment codes at a station.",
                hint="Set BATCHLINE_EMAIL_HOST (and BATCHLINE_EMAIL_PORT) to the plant's mail relay.",
                id="batchline.W102",
            )
        )
    elif not addresses:
        problems.append(
            Warning(
                "A mail relay is configured but no security administrator or auditor has an e-mail address, "
                "and BATCHLINE_SECURITY_ALERT_EMAILS is empty: no alert is mailed to anyone.",
                hint="Give the security administrators and auditors their addresses, or set "
                "BATCHLINE_SECURITY_ALERT_EMAILS.",
                id="batchline.W103",
            )
        )
    return problems
