"""User text that must stay text in charts, and zips that must not write outside their folder."""

from __future__ import annotations

import zipfile

import pytest

from app import charts
from app.services import ServiceError
from app.services import export as export_service

HOSTILE = '<a href="http://evil">click</a><b>bold</b>'


def test_class_names_reach_plotly_as_text_not_html():
    conf = {"labels": [HOSTILE, "plain"], "matrix": [[1, 0], [0, 1]], "round": 1}
    fig = charts.confusion_figure(conf)
    assert all("<a " not in str(v) and "<b>" not in str(v) for v in fig.data[0].x)
    assert fig.data[0].x[1] == "plain"
    dist = {"labels": {HOSTILE: 2, "plain": 1}, "pseudo": {HOSTILE: 5}, "round": 1}
    for trace in charts.class_distribution_figure(dist).data:
        assert "&lt;a href" in trace.x[0] and "<b>" not in trace.x[0]


def test_unpack_refuses_a_sibling_folder_with_the_same_prefix(tmp_path):
    """A string-prefix check would let 'export-evil/x' through for dest 'export'."""
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../export-evil/x.txt", "pwned")
    with pytest.raises(ServiceError, match="Unsafe path"):
        export_service.unpack(bad, tmp_path / "export")
    assert not (tmp_path / "export-evil").exists()
