"""All-or-nothing output folders: a failed or killed run leaves ``--out`` byte for byte as it was."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from immunopet.errors import InputError
from immunopet.store import OUTPUT_MARKER, _outputs, atomic_output_folder

HashTree = Callable[[Path], dict[str, str]]


def _siblings(out: Path) -> list[str]:
    """Names beside ``out`` that belong to it (temporaries, backups)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _write_run(out: Path, files: dict[str, str]) -> None:
    with atomic_output_folder(out) as folder:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)


def _failing_run(out: Path, on_entry: Callable[[], object] = lambda: None) -> None:
    """A run that writes half its output, then fails (``on_entry`` runs inside the block)."""
    with atomic_output_folder(out) as folder:
        on_entry()
        (folder / "results.json").write_text("half")
        raise RuntimeError("registration failed")


def test_new_folder_appears_complete(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    with atomic_output_folder(out) as folder:
        assert folder.parent == out.parent
        assert not out.exists()  # nothing visible while the run writes
        (folder / "results.json").write_text("{}")
        (folder / "seg").mkdir()
        (folder / "seg" / "TP01.dcm").write_bytes(b"\x00" * 10)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        OUTPUT_MARKER,
        "results.json",
        "seg",
        "seg/TP01.dcm",
    ]
    assert _siblings(out) == []


def test_previous_output_is_replaced_as_a_whole(tmp_path: Path, hash_tree: HashTree) -> None:
    out = tmp_path / "out"
    _write_run(out, {"results.json": "old", "only_old.csv": "x"})
    _write_run(out, {"results.json": "new", "seg/a.dcm": "y"})
    assert (out / "results.json").read_text() == "new"
    assert not (out / "only_old.csv").exists()
    assert set(hash_tree(out)) == {OUTPUT_MARKER, "results.json", "seg/a.dcm"}
    assert _siblings(out) == []


def test_failed_run_leaves_previous_output_unchanged(tmp_path: Path, hash_tree: HashTree) -> None:
    out = tmp_path / "out"
    _write_run(out, {"results.json": "old", "t.csv": "1,2"})
    before = hash_tree(out)
    with pytest.raises(RuntimeError, match="registration failed"):
        _failing_run(out)
    assert hash_tree(out) == before
    assert _siblings(out) == []


def test_exchange_swaps_two_folders_on_linux(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "f").write_text("first")
    (second / "f").write_text("second")
    if not _outputs._exchange(first, second):
        pytest.skip("no atomic exchange on this system or file system (two-rename fallback)")
    assert (first / "f").read_text() == "second"
    assert (second / "f").read_text() == "first"


def test_two_rename_fallback_replaces_too(
    tmp_path: Path, hash_tree: HashTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_outputs, "_exchange", lambda first, second: False)
    out = tmp_path / "out"
    _write_run(out, {"results.json": "old"})
    _write_run(out, {"results.json": "new"})
    assert (out / "results.json").read_text() == "new"
    assert _siblings(out) == []


def test_run_killed_between_the_two_renames_is_undone(tmp_path: Path, hash_tree: HashTree) -> None:
    out = tmp_path / "out"
    _write_run(out, {"results.json": "old"})
    before = hash_tree(out)
    backup = tmp_path / ".out.previous"
    out.rename(backup)  # what a run killed after its first rename leaves: no out, a backup
    seen: list[dict[str, str]] = []
    with pytest.raises(RuntimeError):
        _failing_run(out, lambda: seen.append(hash_tree(out)))
    assert seen == [before]  # restored on entry
    assert hash_tree(out) == before
    assert _siblings(out) == []

    backup.mkdir()  # killed after the second rename: the backup is the old output, now obsolete
    (backup / "results.json").write_text("older")
    _write_run(out, {"results.json": "newest"})
    assert (out / "results.json").read_text() == "newest"
    assert _siblings(out) == []


def test_refuses_to_replace_a_folder_that_is_not_an_output(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "IMG0001.dcm").write_bytes(b"DICM")
    with pytest.raises(InputError, match="not an immunopet output folder") as caught:
        _write_run(scans, {"results.json": "{}"})
    assert caught.value.field == "--out"
    assert [p.name for p in scans.iterdir()] == ["IMG0001.dcm"]
    assert _siblings(scans) == []

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        _write_run(a_file, {})

    empty = tmp_path / "empty"
    empty.mkdir()
    _write_run(empty, {"results.json": "{}"})  # an empty folder is fine
    assert (empty / "results.json").read_text() == "{}"


def test_keep_copies_a_database_and_its_journal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write_run(out, {"immunopet.db": "db", "immunopet.db-journal": "journal", "other": "o"})
    with atomic_output_folder(out, keep=["immunopet.db", "absent.db"]) as folder:
        assert sorted(p.name for p in folder.iterdir()) == [
            OUTPUT_MARKER,
            "immunopet.db",
            "immunopet.db-journal",
        ]
        (folder / "immunopet.db").write_text("db2")
    assert (out / "immunopet.db").read_text() == "db2"
    assert not (out / "other").exists()
    for bad in ("../escape.db", "a/b.db", ""):
        with (
            pytest.raises(ValueError, match="directly inside"),
            atomic_output_folder(out, keep=[bad]),
        ):
            pass
    assert (out / "immunopet.db").read_text() == "db2"


def test_symlinked_out_is_replaced_where_it_is(tmp_path: Path) -> None:
    real = tmp_path / "real"
    _write_run(real, {"results.json": "old"})
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    _write_run(link, {"results.json": "new"})
    assert link.is_symlink()
    assert (link / "results.json").read_text() == "new"
    assert (real / "results.json").read_text() == "new"


_CHILD_WRITE = """
import os, sys, time
from pathlib import Path
from immunopet.store import atomic_output_folder

out, ready = sys.argv[1], Path(sys.argv[2])
with atomic_output_folder(out) as folder:
    for i in range(200):
        (folder / f"slice{i:04d}.dcm").write_bytes(bytes([i % 256]) * 4096)
    (folder / "results.json").write_text('{"partial": true}')
    Path(sys.argv[2] + ".tmp").write_text(str(folder))
    os.replace(sys.argv[2] + ".tmp", ready)
    time.sleep(600)
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and stale-folder cleanup are POSIX")
def test_killed_run_leaves_out_as_it_was(
    tmp_path: Path, hash_tree: HashTree, kill_child_when_ready: Callable[..., str]
) -> None:
    out = tmp_path / "out"
    _write_run(out, {"results.json": json.dumps({"run": 1}), "tables/m.csv": "a,b\n1,2\n"})
    before = hash_tree(out)
    ready = tmp_path / "ready"
    temporary = Path(kill_child_when_ready(_CHILD_WRITE, str(out), str(ready), ready=ready))

    assert hash_tree(out) == before
    assert temporary.is_dir()  # a killed process cannot clean up; the folder is hidden
    assert _siblings(out) == [temporary.name]
    _write_run(out, {"results.json": json.dumps({"run": 3})})  # the next run removes it
    assert _siblings(out) == []
    assert json.loads((out / "results.json").read_text()) == {"run": 3}


def test_a_living_process_keeps_its_temporary_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    host = _outputs.socket.gethostname()
    mine = tmp_path / f".out.tmp-{host}-{os.getpid()}-abc"  # this process: alive
    other_host = tmp_path / ".out.tmp-another-host-1-abc"
    mine.mkdir()
    other_host.mkdir()
    _write_run(out, {})
    assert _siblings(out) == sorted([mine.name, other_host.name])
