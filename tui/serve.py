"""`whatif serve`: the explorer in a web browser (textual-serve), one explorer process per visitor.

The server listens on 127.0.0.1 unless told otherwise: it has no login, so who can reach the port can use
it. Each browser session starts `python -m whatif.tui.serve --session [SCENARIO]`, which runs the explorer
whatever its standard streams are (the plain `whatif` prints figures when not on a terminal).
"""

from __future__ import annotations

import shlex
import sys

from whatif.engine import ScenarioError
from whatif.engine.errors import printable


def session_command(scenario: str | None) -> str:
    parts = [sys.executable, "-m", "whatif.tui.serve", "--session"] + ([scenario] if scenario else [])
    return shlex.join(parts)


def serve(host: str, port: int, scenario: str | None = None, public_url: str | None = None) -> int:
    """Serve until interrupted; the exit status for `whatif serve`."""
    from textual_serve.server import Server

    from . import files

    if scenario == "-":
        # Each visitor's session is a process of its own that opens SCENARIO: standard input is read once.
        print(
            "whatif: serve: - (standard input) cannot be served; allowed: a preset name or a .toml file",
            file=sys.stderr,
        )
        return 2
    if scenario is not None:
        try:
            files.read(scenario)  # a bad reference fails here, once, not in every visitor's session
        except ScenarioError as exc:
            for line in exc.lines():
                print(f"whatif: {line}", file=sys.stderr)
            return 2
    if not 0 < port < 65536:
        print(f"whatif: --port {port}: out of range; allowed: 1 to 65535", file=sys.stderr)
        return 2
    problem = _cannot_listen(host, port)
    if problem:
        print(f"whatif: --host {printable(host)} --port {port}: {problem}", file=sys.stderr)
        return 2
    server = Server(session_command(scenario), host=host, port=port, title="whatif", public_url=public_url)
    print(f"whatif: serving the explorer on {server.public_url} (Ctrl+C stops it)", file=sys.stderr)
    try:
        server.serve()
    except OSError as exc:  # taken between the check and the server's own bind
        print(f"whatif: --host {printable(host)} --port {port}: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on (host, port) (the port taken, an unknown or foreign address), or
    None: a trial bind, so that the message comes before the server starts rather than as a traceback."""
    import errno
    import socket

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        return f"unknown address ({why}); allowed: a host name or IP address of this machine"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server sets it
            try:
                trial.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "the port is in use by another program; allowed: a free port (--port 8001)"
                return f"cannot listen there: {exc.strerror or exc}"
    return None


def _session(argv: list[str]) -> int:
    from . import files
    from .app import run_app

    ref = argv[0] if argv else None
    scenario = files.read(ref).scenario if ref else files.load_scenario(files.shipped_presets()["default"])
    return run_app(scenario, path=None)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--session"]:
        sys.exit(_session(sys.argv[2:]))
    sys.exit(serve("127.0.0.1", 8000))
