"""A key for every class (1-9, then letters that no other action uses), shown on the buttons
and bound on the labelling page."""

from __future__ import annotations

import json

from app.services import hotkeys
from app.services import labelling as L
from tests.app.test_pages import add_docs, open_app


def test_every_class_gets_a_distinct_key_that_no_action_uses():
    keys = hotkeys.class_keys(32)
    assert keys[:9] == list("123456789") and keys[9:12] == ["b", "c", "d"]
    assert len(set(keys)) == 32 and not set(keys) & hotkeys.RESERVED
    assert hotkeys.class_keys(33)[-1] is None  # the alphabet ran out: that class is clicked
    assert hotkeys.keys_caption(12).startswith("Keys: 1-9, b-d label")
    assert hotkeys.keys_caption(2).startswith("Keys: 1-2 label")


def test_labelling_page_shows_and_binds_keys_past_nine(db, project):
    add_docs(db, project.id, ["one doc", "another doc"])
    for i in range(12):
        L.add_label_class(db, project.id, f"class {i}", "", f"word{i}")
    at = open_app("labelling")
    assert not at.exception, at.exception
    assert at.button(key="lab_class_0").label.startswith("1 · ")
    assert at.button(key="lab_class_9").label.startswith("b · ")
    assert at.button(key="lab_class_11").label.startswith("d · ")
    assert any("Keys: 1-9, b-d label" in c.value for c in at.caption)
    script = next(h.proto.body for h in at.get("html") if "__listHotkeys" in h.proto.body)
    mapping = json.loads(script.split("w.__listHotkeys = ", 1)[1].split(";\n", 1)[0])
    assert mapping["b"] == "lab_class_9" and mapping["d"] == "lab_class_11"
    assert mapping["s"] == "lab_skip" and mapping["a"] == "lab_accept"
