"""`whatif serve` answers on localhost: the page over HTTP, and an explorer session over its websocket
that draws the figures (each visitor gets their own process)."""

import asyncio
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow  # starts a server and an explorer process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "whatif.tui.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"whatif serve did not answer: {proc.stdout.read().decode(errors='replace')}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_page_is_served_on_localhost(server):
    with urllib.request.urlopen(server + "/", timeout=10) as reply:
        html = reply.read().decode()
        assert reply.status == 200
    assert "textual.js" in html and "data-session-websocket-url" in html


def test_a_session_draws_the_explorer_with_its_figures(server):
    import aiohttp

    async def screen() -> str:
        text = ""
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.replace("http", "ws") + "/ws?width=120&height=40") as ws:
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and "MFU" not in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text):
                    try:
                        msg = await ws.receive(timeout=5)
                    except TimeoutError:
                        continue
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        text += msg.data.decode("utf-8", "replace")
                    elif msg.type == aiohttp.WSMsgType.TEXT:
                        text += msg.data
                    else:
                        break
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)

    plain = asyncio.run(screen())
    assert "Default: Llama 3.1 70B on 1,024 H100" in plain
    assert "MFU" in plain and "days" in plain


def test_bad_scenario_is_refused_before_serving():
    done = subprocess.run(
        [sys.executable, "-m", "whatif.tui.cli", "serve", "nope-not-a-preset"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "no such file or preset" in done.stderr


def test_chromium_screenshot_of_the_explorer(server, tmp_path):
    from tools import browser

    if browser.chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install -y chromium)")
    png = tmp_path / "serve.png"
    seen = browser.screenshot(server + "/", str(png))
    # The app's first output reached the browser's terminal, and what is on screen is no longer the start card.
    assert seen["drawn"] and seen["differs"], seen
    assert png.stat().st_size > 20_000
