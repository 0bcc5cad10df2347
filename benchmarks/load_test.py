"""Load test: start the Streamlit server on loopback and drive N concurrent simulated users over
Streamlit's own websocket protocol (the messages a browser sends), for a bounded time.

    XAI_OFFLINE=1 python benchmarks/load_test.py [--users 8] [--seconds 60] [--page cam]

Each user opens a session and asks for the CAM page of a different sample photo (through the
`?sample=` query parameter), again and again with other photos and targets, opening a new session
every `--per-session` explanations, until time is up. Reports sessions served, errors (exceptions
shown by the app, or no answer in time) and the p50/p95 latency of an explanation (request sent ->
script finished); the first explanation of each user, which waits for the server's cold start, is
reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted(p.name for p in (ROOT / "assets" / "images").iterdir())
TARGETS = ["", "281", "967", "1", "417"]  # top-1, tabby, espresso, goldfish, balloon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "XAI_OFFLINE": os.environ.get("XAI_OFFLINE", "1")}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    log = open(os.environ.get("XAI_LOADTEST_LOG", os.devnull), "w")  # the server log, for errors
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the Streamlit server did not start within 120 s")


async def one_run(ws, page: str, query: str, timeout: float) -> tuple[float, list[str]]:
    """Ask for one rerun of `page` with `query`; return (seconds to script finished, app errors)."""
    msg = BackMsg()
    msg.rerun_script.query_string = query
    msg.rerun_script.page_name = page
    t0 = time.perf_counter()
    await ws.send(msg.SerializeToString())
    errors: list[str] = []
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout=timeout)
        fwd = ForwardMsg()
        fwd.ParseFromString(raw)
        kind = fwd.WhichOneof("type")
        if kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
            element = fwd.delta.new_element
            if element.WhichOneof("type") == "exception":
                errors.append(element.exception.message)
        if kind == "script_finished":
            return time.perf_counter() - t0, errors


async def user(uid: int, port: int, page: str, until: float, per_session: int, stats: dict) -> None:
    """One simulated user: sessions of `per_session` explanations each (a new websocket, as a
    browser tab that is closed and opened again), until time is up."""
    i, first = uid, True
    while time.time() < until:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                          max_size=2**26) as ws:
                stats["sessions"] += 1
                for _ in range(per_session):
                    if time.time() >= until:
                        break
                    query = f"sample={SAMPLES[i % len(SAMPLES)]}&target={TARGETS[(i // len(SAMPLES)) % len(TARGETS)]}"
                    seconds, errors = await one_run(ws, page, query, timeout=max(5.0, until - time.time() + 60))
                    stats["cold" if first else "latencies"].append(seconds)
                    first = False
                    stats["errors"] += len(errors)
                    stats["messages"].extend(errors)
                    i += len(SAMPLES) + 1
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as err:
            stats["errors"] += 1
            stats["messages"].append(f"user {uid}: {type(err).__name__}: {err}")
            return


async def drive(users: int, seconds: float, port: int, page: str, per_session: int) -> dict:
    stats = {"sessions": 0, "errors": 0, "cold": [], "latencies": [], "messages": []}
    until = time.time() + seconds
    await asyncio.gather(*(user(u, port, page, until, per_session, stats) for u in range(users)))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--page", default="cam")
    parser.add_argument("--per-session", type=int, default=5, help="explanations per session before reconnecting")
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        stats = asyncio.run(drive(args.users, args.seconds, port, args.page, args.per_session))
    finally:
        server.terminate()
        server.wait(timeout=30)
    lat, cold = sorted(stats["latencies"]), sorted(stats["cold"])
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    print(f"{args.users} users for {args.seconds:.0f} s on page {args.page!r}: {stats['sessions']} sessions served, "
          f"{len(lat) + len(cold)} explanations, {stats['errors']} errors")
    if cold:
        print(f"first explanation of each user (the server had just started: imports, model load, all users at "
              f"once): median {statistics.median(cold):.2f} s, max {cold[-1]:.2f} s")
    print(f"latency per explanation after that: p50 {p(0.5):.2f} s, p95 {p(0.95):.2f} s, "
          f"max {lat[-1] if lat else float('nan'):.2f} s" + (f", mean {statistics.mean(lat):.2f} s" if lat else ""))
    for message in stats["messages"][:5]:
        print("  error:", message[:200])


if __name__ == "__main__":
    main()
