"""The agent's labels file: the room and tags a site gives a machine (written by the Ansible role)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.labels import Labels, LabelsError, load_labels


def test_a_labels_file_gives_a_room_and_tags(tmp_path: Path):
    (tmp_path / "labels.toml").write_text('room = " Hall "\ntags = ["signage", "exam-room"]\n')
    assert load_labels(tmp_path / "labels.toml") == Labels("Hall", ("signage", "exam-room"))
    assert load_labels(None) == Labels()


@pytest.mark.parametrize(("text", "message"), [
    ('tags = "signage"\n', 'tags must be a list of at most 50 names'),
    ('rooms = "Hall"\n', "unknown key 'rooms'"),
    ('room = ""\n', "room must be a non-empty string"),
    ("tags = [\n", "not valid TOML"),
])
def test_a_bad_labels_file_is_one_clear_error(tmp_path: Path, text: str, message: str):
    (tmp_path / "labels.toml").write_text(text)
    with pytest.raises(LabelsError, match=message):
        load_labels(tmp_path / "labels.toml")
    with pytest.raises(LabelsError, match="cannot read labels file"):
        load_labels(tmp_path / "missing.toml")
