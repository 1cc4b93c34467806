"""Drive headless Chromium over the DevTools protocol (no browser package needed): open a page, click and
take a screenshot. Used by the `whatif serve` check where Chromium is installed (apt-get install chromium)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

# Flags that work on this kind of machine (closed network: no background connections, no sandbox as root).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _session(url: str, png_path: str, size=(1400, 900), timeout_s: float = 60) -> dict:
    import aiohttp

    port = _port()
    profile = tempfile.mkdtemp(prefix="whatif-chromium-")
    proc = subprocess.Popen(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
         f"--window-size={size[0]},{size[1]}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2))
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as http, http.ws_connect(page["webSocketDebuggerUrl"]) as ws:
            counter = 0

            async def call(method: str, **params):
                nonlocal counter
                counter += 1
                await ws.send_json({"id": counter, "method": method, "params": params})
                while True:
                    msg = json.loads((await ws.receive()).data)
                    if msg.get("id") == counter:
                        return msg.get("result", {})

            await call("Page.enable")
            await call("Page.navigate", url=url)
            await asyncio.sleep(2)
            # textual-serve shows a start card first (kept, to tell the drawn explorer from it); a click in
            # the middle starts the session.
            start = await call("Page.captureScreenshot", format="png")
            for kind in ("mousePressed", "mouseReleased"):
                await call("Input.dispatchMouseEvent", type=kind, x=size[0] // 2, y=size[1] // 2, button="left",
                           clickCount=1)  # fmt: skip
            # The terminal draws on a canvas, so the page has no text to wait for. textual-serve marks the body
            # '-first-byte' once the app's first output arrives (the start card's size in PNG bytes depends on
            # whether its background image had loaded, so it is no yardstick).
            deadline = time.monotonic() + timeout_s
            drawn = False
            while not drawn and time.monotonic() < deadline:
                await asyncio.sleep(1)
                got = await call("Runtime.evaluate", expression="document.body.classList.contains('-first-byte')",
                                 returnByValue=True)  # fmt: skip
                drawn = bool(got.get("result", {}).get("value"))
            await asyncio.sleep(4)  # let the figures settle after the first frame
            shot = await call("Page.captureScreenshot", format="png")
            with open(png_path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            return {"drawn": drawn, "differs": shot["data"] != start["data"],
                    "ratio": len(shot["data"]) / len(start["data"])}  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(url: str, png_path: str) -> dict:
    """Open `url`, start the session, wait until the terminal has drawn the app's first output; save a PNG.
    Returns {drawn: the app's output arrived, differs: the final screen is not the start card, ratio: PNG bytes
    of the final screen over the start card's}."""
    return asyncio.run(_session(url, png_path))
