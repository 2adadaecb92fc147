"""Run the simulator on its own: `python -m imageedits.simulator --port 8001`.

Every option can also come from the environment (SIMULATOR_HOST, SIMULATOR_PORT, ...), so the
same command works in a Procfile or a container. Stops cleanly on Ctrl-C and SIGTERM.
"""

import argparse
import logging
import os
import signal
import threading

from imageedits.simulator.rules import ACE, OPENAI
from imageedits.simulator.server import SimulatorServer


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m imageedits.simulator",
        description="An offline images edits API that makes real pixel edits.",
    )
    parser.add_argument("--host", default=env("SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SIMULATOR_PORT", "8001")))
    parser.add_argument("--token", default=env("SIMULATOR_TOKEN", "sk-simulator"))
    parser.add_argument("--flavour", choices=(ACE, OPENAI), default=env("SIMULATOR_FLAVOUR", ACE))
    parser.add_argument(
        "--latency",
        type=float,
        default=float(env("SIMULATOR_LATENCY", "0")),
        help="seconds each edit takes",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=float(env("SIMULATOR_FAULT_RATE", "0")),
        help="chance (0..1) that a request gets a random fault",
    )
    args = parser.parse_args(argv)
    if args.flavour not in (ACE, OPENAI):  # argparse does not check defaults against choices
        parser.error(f"SIMULATOR_FLAVOUR must be {ACE} or {OPENAI}, not {args.flavour!r}")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # our own line per request is enough
    sim = SimulatorServer(
        host=args.host,
        port=args.port,
        token=args.token,
        flavour=args.flavour,
        latency=args.latency,
        fault_rate=args.fault_rate,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim.start()
    print(
        f"Images edits simulator ({args.flavour}) listening on {sim.url} "
        f"(latency {args.latency:g} s, fault rate {args.fault_rate:g}; "
        f"sample images at {sim.url}/samples)",
        flush=True,
    )
    # Wake now and then so the signal handlers get to run on every platform.
    while not stop.wait(0.5):
        pass
    sim.stop()
    print("Simulator stopped.", flush=True)


if __name__ == "__main__":
    main()
