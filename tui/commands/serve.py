"""`whatif serve`: the explorer in a browser, for colleagues without a terminal (see tui/serve.py)."""

from __future__ import annotations


def add(sub) -> None:
    s = sub.add_parser(
        "serve",
        help="serve the explorer to web browsers (textual-serve)",
        description="Serve the explorer over HTTP: each visitor gets their own explorer session. Listens on "
        "localhost only unless --host says otherwise (there is no login: choose who can reach it).",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers use to reach this server, when it is not http://HOST:PORT (a proxy, 0.0.0.0)",
    )
    s.add_argument(
        "scenario", nargs="?", metavar="SCENARIO", help="what each session opens on (default: the default preset)"
    )


def run(args) -> int:
    from ..serve import serve

    return serve(args.host, args.port, args.scenario, args.public_url)
