"""Files: what is read (regular UTF-8 files of a scenario's size only, refused with a message otherwise) and
how saves treat what is already there (links written through, modes kept, the umask respected, temporary
files of killed saves cleaned up, a presets folder that is a file named)."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import time

import pytest
from whatif.engine.scenario import Scenario
from whatif.tui import files
from whatif.tui.cli import main


def _cli(*args) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    start = time.perf_counter()
    code, err = _cli("eval", str(fifo))
    assert code == 2 and "FIFO" in err and "regular" in err
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused_without_reading_them(device):
    if not os.path.exists(device):
        pytest.skip("no such device here")
    code, err = _cli("eval", device)
    assert code == 2 and "character device" in err


def test_a_directory_and_a_huge_file_are_refused(tmp_path):
    code, err = _cli("eval", str(tmp_path))
    assert code == 2 and "directory" in err
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * files.MAX_BYTES + "\n")
    code, err = _cli("eval", str(big))
    assert code == 2 and "at most" in err and "bytes" in err


@pytest.mark.parametrize(
    "data, words",
    [
        ('name = "x"\n'.encode("utf-16"), "UTF-16"),
        ('name = "x"\n'.encode("utf-16-le"), "UTF-16"),
        ('name = "caf\xe9"\n'.encode("latin-1"), "not UTF-8"),
        (b"\x00\x01\x02binary", "not a text file"),
        ('name = "x"\n'.encode("utf-16-be"), "UTF-16"),
        ('name = "Лама 大模型"\n'.encode("utf-16-le"), "UTF-16"),
        # UTF-8 with a stray NUL is not UTF-16 (any even-length text decodes as UTF-16 to printable CJK).
        (b'name = "x"\x00\n', "holds NUL bytes, the first at line 1"),
        (b'name = "x"\n[cluster]\ngpu_count = 8\x00\x00\n', "the first at line 3"),
    ],
)
def test_text_that_is_not_utf8_is_named(tmp_path, data, words):
    path = tmp_path / "enc.toml"
    path.write_bytes(data)
    code, err = _cli("eval", str(path))
    assert code == 2 and words in err, err


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'name = "with a BOM"\n')
    assert files.load_scenario(path).name == "with a BOM"


def test_standard_input_over_the_cap_is_refused(monkeypatch):
    class Stdin:
        buffer = io.BytesIO(b"#" * (files.MAX_BYTES + 10))

    monkeypatch.setattr("sys.stdin", Stdin())
    code, err = _cli("eval", "-")
    assert code == 2 and "at most" in err


# Saving ------------------------------------------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_saving_over_a_link_writes_through_it(tmp_path):
    real = tmp_path / "real" / "plan.toml"
    real.parent.mkdir()
    files.save_scenario(Scenario(name="first"), real)
    link = tmp_path / "plan.toml"
    link.symlink_to(real)
    files.save_scenario(Scenario(name="second"), link, overwrite=True)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert files.load_scenario(real).name == "second"
    assert sorted(p.name for p in real.parent.iterdir()) == ["plan.toml"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_saving_keeps_the_files_mode(tmp_path):
    target = tmp_path / "plan.toml"
    files.save_scenario(Scenario(name="first"), target)
    os.chmod(target, 0o640)
    files.save_scenario(Scenario(name="second"), target, overwrite=True)
    assert _mode(target) == 0o640


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_the_umask_allows(tmp_path, umask):
    old = os.umask(umask)
    try:
        target = files.save_scenario(Scenario(name="new"), tmp_path / "new.toml")
    finally:
        os.umask(old)
    assert _mode(target) == 0o666 & ~umask


def test_temporary_files_of_killed_saves_are_cleaned_up(tmp_path):
    # What a save killed between writing and renaming leaves: earlier versions' name, and this version's
    # (its process id, here one that cannot be running).
    old = tmp_path / ".plan.toml.k3j2h1g0.tmp"
    dead = tmp_path / f".plan.toml.{2**22 + 12345}.a1b2c3d4.tmp"
    mine = tmp_path / "notes.tmp"  # not ours: kept
    for p in (old, dead, mine):
        p.write_text("half a scenario")
    files.save_scenario(Scenario(name="saved"), tmp_path / "plan.toml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "plan.toml"]


def test_a_live_saves_temporary_file_is_left_alone(tmp_path):
    live = tmp_path / f".plan.toml.{os.getppid()}.a1b2c3d4.tmp"
    live.write_text("being written by another process")
    files.save_scenario(Scenario(name="saved"), tmp_path / "other.toml")
    assert live.exists()


def test_the_presets_folder_being_a_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("WHATIF_HOME", str(tmp_path))
    (tmp_path / "presets").write_text("not a folder")
    with pytest.raises(files.SaveError) as info:
        files.save_scenario(Scenario(name="x"), files.user_presets_dir() / "x.toml")
    assert "is a file, not a folder" in info.value.strerror and "WHATIF_HOME" in info.value.strerror
    assert files.user_presets() == {}
    # `whatif presets` said only "(none)" there.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["presets"]) == 0
    assert (
        out.getvalue()
        .rstrip()
        .endswith("(none: it is a file, not a folder; move it away or set WHATIF_HOME to another place)")
    )


def test_saving_onto_a_directory_or_a_fifo_is_refused(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(files.SaveError):
        files.save_scenario(Scenario(name="x"), tmp_path / "dir.toml", overwrite=True)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.toml")
        start = time.perf_counter()
        with pytest.raises(files.SaveError):
            files.save_scenario(Scenario(name="x"), tmp_path / "pipe.toml", overwrite=True)
        assert time.perf_counter() - start < 5
