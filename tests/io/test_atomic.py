"""What an interrupted command says it kept: outputs put in place, never files inside a folder
that was still being built."""

from __future__ import annotations

from signals.io.atomic import (
    atomic_directory,
    atomic_file,
    committed_outputs,
    forget_committed_outputs,
)


def test_files_written_inside_a_folder_being_built_are_not_listed_as_kept(tmp_path):
    forget_committed_outputs()
    with atomic_directory(tmp_path / "bundle") as building:
        with atomic_file(building / "checkpoint.json") as tmp:
            tmp.write_text("{}", encoding="utf-8")
        assert committed_outputs() == []  # the folder is not in place yet: nothing is kept
    with atomic_file(tmp_path / "metrics.csv") as tmp:
        tmp.write_text("a\n", encoding="utf-8")
    assert committed_outputs() == [tmp_path / "bundle", tmp_path / "metrics.csv"]
    assert (tmp_path / "bundle" / "checkpoint.json").read_text(encoding="utf-8") == "{}"
    forget_committed_outputs()
