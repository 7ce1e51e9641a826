"""A small LIMS for the demo and the tests: a real process on Batchline's real LIMS doors.

    python -m batchline.sandbox.lims_client listen --port 8142 --batchline http://127.0.0.1:8000 \
        --token-file var/lims/token [--secret S] [--fail SAMPLE ...]

It is the receiving end of the outbox's ``lims`` webhook: it checks each sample request's HMAC
signature, answers at once, and keeps each request once by its idempotency key (a redelivery is
answered, not tested twice). Then it "tests" the sample and posts the result to Batchline's JSON
API (``/api/v1/lims/results``) with the LIMS's token, as a laboratory system does: the value
lies inside the request's own specification, a little off its middle and different for each
sample (from the sample's code, so a run is repeatable); a sample named with ``--fail`` gets a
result above the specification, for showing what an out-of-specification result does. Requests
without limits (a retain sample) are acknowledged and given no result. It imports nothing of
Batchline's: it knows only the messages, as a plant's LIMS would.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API_PATH = "/api/v1/lims/results"


def result_value(request: dict[str, Any], *, fail: bool) -> Decimal | None:
    """A value inside the request's specification (or above it when ``fail``); None without limits."""
    spec = (request.get("result") or {}).get("specification") or {}
    low = Decimal(spec["low"]) if spec.get("low") is not None else None
    high = Decimal(spec["high"]) if spec.get("high") is not None else None
    if low is None and high is None:
        return None
    if low is None:
        low = Decimal(0)
    if high is None:
        high = low * 2 if low else Decimal(1)
    span = high - low
    if fail:
        return (high + span / 10).quantize(Decimal("0.1"))
    # Between 35 % and 65 % of the range: repeatable per sample, never at a limit.
    share = Decimal(int(hashlib.sha256(request["sample"].encode()).hexdigest()[:4], 16) % 31 + 35) / 100
    return (low + span * share).quantize(Decimal("0.1"))


def result_for(request: dict[str, Any], *, fail: bool) -> dict[str, Any] | None:
    value = result_value(request, fail=fail)
    if value is None:
        return None
    return {
        "result_id": f"SBX-LIMS-{request['sample']}",
        "sample": request["sample"],
        "test": request["test"],
        "value": str(value),
        "unit": (request.get("result") or {}).get("unit", ""),
        "tested_at": dt.datetime.now(dt.UTC).isoformat(),
        "comment": "sandbox LIMS",
    }


def post_result(base: str, token: str, result: dict[str, Any], *, attempts: int = 20) -> str:
    """POST one result; retried while Batchline is not reachable or busy. Returns a line to print."""
    body = json.dumps(result).encode()
    for attempt in range(attempts):
        request = urllib.request.Request(  # noqa: S310 (the plant's own Batchline, http or https)
            base.rstrip("/") + API_PATH,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                said = json.loads(answer.read() or b"{}")
                verdict = {True: "in specification", False: "OUT OF SPECIFICATION", None: "not judged"}
                return (
                    f"LIMS result {result['result_id']}: {result['value']} {result['unit']} for "
                    f"{said.get('batch', '?')}/{said.get('step', '?')}: "
                    f"{verdict.get(said.get('in_specification'), '?')}"
                )
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:  # refused in words: retrying changes nothing
                return f"LIMS result {result['result_id']} refused ({exc.code}): {exc.read()[:500]!r}"
        except OSError:
            pass
        time.sleep(min(5.0, 0.2 * 2**attempt))
    return f"LIMS result {result['result_id']} not delivered after {attempts} attempts"


def serve(port: int, secret: str, base: str, token: str, fail: set[str], keep: Path) -> ThreadingHTTPServer:
    keep.mkdir(parents=True, exist_ok=True)
    seen_lock = threading.Lock()

    def test_and_answer(request: dict[str, Any]) -> None:
        result = result_for(request, fail=request["sample"] in fail)
        if result is None:
            print(
                f"LIMS: {request['sample']} ({request['test']}) has no limits: filed, no result", flush=True
            )
            return
        time.sleep(0.3)  # the laboratory takes a moment; the operator sees the step wait
        print(post_result(base, token, result), flush=True)

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if secret:
                expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Batchline-Signature", "")):
                    self.send_response(401)
                    self.end_headers()
                    return
            try:
                request = json.loads(body)
                if not (isinstance(request["sample"], str) and isinstance(request["test"], str)):
                    raise TypeError("a sample request names its sample and its test")
            except (ValueError, KeyError, TypeError):
                self.send_response(400)
                self.end_headers()
                return
            key = self.headers.get("Idempotency-Key") or hashlib.sha256(body).hexdigest()
            target = keep / (hashlib.sha256(key.encode()).hexdigest()[:20] + ".json")
            with seen_lock:
                new = not target.exists()
                if new:  # a redelivery is acknowledged, not tested twice
                    target.write_bytes(body)
            self.send_response(200)
            self.end_headers()
            if new:
                print(f"LIMS received sample request {request['sample']}: {request['test']}", flush=True)
                threading.Thread(target=test_and_answer, args=(request,), daemon=True).start()

        def log_message(self, *args: object) -> None:  # one line per request is printed above
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Receiver)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lims_client", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    listen = sub.add_parser("listen", help="receive sample requests and post their results")
    listen.add_argument("--port", type=int, required=True)
    listen.add_argument("--batchline", required=True, help="Batchline's address, e.g. http://127.0.0.1:8000")
    listen.add_argument("--token-file", type=Path, required=True, help="the LIMS account's API token")
    listen.add_argument("--secret", default=os.environ.get("BATCHLINE_OUTBOX_LIMS_SECRET", ""))
    listen.add_argument(
        "--keep", type=Path, help="where received requests are kept (default: beside the token)"
    )
    listen.add_argument("--fail", nargs="*", default=[], help="samples whose result is out of specification")
    args = parser.parse_args(argv)
    token = args.token_file.read_text().strip()
    keep = args.keep or args.token_file.parent / "received"
    server = serve(args.port, args.secret, args.batchline, token, set(args.fail), keep)
    print(f"sandbox LIMS listening on 127.0.0.1:{args.port}, results to {args.batchline}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
