"""The weigh booth's control of a simulated scale (the demo's): what the operator puts on its pan.

Shown only for scales registered as simulated; a real scale is never sent a
simulator's command (``batchline.simulation.scales.place`` refuses). Not a GMP
record: it stands for a hand pouring powder onto a pan. What is recorded is the
stable reading the booth then takes from the scale, as from a real one.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from batchline.configuration import selectors as configuration
from batchline.rules.numbers import NotANumber, read
from batchline.simulation.scales import SimulatorRefused, place

from .access import require


@login_required
@require_POST
def scale_simulator_load(request: HttpRequest) -> HttpResponse:
    require(request.user, "execution.execute_batch")
    try:
        load = read(request.POST.get("load", "")[:40], configuration.notation())
    except NotANumber as exc:
        return render(request, "execution/_simulator_result.html", {"problem": f"Load: {exc}."}, status=422)
    try:
        said = place(request.POST.get("scale", "")[:40], load)
    except SimulatorRefused as refused:
        problem = " ".join(r.message for r in refused.verdict.reasons)
        return render(request, "execution/_simulator_result.html", {"problem": problem}, status=422)
    return render(request, "execution/_simulator_result.html", {"said": said})
