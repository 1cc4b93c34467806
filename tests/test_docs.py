"""docs/model.md stays true: its calibration table is what `whatif validate --markdown` prints now."""

import re
from pathlib import Path

import pytest
from whatif.tui.cli import main

DOC = Path(__file__).parents[1] / "docs" / "model.md"


@pytest.mark.slow  # the whole validation, a second or two
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


def test_the_example_scenarios_in_presets_md_are_valid():
    from whatif.tui.files import parse_scenario

    text = (DOC.parent / "presets.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    scenario, _ = parse_scenario(blocks[0], "docs/presets.md example")
    assert scenario.training is not None and scenario.inference is not None
    shape, _ = parse_scenario(blocks[1], "docs/presets.md model shape")
    assert shape.training.model.layers == 48


@pytest.mark.slow
def test_cross_validation_table_in_docs_is_current(capsys):
    text = DOC.read_text()
    documented = re.search(r"<!-- cross:begin -->\n(.*?)<!-- cross:end -->", text, re.S).group(1)
    assert main(["validate", "--cross", "--markdown"]) == 0
    current = capsys.readouterr().out
    assert documented.strip() == current.strip(), "run `whatif validate --cross --markdown` and update docs/model.md"


@pytest.mark.slow
def test_serving_cross_validation_table_in_docs_is_current(capsys):
    text = DOC.read_text()
    documented = re.search(r"<!-- cross-inference:begin -->\n(.*?)<!-- cross-inference:end -->", text, re.S).group(1)
    assert main(["validate", "--cross", "--workload", "inference", "--markdown"]) == 0
    current = capsys.readouterr().out
    assert documented.strip() == current.strip()
