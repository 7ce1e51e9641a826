"""``runserver`` that also serves the simulators of the scales registered as simulated (a demo database).

Django's development server (with static files, as ``django.contrib.staticfiles``
serves them), plus, while it runs, an MT-SICS simulator for every scale the
database registers as simulated (``batchline.simulation.scales.serving``):
``batchline demo`` serves through it, and so does ``batchline runserver`` after
``batchline demo --no-serve``. Started in the process that serves (with the
autoreloader, its child, again after each reload) and stopped with it; never in
production; a port already taken is reported and the server serves without that
scale. This app comes before ``django.contrib.staticfiles`` in INSTALLED_APPS so
that this command is the one ``runserver`` finds.
"""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserver

from batchline.simulation.scales import serving


class Command(StaticfilesRunserver):
    help = (
        "Starts the development web server; on a database whose scales are registered as simulated "
        "(the demo's), their MT-SICS simulators too, stopped with it (never in production)."
    )

    def inner_run(self, *args: Any, **options: Any) -> None:
        with serving(report=lambda line: self.stdout.write(f"  {line}\n")):
            super().inner_run(*args, **options)
