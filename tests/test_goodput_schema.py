"""The new scenario keys ([data], [reliability], storage.node_network_gbps, sample workloads): defaults keep
old files valid, and bad values give one line naming section.key (never a traceback)."""

import pytest
from whatif.engine import ScenarioError
from whatif.tui.cli import main
from whatif.tui.files import parse_scenario


def test_defaults_keep_old_scenarios_valid():
    s, _ = parse_scenario("schema_version = 1\n[training]\nmodel = 'llama-3.1-8b'\n")
    assert s.data.source == "shared-fs" and s.data.bytes_per_token is None
    assert s.reliability.interruptions and s.reliability.gpu_mtbf_hours is None
    assert s.storage.node_network_gbps is None


def test_training_model_accepts_sample_workloads():
    s, _ = parse_scenario("schema_version = 1\n[training]\nmodel = 'unet3d'\ntrain_samples = 1e5\n")
    assert s.training.model == "unet3d"


@pytest.mark.parametrize(
    "body, key, words",
    [
        ("[data]\nbytes_per_tokn = 3\n", "data.bytes_per_tokn", "did you mean bytes_per_token"),
        ("[data]\nsource = 's3'\n", "data.source", "'shared-fs' or 'local-nvme'"),
        ("[data]\ndataset_gb = 0\n", "data.dataset_gb", "more than 0"),
        ("[reliability]\ngpu_mtbf_hours = -1\n", "reliability.gpu_mtbf_hours", "more than 0"),
        ("[reliability]\ninterruptions = 'often'\n", "reliability.interruptions", "true or false"),
        ("[storage]\nnode_network_gbps = 0\n", "storage.node_network_gbps", "more than 0"),
        ("[training]\nmodel = 'resnet5'\n", "training.model", "close matches: resnet50"),
    ],
)
def test_bad_values_name_their_key(body, key, words):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario("schema_version = 1\n" + body, "bad.toml")
    line = exc.value.lines()[0]
    assert line.startswith(f"bad.toml: {key} = ") and words in line, line


def test_cli_exits_2_on_a_bad_data_table(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("schema_version = 1\n[data]\nsource = 's3'\n")
    assert main(["eval", str(path)]) == 2
    assert "data.source" in capsys.readouterr().err
