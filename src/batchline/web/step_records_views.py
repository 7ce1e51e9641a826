"""The execution screen's part for sampling, output and labelling steps: their panel's data, their
actions (posted with htmx, answered with the execution panel), and their label prints.

Thin like the rest of the screen: parse, check the permission, call one service in
``execution.recording``, render. A refusal comes back as the panel with the reasons in words
(status 422), nothing written but the refusal's own record.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor
from batchline.execution import recording
from batchline.reports import trend
from batchline.reports.sections import why_none
from batchline.rules.verdict import Refused

from .access import current_user, require
from .execution_views import _batch, _panel, label_printed

ACTIONS = ("sample", "produce", "issue", "reconcile", "examine")


@login_required
@require_POST
def record_action(request: HttpRequest, number: str, key: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("Unknown action")
    user = current_user(request)
    require(user, "execution.execute_batch")
    batch = _batch(number)
    actor = Actor.of(user, via="web")
    post = request.POST
    common: dict[str, Any] = {"actor": actor, "user": user, "batch": batch, "step_key": key}
    try:
        if action == "sample":
            recording.step_sample(
                **common,
                source=post.get("source", "")[:200],
                quantity=post.get("quantity", "")[:40],
                position=post.get("position", "")[:200],
            )
        elif action == "produce":
            recording.step_produce(**common, quantity=post.get("quantity", "")[:40])
        elif action == "issue":
            recording.labels_issue(**common, quantity=post.get("issued", "")[:20])
        elif action == "reconcile":
            recording.labels_reconcile(
                **common,
                applied=post.get("applied", "")[:20],
                destroyed=post.get("destroyed", "")[:20],
                returned=post.get("returned", "")[:20],
            )
        else:
            step = batch.steps.filter(key=key).first()
            items = (step.spec.get("labelling") or {}).get("examination", []) if step else []
            answers = {"pass": True, "fail": False}
            recording.labels_examine(
                **common,
                results=[answers.get(post.get(f"item_{n}", "")) for n in range(len(items))],
                units=post.get("units", "")[:20],
                comment=post.get("comment", "")[:2000],
            )
    except Refused as refused:
        return _panel(
            request, number, selected=key, refusal=[r.message for r in refused.verdict.reasons], status=422
        )
    return _panel(request, number, selected=key)


@login_required
@require_POST
def sample_label(request: HttpRequest, number: str, code: str) -> HttpResponse:
    """A sample's label, printed at the step and logged (a reprint needs a reason)."""
    return label_printed(request, number, code, recording.sample_label_print)


@login_required
@require_POST
def output_label(request: HttpRequest, number: str, code: str) -> HttpResponse:
    """The label of a container of this batch's output, printed at the step and logged."""
    return label_printed(request, number, code, recording.output_label_print)


def _with_charts(section: dict[str, Any]) -> dict[str, Any]:
    """A step's process values with each frozen trend drawn: the band of its values and its limits."""
    limits = {m["name"]: m.get("limits", {}) for m in section["monitors"]}
    charts = []
    for t in section.get("trends", []):
        drawn = trend.chart(t, limits.get(t["name"], {}), 600, 140)
        charts.append(
            {
                "trend": t,
                "chart": drawn,
                "points": " ".join(f"{x},{y}" for x, y in drawn.band) if drawn else "",
            }
        )
    return {**section, "charts": charts}


def record_sections(content: dict[str, Any]) -> dict[str, Any]:
    """The record page's sampling, output and labeling sections, and why each is empty."""
    return {
        "samples": content["samples"],
        "output": content["output"],
        "labelling": content["labelling"],
        "process_values": [_with_charts(p) for p in content.get("process_values", [])],
        "why": {name: why_none(content, name) for name in ("samples", "output", "labelling")},
    }
