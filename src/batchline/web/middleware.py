"""Requests that no field of a GMP record can hold are refused at the door; every request shows one zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils import timezone

_MESSAGE = "The request contains a NUL character, which no record can hold. Nothing was changed."


class RejectNulMiddleware:
    """PostgreSQL cannot store NUL in text; without this, such input would end in a server error.

    Query strings, form fields and JSON bodies are checked (in JSON, NUL is written ``\\u0000``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            has_nul = self._has_nul(request)
        except RequestDataTooBig:
            # Said in words, before any of it is parsed (a recipe file has its own, smaller limit).
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1048576
            message = f"The request is larger than {limit} MB and was not read. Nothing was changed."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message, "code": "TOO_LARGE"}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        if has_nul:
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": _MESSAGE, "code": "NUL_CHARACTER"}, status=400)
            return HttpResponseBadRequest(_MESSAGE)
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if "\x00" in request.path or any("\x00" in v for vs in request.GET.lists() for v in [vs[0], *vs[1]]):
            return True
        if request.method in ("POST", "PUT", "PATCH"):
            content_type = request.content_type or ""
            if content_type.startswith("application/json"):
                body = request.body
                return b"\\u0000" in body or b"\x00" in body
            if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                return any("\x00" in v for vs in request.POST.lists() for v in [vs[0], *vs[1]])
        return False


class SiteZone(dt.tzinfo):
    """The site's zone, read from the database the first time this request shows a time.

    A request that shows no time (most of the API) costs no statement for it.
    """

    def __init__(self) -> None:
        self._zone: dt.tzinfo | None = None

    def zone(self) -> dt.tzinfo:
        if self._zone is None:
            from batchline.equipment.selectors import display_zone

            self._zone = display_zone()
        return self._zone

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
        return self.zone().utcoffset(when)

    def dst(self, when: dt.datetime | None) -> dt.timedelta | None:
        return self.zone().dst(when)

    def tzname(self, when: dt.datetime | None) -> str | None:
        return self.zone().tzname(when)

    def fromutc(self, when: dt.datetime) -> dt.datetime:
        zone = self.zone()
        return zone.fromutc(when.replace(tzinfo=zone)).replace(tzinfo=self)

    def __str__(self) -> str:
        return str(self.zone())


class DisplayZoneMiddleware:
    """Every time a request shows is in the site's zone (``equipment.selectors.display_zone``).

    Storage stays UTC; templates, signature manifestations and messages read the
    zone activated here, so one page never mixes two zones.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with timezone.override(SiteZone()):
            return self.get_response(request)
