"""Writes docs/explorer.svg, the README's screenshot: the explorer on the default scenario at 120x40.

python scripts/screenshot.py
"""

import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from conftest import settle  # noqa: E402  (waits for the engine's worker, as the tests do)
from whatif.tui.app import make_app  # noqa: E402

OUT = Path(__file__).parents[1] / "docs" / "explorer.svg"


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["WHATIF_HOME"] = home  # no saved presets or remembered theme of yours in the picture
        app = make_app(cursor_blink=False, theme="textual-dark")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            OUT.write_text(app.export_screenshot(title="whatif"), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
