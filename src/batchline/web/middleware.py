"""Input that no field of a GMP record should hold is refused at the door, in words, before any view runs.

One place for every form of the pages and every body of the API, so that an
endpoint added later is covered without doing anything: a NUL (PostgreSQL
cannot store it), a control character in text a person entered (a
terminal escape, a bell, a form feed: invisible on the screen, yet recorded
and exported), text that is no text (a lone surrogate in JSON), a field of
more than :data:`MAX_FIELD` characters, a JSON NaN or Infinity (no JSON,
though Python's reader takes them), and a request larger than the upload
limit. Tab, line feed and carriage return are text (a multi-line comment).

A scan field is the exception: a keyboard-wedge scanner types the GS1 group
separator (ASCII 29) that every GS1 DataMatrix carries between its
variable-length fields, and ``labels/scan.py`` needs it to split them. The
scan fields are named in :data:`SCAN_FIELDS` by route (and any field named
``scan`` is one); there GS is kept and every other control character is
still refused. The recipe file fields (:data:`DOCUMENT_FIELDS`) have their
own size limit, checked with the file's other limits (``recipes/document.py``).

Every request also shows one time zone, the site's (:class:`DisplayZoneMiddleware`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.utils import timezone

from batchline.audit.services import ReasonRequired
from batchline.rules.verdict import Refused

_NUL = "The request contains a NUL character, which no record can hold. Nothing was changed."

# The longest text a person enters in one field (a deviation's investigation); longer is no entry.
MAX_FIELD = 20_000
GS = "\x1d"
# C0 controls but tab, line feed and carriage return; DEL; the C1 controls.
_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

# Route → the fields a barcode scanner types into (GS kept there).
SCAN_FIELDS: dict[str, frozenset[str]] = {
    "batches/<str:number>/scan/": frozenset({"code"}),
    "batches/<str:number>/steps/<str:key>/<str:action>/": frozenset({"source"}),  # the booth's source
    "api/v1/batches/<number>/steps/<key>/scan": frozenset({"scan"}),
    "api/v1/batches/<number>/steps/<key>/dispense": frozenset({"source"}),
    # a sample's container (its label) or unit (its tag) is scanned
    "batches/<str:number>/steps/<str:key>/record/<str:action>/": frozenset({"source"}),
    "api/v1/batches/<number>/steps/<key>/samples": frozenset({"source"}),
}
# Route → the fields that hold a whole recipe file (up to its own limit, 4 MB).
DOCUMENT_FIELDS: dict[str, frozenset[str]] = {
    "recipes/import/": frozenset({"text"}),
    "recipes/<id:pk>/edit/": frozenset({"text"}),
    "api/v1/recipes/import": frozenset({"text"}),
}


class Refusal(Exception):
    """Why the request is refused at the door, in words."""


def _route(request: HttpRequest) -> str:
    try:
        return str(resolve(request.path_info).route)
    except Resolver404:
        return ""


class RejectNulMiddleware:
    """Refuses, in words and writing nothing, input that no record should hold (module docstring).

    Query strings are checked for NUL only (they are read, never recorded); form
    fields and JSON bodies for everything.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path.startswith("/api/")
        try:
            problem = self._problem(request)
        except MultiPartParserError:
            problem = ("UNREADABLE_INPUT", "The form could not be read. Nothing was changed.")
        except RequestDataTooBig:
            # Said in words, before any of it is parsed (a recipe file has its own, smaller limit).
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1048576
            message = f"The request is larger than {limit} MB and was not read. Nothing was changed."
            if api:
                return JsonResponse({"detail": message, "code": "TOO_LARGE"}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        if problem is None:
            return self.get_response(request)
        code, message = problem
        if api:
            return JsonResponse({"detail": message, "code": code}, status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A refusal no page caught (a value too long for its field, from ``audit.services``) is a 422
        in words, never a server error; the pages that know the refusal show it on their own form."""
        if request.path.startswith("/api/") or not isinstance(exception, Refused | ReasonRequired):
            return None
        words = str(exception) or "The action was refused."
        return HttpResponse(
            f"{words} Nothing was changed.", status=422, content_type="text/plain; charset=utf-8"
        )

    def _problem(self, request: HttpRequest) -> tuple[str, str] | None:
        if "\x00" in request.path or any("\x00" in v for vs in request.GET.lists() for v in [vs[0], *vs[1]]):
            return "NUL_CHARACTER", _NUL
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        content_type = request.content_type or ""
        if content_type.startswith("application/json"):
            body = request.body
            if b"\\u0000" in body or b"\x00" in body:
                return "NUL_CHARACTER", _NUL
            fields = _json_fields(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields = ((name, v) for name, values in request.POST.lists() for v in [name, *values])
        else:
            return None
        route = _route(request)
        scans, documents = SCAN_FIELDS.get(route, frozenset()), DOCUMENT_FIELDS.get(route, frozenset())
        try:
            for name, value in fields:
                if "\x00" in value:
                    return "NUL_CHARACTER", _NUL
                _check(name, value, scan=name in scans or name == "scan", document=name in documents)
        except Refusal as refusal:
            return "UNREADABLE_INPUT", str(refusal)
        return None


def _check(name: str, value: str, *, scan: bool, document: bool) -> None:
    # The field's name as it may be shown back: what is no printable text (a control character, a
    # lone surrogate that no response could encode) as a replacement character.
    shown = "".join(c if c.isprintable() and not _SURROGATE.match(c) else "\ufffd" for c in name[:40])
    shown += "…" if len(name) > 40 else ""
    if len(value) > MAX_FIELD and not document:
        raise Refusal(
            f"The field “{shown}” is {len(value):,} characters long: at most {MAX_FIELD:,} are accepted "
            "in one field. Nothing was changed."
        )
    if _SURROGATE.search(value):
        raise Refusal(f"The field “{shown}” contains characters that are not text. Nothing was changed.")
    if "password" in name:
        return  # a secret is checked by authentication and never recorded as text
    for found in _CONTROL.finditer(value):
        if scan and found.group() == GS:
            continue  # the GS1 group separator a scanner types between fields
        raise Refusal(
            f"The field “{shown}” contains the control character U+{ord(found.group()):04X}, which is not "
            "text a person enters. Type or scan it again. Nothing was changed."
        )


def _json_fields(body: bytes) -> Iterator[tuple[str, str]]:
    """Every string of a JSON body (names too), with where it is ("values.w1"); refuses NaN and Infinity."""

    def constant(name: str) -> Any:
        raise Refusal(
            f"{name} is not a number in JSON: send a number, or the text as typed. Nothing was changed."
        )

    try:
        data = json.loads(body, parse_constant=constant)
    except Refusal:
        raise
    except RecursionError:
        raise Refusal("The JSON body is nested too deeply to be read. Nothing was changed.") from None
    except ValueError:
        return  # not JSON at all: the API answers that itself
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where or "body", item
        elif isinstance(item, dict):
            for key, value in item.items():
                path = f"{where}.{key}" if where else str(key)
                yield path, str(key)
                stack.append((path, value))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", value) for i, value in enumerate(item))


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
