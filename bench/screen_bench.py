"""The execution screen under load, beside a trivial view, both served by gunicorn with 2 workers.

    ./dev bench screen [--databases sqlite,postgresql] [--seconds 5] [--connections 8] [--rounds 3]

The trivial view is ``/healthz`` (no database); the screen is the demo batch
``PCM-0001`` (30 steps) as the logged-in operator sees it. Load comes from wrk
on the same machine, so compare the ratio, not the absolutes; the two are
measured in alternation (``--rounds``) so that the machine's noise hits both,
and the median ratio is reported. Then the screen is measured once more with
its cache switched off (``BATCHLINE_SCREEN_CACHE=0``), where every request
reads and renders the batch: what a screen costs right after a change.

``--cpu 3000`` instead sends the same requests straight into the WSGI
application in one process and reports CPU time per request (and, on
PostgreSQL, the database backend's): steadier than requests per second on a
shared machine, and what the ratio is made of.

``BATCHLINE_BENCH_PORT`` and ``BATCHLINE_BENCH_PG_DB`` move the server's port
and the PostgreSQL bench database, for two runs on one machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from bench.audit_bench import RESULTS, ROOT, database_url

# Overridable so that two runs on one machine do not clash.
PORT = int(os.environ.get("BATCHLINE_BENCH_PORT", "8791"))


def login(username: str, password: str) -> str:
    """A real login through the form: returns the Cookie header for wrk."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    conn.request("GET", "/login/")
    response = conn.getresponse()
    page = response.read().decode()
    cookies = {
        c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0]
        for c in response.headers.get_all("Set-Cookie") or []
    }
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    conn.request(
        "POST",
        "/login/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookies['csrftoken']}",
            "Referer": f"http://127.0.0.1:{PORT}/login/",
        },
    )
    response = conn.getresponse()
    response.read()
    for c in response.headers.get_all("Set-Cookie") or []:
        name, value = c.split("=", 1)
        cookies[name] = value.split(";", 1)[0]
    if "sessionid" not in cookies:
        raise SystemExit("login failed")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def wrk(path: str, seconds: float, connections: int, cookie: str = "") -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{PORT}{path}"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    factor = {"us": 0.001, "ms": 1, "s": 1000}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * factor[p99.group(2)] if p99 else float("nan"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[None]:
    """gunicorn with 2 workers on the demo, for as long as the block runs."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "batchline.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        yield
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def run(kind: str, seconds: float, connections: int, rounds: int, uncached: bool) -> dict[str, Any]:
    """``rounds`` alternations of the trivial view and the screen (the machine's noise hits both);
    with ``uncached``, then the screen again with its cache switched off, so every request renders."""
    env = {**os.environ, "DATABASE_URL": database_url(kind), "BATCHLINE_HOME": str(RESULTS / "home")}
    subprocess.run(
        [sys.executable, "-m", "batchline.cli", "demo", "--no-serve"],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    result: dict[str, Any] = {"rounds": []}
    with serving(env):
        cookie = login("operator", "batchline-demo")
        for _ in range(rounds):
            result["rounds"].append(
                {
                    "trivial": wrk("/healthz", seconds, connections),
                    "screen": wrk("/batches/PCM-0001/", seconds, connections, cookie),
                }
            )
    if uncached:
        with serving({**env, "BATCHLINE_SCREEN_CACHE": "0"}):
            cookie = login("operator", "batchline-demo")
            result["uncached"] = {
                "trivial": wrk("/healthz", seconds, connections),
                "screen": wrk("/batches/PCM-0001/", seconds, connections, cookie),
            }
    return result


def line(label: str, t: dict[str, float], s: dict[str, float]) -> str:
    return (
        f"{label:<28} trivial view {t['rps']:>8,.0f} req/s (p99 {t['p99_ms']:.1f} ms)   "
        f"execution screen {s['rps']:>7,.0f} req/s (p99 {s['p99_ms']:.1f} ms, non-2xx {s['errors']})   "
        f"{s['rps'] / t['rps']:.0%} of the trivial view"
    )


# --- --cpu: the same requests in one process, CPU time per request ----------------------


def cpu(kind: str, requests: int) -> dict[str, float]:
    env = {**os.environ, "DATABASE_URL": database_url(kind), "BATCHLINE_HOME": str(RESULTS / "home")}
    subprocess.run(
        [sys.executable, "-m", "batchline.cli", "demo", "--no-serve"],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    env.setdefault("BATCHLINE_DB_CONN_MAX_AGE", "3600")  # one database backend throughout, to read its CPU
    out = subprocess.run(
        [sys.executable, "-m", "bench.screen_bench", "--cpu-child", str(requests)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def cpu_child(requests: int) -> None:
    """Requests straight into the WSGI application (no HTTP, no wrk): CPU per request, ours and PostgreSQL's."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import io

    import django

    django.setup()
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client

    from batchline.wsgi import application

    client = Client()
    client.post("/login/", {"username": "operator", "password": "batchline-demo"})
    client.get("/batches/PCM-0001/")
    cookie = "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())

    def call(path: str, cookie: str) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_COOKIE": cookie,
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            assert status.startswith("200"), status

        response = application(environ, start_response)
        b"".join(response)
        response.close()  # type: ignore[attr-defined]

    def database_cpu() -> tuple[int, float]:
        """The PostgreSQL backend serving this process, and the CPU time it has used (same machine)."""
        if connection.vendor != "postgresql":
            return 0, 0.0
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
        return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def measure(path: str, cookie: str, before: Any = None) -> dict[str, float]:
        for _ in range(min(200, requests)):
            call(path, cookie)
        (pid0, db0), cpu0, wall0 = database_cpu(), time.process_time(), time.perf_counter()
        for _ in range(requests):
            if before:
                before()
            call(path, cookie)
        n = requests / 1e6
        wall, cpu = (time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n
        pid1, db1 = database_cpu()
        return {
            "wall_us": wall,
            "cpu_us": cpu,
            "database_cpu_us": (db1 - db0) / n if pid1 == pid0 else float("nan"),
        }

    print(
        json.dumps(
            {
                "trivial": measure("/healthz", ""),
                "screen": measure("/batches/PCM-0001/", cookie),
                "screen, every request a cache miss": measure(
                    "/batches/PCM-0001/", cookie, before=caches["screens"].clear
                ),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of trivial view and screen")
    parser.add_argument(
        "--no-uncached", action="store_true", help="skip the run with the screen cache switched off"
    )
    parser.add_argument(
        "--cpu",
        type=int,
        metavar="REQUESTS",
        help="instead: CPU time per request, in one process without HTTP (steadier on a busy machine)",
    )
    parser.add_argument("--cpu-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu_child:
        cpu_child(args.cpu_child)
        return
    if args.cpu:
        print(f"\nCPU time per request, in process, no HTTP ({args.cpu} requests each)\n")
        for kind in args.databases.split(","):
            for name, m in cpu(kind, args.cpu).items():
                database = f" + database {m['database_cpu_us']:,.0f} us" if kind == "postgresql" else ""
                print(
                    f"[{kind}] {name:<36} {m['cpu_us']:>7,.0f} us{database}   (wall {m['wall_us']:,.0f} us)"
                )
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(
        f"\nExecution screen under load (gunicorn, 2 workers; wrk, {args.connections} connections; {os.cpu_count()} cores)\n"
    )
    results = {}
    for kind in args.databases.split(","):
        r = results[kind] = run(kind, args.seconds, args.connections, args.rounds, not args.no_uncached)
        ratios = []
        for i, rnd in enumerate(r["rounds"], 1):
            print(line(f"[{kind}] round {i}", rnd["trivial"], rnd["screen"]))
            ratios.append(rnd["screen"]["rps"] / rnd["trivial"]["rps"])
        print(
            f"[{kind}] screen / trivial view: median {statistics.median(ratios):.0%}"
            f" (rounds {min(ratios):.0%} to {max(ratios):.0%})"
        )
        if "uncached" in r:
            print(line(f"[{kind}] cache off", r["uncached"]["trivial"], r["uncached"]["screen"]))
    (RESULTS / "screen.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
