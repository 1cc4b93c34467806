"""Scenario validation: every kind of bad input names the file, the section.key, the value and what is allowed.

tests/malformed/ holds hand-edited presets; each states on its first line the key and the words its message
must contain (`# expect: KEY | TEXT`).
"""

from pathlib import Path

import pytest
from pydantic import ValidationError
from whatif.engine import Scenario, ScenarioError
from whatif.tui.files import load_scenario, parse_scenario

MALFORMED = sorted((Path(__file__).parent / "malformed").glob("*.toml"))


def _expectation(path: Path) -> tuple[str, str] | None:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    if not first.startswith("# expect:"):
        return None
    key, text = first.removeprefix("# expect:").split("|", 1)
    return key.strip(), text.strip()


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_preset_names_file_key_and_what_is_allowed(path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    lines = info.value.lines()
    assert lines and all(line.startswith(str(path)) for line in lines)
    expected = _expectation(path)
    if expected is None:  # binary file: no line to read an expectation from
        assert "not a text file" in lines[0]
        return
    key, text = expected
    match = [line for line in lines if f": {key} = " in line]
    assert match, lines
    assert text in match[0], match[0]


def test_unknown_catalog_key_lists_close_matches():
    with pytest.raises(ScenarioError) as info:
        parse_scenario('[cluster]\ngpu = "a100"\ngpu_count = 8\n', "x.toml")
    (line,) = info.value.lines()
    assert line.startswith("x.toml: cluster.gpu = 'a100': unknown GPU 'a100'; close matches: a100-sxm-40gb")


def test_wrong_type_reports_the_value_given():
    with pytest.raises(ScenarioError) as info:
        parse_scenario("[cluster]\ngpu_count = 8.5\n", "x.toml")
    assert info.value.lines() == ["x.toml: cluster.gpu_count = 8.5: not a whole number; allowed: an integer such as 8"]


def test_every_issue_is_reported_not_only_the_first():
    with pytest.raises(ScenarioError) as info:
        parse_scenario("[cluster]\ngpu_count = -1\n[facility]\ngrid_gco2_per_kwh = 99999\n", "x.toml")
    keys = [issue.key for issue in info.value.issues]
    assert keys == ["cluster.gpu_count", "facility.grid_gco2_per_kwh"]


def test_missing_file_is_a_message_not_a_traceback(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "nope.toml")
    assert "no such file" in str(info.value)


def test_edits_are_validated_like_files():
    base = Scenario()
    assert base.edited("cluster", gpu_count=16).cluster.gpu_count == 16
    with pytest.raises(ValidationError):
        base.edited("cluster", gpu_count=0)


def test_sections_left_out_mean_no_workload():
    scenario, _ = parse_scenario('name = "serving only"\n[inference]\nmodel = "llama-3.1-8b"\n')
    assert scenario.training is None and scenario.inference is not None


def test_explicit_model_shape_is_accepted():
    text = '[training.model]\nname = "tiny"\nlayers = 2\nhidden = 256\nheads = 4\n'
    scenario, _ = parse_scenario(text)
    assert scenario.training.model.hidden == 256
