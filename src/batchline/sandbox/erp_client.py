"""A small ERP for the demo and the tests: a real process that speaks Batchline's real ERP doors.

    python -m batchline.sandbox.erp_client order --folder var/erp --order 4711 --batch PCM-0002 \
        --quantity 100000 --product PCM500 --bom PCM-API=50:kg ...
    python -m batchline.sandbox.erp_client listen --port 8141 --secret S --keep var/erp/received

``order`` writes a B2MML V0700 ProcessOperationsSchedule into the watched folder the way an ERP
does (under another name, then renamed) and waits for Batchline's ConfirmBOD in ``out/``.
``listen`` is the ERP's receiving end of the outbox's ``erp`` webhook: it checks each delivery's
HMAC signature, keeps each document once by its idempotency key (a redelivery is answered but not
kept twice) and prints one line per document. It imports nothing of Batchline's: it knows only
the documents and the transports, as a plant's ERP would.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

NS = "http://www.mesa.org/xml/B2MML"


def requirement(code: str, use: str, quantity: str, unit: str, ident: str, lot: str = "") -> str:
    lot_id = f"<MaterialLotID>{escape(lot)}</MaterialLotID>" if lot else ""
    return (
        f"<MaterialRequirement><ID>{ident}</ID><MaterialDefinitionID>{escape(code)}</MaterialDefinitionID>"
        f"{lot_id}<MaterialUse>{use}</MaterialUse>"
        f"<Quantity><QuantityString>{escape(quantity)}</QuantityString><DataType>decimal</DataType>"
        f"<UnitOfMeasure>{escape(unit)}</UnitOfMeasure></Quantity></MaterialRequirement>"
    )


def order_document(
    *,
    bodid: str,
    order: str,
    product: str,
    quantity: str,
    unit: str,
    batch: str,
    bom: list[tuple[str, str, str]],
) -> bytes:
    """A ProcessOperationsSchedule with one OperationsRequest: the product made and its bill of materials."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    needs = requirement(product, "Produced", quantity, unit, "OUT", lot=batch) + "".join(
        requirement(code, "Consumed", qty, u, f"{i:04d}") for i, (code, qty, u) in enumerate(bom, 1)
    )
    start = (now + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ProcessOperationsSchedule xmlns="{NS}" releaseID="7.0">'
        f"<ApplicationArea><Sender><LogicalID>SANDBOX-ERP</LogicalID></Sender>"
        f"<CreationDateTime>{now.isoformat().replace('+00:00', 'Z')}</CreationDateTime>"
        f"<BODID>{escape(bodid)}</BODID></ApplicationArea>"
        f"<DataArea><Process/><OperationsSchedule><ID>SANDBOX-{escape(order)}</ID>"
        f"<OperationsRequest><ID>{escape(order)}</ID><StartTime>{start}</StartTime>"
        "<SegmentRequirement><ID>0010</ID><ProcessSegmentID>MAKE</ProcessSegmentID>"
        "<OperationsDefinitionID>ROUTING-1</OperationsDefinitionID><OperationsSegmentID>0010</OperationsSegmentID>"
        f"{needs}</SegmentRequirement></OperationsRequest></OperationsSchedule></DataArea>"
        "</ProcessOperationsSchedule>"
    ).encode()


def send_to_folder(folder: Path, name: str, document: bytes, *, wait: float) -> bytes | None:
    """Write the document as an ERP should (never half-written under its final name); wait for the answer."""
    inbox = folder / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    partial = inbox / f"{name}.xml.partial"
    partial.write_bytes(document)
    os.replace(partial, inbox / f"{name}.xml")
    answer = folder / "out" / f"{name}.reply.xml"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if answer.exists():
            return answer.read_bytes()
        time.sleep(0.2)
    return None


def summary(document: bytes) -> str:
    """One line an ERP operator reads: the message, its BODID and what it says happened."""
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    name = etree.QName(root).localname
    bodid = root.findtext(f".//{{{NS}}}BODID") or "-"
    said = [
        root.findtext(f".//{{{NS}}}ResponseState") or root.findtext(f".//{{{NS}}}ChangeStatus/{{{NS}}}Code"),
        root.findtext(f".//{{{NS}}}ChangeStatus/{{{NS}}}Description")
        or root.findtext(f".//{{{NS}}}Description"),
    ]
    return f"{name} {bodid}: " + " — ".join(s for s in said if s)


def serve(port: int, secret: str, keep: Path) -> ThreadingHTTPServer:
    keep.mkdir(parents=True, exist_ok=True)

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if secret:
                expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Batchline-Signature", "")):
                    self.send_response(401)
                    self.end_headers()
                    return
            key = self.headers.get("Idempotency-Key") or hashlib.sha256(body).hexdigest()
            target = keep / (hashlib.sha256(key.encode()).hexdigest()[:20] + ".xml")
            if not target.exists():  # a redelivery is acknowledged, not kept twice
                target.write_bytes(body)
                print(f"ERP received {summary(body)}", flush=True)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:  # one line per document is printed above
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Receiver)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="erp_client", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("order", help="send one production order through the watched folder")
    send.add_argument("--folder", type=Path, required=True)
    send.add_argument("--order", required=True)
    send.add_argument("--batch", default="")
    send.add_argument("--product", required=True)
    send.add_argument("--quantity", required=True)
    send.add_argument("--unit", default="tablet")
    send.add_argument("--bom", nargs="*", default=[], help="CODE=QUANTITY:UNIT, one per component")
    send.add_argument("--bodid", default="")
    send.add_argument("--wait", type=float, default=60.0)
    receive = sub.add_parser("listen", help="receive the outbox's erp webhook deliveries")
    receive.add_argument("--port", type=int, required=True)
    receive.add_argument("--secret", default=os.environ.get("BATCHLINE_OUTBOX_ERP_SECRET", ""))
    receive.add_argument("--keep", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "listen":
        server = serve(args.port, args.secret, args.keep)
        print(f"sandbox ERP listening on 127.0.0.1:{args.port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
        return 0
    bom = []
    for line in args.bom:
        code, _, rest = line.partition("=")
        quantity, _, unit = rest.partition(":")
        bom.append((code, quantity, unit or "kg"))
    bodid = args.bodid or f"SANDBOX-{args.order}-{uuid.uuid4().hex[:8]}"
    document = order_document(
        bodid=bodid,
        order=args.order,
        product=args.product,
        quantity=args.quantity,
        unit=args.unit,
        batch=args.batch,
        bom=bom,
    )
    answer = send_to_folder(args.folder, bodid, document, wait=args.wait)
    if answer is None:
        print(
            f"no answer to {bodid} within {args.wait:g} s: is 'batchline erp listen' running?",
            file=sys.stderr,
        )
        return 2
    print(f"ERP sent order {args.order} ({bodid}); Batchline answered {summary(answer)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
