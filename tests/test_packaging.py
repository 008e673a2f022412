"""The library installs with pip: pyproject.toml declares what the code imports, agrees with
requirements.txt, and `pip install .` / `pip install .[app]` work in a fresh venv, where the
`list-engine` command runs."""

from __future__ import annotations

import ast
import importlib.metadata as md
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OWN_PACKAGES = {"app", "db", "worker", "list_engine", "tests", "bench"}


def requirements(lines: list[str]) -> dict[str, Requirement]:
    reqs = [Requirement(line.split("#")[0].strip()) for line in lines
            if line.split("#")[0].strip()]
    return {canonicalize_name(r.name): r for r in reqs}


def declared(*, app: bool) -> set[str]:
    lines = PROJECT["dependencies"] + (PROJECT["optional-dependencies"]["app"] if app else [])
    return set(requirements(lines))


def required_imports(path: Path) -> set[str]:
    """Top-level third-party packages the file imports, leaving out optional imports (those
    inside a `try` that catches ImportError, such as the --no-deps default model)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in OWN_PACKAGES}


def undeclared(folders: list[str], allowed: set[str]) -> dict[str, list[str]]:
    dists = md.packages_distributions()
    missing = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in required_imports(path):
                if not {canonicalize_name(d) for d in dists.get(name, [name])} & allowed:
                    missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return missing


def test_the_library_declares_what_it_imports():
    assert undeclared(["list_engine"], declared(app=False)) == {}, \
        "add these to [project] dependencies in pyproject.toml (and requirements.txt)"


def test_the_app_extra_covers_the_app_db_and_worker():
    assert undeclared(["app", "db", "worker"], declared(app=True)) == {}, \
        "add these to [project.optional-dependencies] app (and requirements.txt)"


def test_pyproject_and_requirements_txt_agree():
    pinned = requirements((ROOT / "requirements.txt").read_text().splitlines())
    ours = requirements(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["app"])
    assert set(pinned) == set(ours)
    for name, req in pinned.items():
        if name == "torch":  # pinned for the CPU wheel in CI; the library takes a range
            (version,) = [s.version for s in req.specifier]
            assert ours[name].specifier.contains(version)
        else:
            assert (req.extras, req.specifier) == (ours[name].extras, ours[name].specifier), name
    assert PROJECT["requires-python"] == ">=3.11"  # no upper cap
    assert PROJECT["scripts"]["list-engine"] == "list_engine.__main__:main"
    assert (ROOT / "list_engine" / "py.typed").is_file()


def _copy_sources(dest: Path) -> Path:
    """The files pyproject.toml builds from, copied out so that building leaves no
    build/ or *.egg-info in the working tree that other processes share."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dest.mkdir()
    shutil.copy(ROOT / "pyproject.toml", dest)
    for package in config["tool"]["setuptools"]["packages"]:
        shutil.copytree(ROOT / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.mark.slow
def test_pip_install_in_a_fresh_venv_then_list_engine_help(tmp_path):
    # A fresh venv without pip whose site-packages is chained (a .pth line) to this
    # project's environment. Why not `--system-site-packages`: that exposes the base
    # interpreter's packages, not the project venv's. Chained, pip sees torch & co. as
    # installed, so `--no-index` works offline and never downloads torch; and it proves that
    # what pyproject.toml declares (versions included) is satisfied by what we test with:
    # a dependency missing from the environment, or a range it does not meet, fails here.
    # `--no-build-isolation` builds with the environment's setuptools (no download either).
    source = _copy_sources(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "_project_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    def pip_install(target: str) -> None:
        proc = subprocess.run(
            [python, "-m", "pip", "install", "--no-index", "--no-build-isolation",
             "--no-cache-dir", "--disable-pip-version-check", target],
            cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    pip_install(str(source))
    # Only the library is installed: no top-level app/db/worker packages, and py.typed ships.
    installed = {p.name for p in site.iterdir()}
    assert "list_engine" in installed and not installed & {"app", "db", "worker", "tests"}
    assert (site / "list_engine" / "py.typed").is_file()
    proc = subprocess.run([venv / "bin" / "list-engine", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train" in proc.stdout and "predict" in proc.stdout
    where = subprocess.run([python, "-c", "import list_engine; print(list_engine.__file__)"],
                           cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert Path(where.strip()).is_relative_to(site)  # the installed copy, not the checkout

    pip_install(f"{source}[app]")  # offline too: every app extra is met by the environment
    requires = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(*m.requires('list-engine'), sep='\\n')"],
        cwd=tmp_path, check=True, capture_output=True, text=True).stdout.splitlines()
    assert any(r.startswith("streamlit") and 'extra == "app"' in r for r in requires), requires
