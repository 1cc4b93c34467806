"""docs/model.md stays true: its calibration table is what `whatif validate --markdown` prints now."""

import re
from pathlib import Path

from whatif.tui.cli import main

DOC = Path(__file__).parents[1] / "docs" / "model.md"


def test_calibration_table_in_docs_is_current(capsys):
    text = DOC.read_text()
    documented = re.search(r"<!-- calibration:begin -->\n(.*?)<!-- calibration:end -->", text, re.S).group(1)
    assert main(["validate", "--markdown"]) == 0
    current = capsys.readouterr().out
    assert documented.strip() == current.strip(), "run `whatif validate --markdown` and update docs/model.md"


def test_constants_table_matches_the_catalog():
    from whatif.engine import load_catalog

    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| ([0-9.e+-]+) \|", DOC.read_text(), re.M))
    for key, const in load_catalog().constants.items():
        assert key in rows, f"constant {key} is not in docs/model.md's Constants table"
        assert float(rows[key]) == const.value, key
