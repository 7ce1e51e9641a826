"""Requests that no field of a GMP record can hold are refused at the door."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

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
