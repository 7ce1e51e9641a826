"""The demo's ERP, LIMS and plant, started beside the web server, each a process of its own.

``batchline demo`` calls :func:`start_erp` before it serves. It makes the sandbox ERP's webhook the
installation's ``erp`` outbox destination (for this process, whose server and commits deliver at
once, and through the environment for the worker it starts next), starts ``batchline erp listen``
on ``HOME/erp`` as the ERP interface's account, the sandbox ERP's receiver, and then the sandbox
ERP's one production order, which arrives through the folder like any ERP's. Nothing here is
in-process: what the demo shows crossed a real folder and a real HTTP connection.

:func:`start_lims` does the same for the laboratory: the sandbox LIMS's webhook becomes the
``lims`` destination, the LIMS's machine account gets a token the way an installation issues one
(``accounts.services.interface_token_issue``, into a file only its owner reads), and the sandbox
LIMS answers each sample request by posting its result to the server's JSON API.

:func:`start_gateway` starts the plant simulator's OPC UA server and ``batchline gateway``, which
reads it as the demo's configuration says (``gateway.demo``), stores what it reads and judges the
dryer's values while the demo batch's drying step runs.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from batchline.accounts.models import User
from batchline.accounts.services import interface_token_issue, token_of
from batchline.audit.services import Actor
from batchline.outbox import destinations

ERP_USER = "erp-sap"
LIMS_USER = "lims-labware"
ORDER = "4711"
ORDER_BATCH = "PCM-0002"
# The demo recipe's charges at its nominal 100,000 tablets (recipes/demo/paracetamol-500.yaml).
ORDER_BOM = (
    "PCM-API=50:kg",
    "PVP-K30=1.5:kg",
    "PW=12:kg",
    "STARCH=6:kg",
    "SSG=1.8:kg",
    "SILICA=0.2:kg",
    "MGST=0.5:kg",
    "DRUM-60=4:piece",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_erp() -> tuple[list[subprocess.Popen[bytes]], str]:
    """The ERP's processes (to stop with the demo) and a sentence for the console."""
    home = Path(settings.HOME) / "erp"
    port = _free_port()
    os.environ["BATCHLINE_OUTBOX_ERP"] = f"http://127.0.0.1:{port}/b2mml"
    os.environ.setdefault("BATCHLINE_OUTBOX_ERP_SECRET", secrets.token_hex(16))
    settings.OUTBOX_DESTINATIONS = destinations.from_environment(os.environ)
    python = [sys.executable, "-m"]
    client = [*python, "batchline.sandbox.erp_client"]
    order = [
        "--order",
        ORDER,
        "--bodid",
        f"DEMO-ORDER-{ORDER}",
        "--batch",
        ORDER_BATCH,
        "--product",
        "PCM500",
    ]
    processes = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
            [*python, "batchline.cli", "erp", "listen", "--user", ERP_USER, "--folder", str(home)]
        ),
        subprocess.Popen(  # noqa: S603
            [*client, "listen", "--port", str(port), "--keep", str(home / "received")]
        ),
    ]
    # The order waits for the listener's answer, so it runs beside the server rather than before it.
    processes.append(
        subprocess.Popen(  # noqa: S603
            [*client, "order", "--folder", str(home), *order, "--quantity", "100000", "--bom", *ORDER_BOM]
        )
    )
    words = (
        f"  ERP: a sandbox ERP sends order {ORDER} through the watched folder {home}/in (batchline erp listen,\n"
        f"  as {ERP_USER}); Batchline creates batch {ORDER_BATCH}, waiting for a supervisor's release. Each step the\n"
        f"  ERP needs goes back as B2MML to the sandbox ERP on 127.0.0.1:{port} (kept in {home}/received).\n"
        "  Messages in: Master data → ERP messages; messages out: Configuration → Outbox."
    )
    return processes, words


def _lims_token(path: Path) -> None:
    """The LIMS account's token in ``path``: the one there while it still works, else a new one."""
    if path.exists():
        if token_of(path.read_text().strip()) is not None:
            return
        path.unlink()  # expired or revoked: the demo issues the next, as an administrator would
    admin = User.objects.get(username="admin")
    _, raw = interface_token_issue(
        actor=Actor.of(admin, via="cli"),
        user=User.objects.get(username=LIMS_USER),
        name="LabWare LIMS (sandbox)",
        reason="demo data: the sandbox LIMS's token",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(raw + "\n")


def start_lims(server_url: str) -> tuple[list[subprocess.Popen[bytes]], str]:
    """The LIMS's process (to stop with the demo) and a sentence for the console."""
    home = Path(settings.HOME) / "lims"
    token = home / "token"
    _lims_token(token)
    port = _free_port()
    os.environ["BATCHLINE_OUTBOX_LIMS"] = f"http://127.0.0.1:{port}/sample-requests"
    os.environ.setdefault("BATCHLINE_OUTBOX_LIMS_SECRET", secrets.token_hex(16))
    settings.OUTBOX_DESTINATIONS = destinations.from_environment(os.environ)
    where = ["--port", str(port), "--batchline", server_url, "--token-file", str(token)]
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [
            sys.executable,
            "-m",
            "batchline.sandbox.lims_client",
            "listen",
            *where,
            "--keep",
            str(home / "received"),
        ]
    )
    words = (
        f"  LIMS: a sandbox LIMS on 127.0.0.1:{port} receives each sample request (Batch PCM-0001's blend\n"
        f"  uniformity samples) and posts its result to {server_url}api/v1/lims/results as {LIMS_USER}, with\n"
        f"  the token in {token}; the blend sampling step waits for all ten, then the operator signs it."
    )
    return [process], words


def start_gateway(port: int) -> tuple[list[subprocess.Popen[bytes]], str]:
    """The plant simulator and the gateway (to stop with the demo), and a sentence for the console."""
    python = [sys.executable, "-m"]
    processes = [
        subprocess.Popen([*python, "batchline.gateway.opcua_sim", "--port", str(port)]),  # noqa: S603
        subprocess.Popen([*python, "batchline.cli", "gateway", "--name", "demo-gateway"]),  # noqa: S603
    ]
    words = (
        f"  Plant: an OPC UA simulator of the granulator and the fluid-bed dryer on 127.0.0.1:{port}, read by\n"
        "  'batchline gateway' (demo-gateway); the drying step of PCM-0001 judges the dryer's inlet air and\n"
        "  product temperature while it runs. Configuration → Equipment gateway shows what it reads."
    )
    return processes, words
