"""The execution screen under load, beside a trivial view, both served by gunicorn with 2 workers.

    ./dev bench screen [--databases sqlite,postgresql] [--seconds 5] [--connections 8]

The trivial view is ``/healthz`` (no database); the screen is the demo batch
``PCM-0001`` (30 steps) as the logged-in operator sees it. Load comes from wrk
on the same machine, so compare the ratio, not the absolutes.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from typing import Any

from bench.audit_bench import RESULTS, ROOT, database_url

PORT = 8791


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


def run(kind: str, seconds: float, connections: int) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": database_url(kind), "BATCHLINE_HOME": str(RESULTS / "home")}
    subprocess.run(
        [sys.executable, "-m", "batchline.cli", "demo", "--no-serve"],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
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
        cookie = login("operator", "batchline-demo")
        return {
            "trivial": wrk("/healthz", seconds, connections),
            "screen": wrk("/batches/PCM-0001/", seconds, connections, cookie),
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(
        f"\nExecution screen under load (gunicorn, 2 workers; wrk, {args.connections} connections; {os.cpu_count()} cores)\n"
    )
    for kind in args.databases.split(","):
        r = run(kind, args.seconds, args.connections)
        t, s = r["trivial"], r["screen"]
        print(
            f"[{kind}] trivial view {t['rps']:>8,.0f} req/s (p99 {t['p99_ms']:.1f} ms)   "
            f"execution screen {s['rps']:>7,.0f} req/s (p99 {s['p99_ms']:.1f} ms, non-2xx {s['errors']})   "
            f"{s['rps'] / t['rps']:.0%} of the trivial view"
        )


if __name__ == "__main__":
    main()
