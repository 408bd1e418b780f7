"""build.py: sdists → wheels and the project's editable wheel through PEP 517/660 hooks, in
isolated build venvs whose requirements come from the fixture index."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import sync, write_project

from lockenv import build
from lockenv.cache import Cache
from lockenv.dists import Distributions
from lockenv.errors import BuildError
from lockenv.index import IndexClient
from lockenv.ops.dispatch import distributions
from lockenv.ui import NullReporter


@pytest.fixture
def dists(index_server: Any) -> Iterator[Distributions]:
    cache = Cache()
    with IndexClient(index_server.json_url, cache=cache) as client, \
            distributions(client, cache=cache, reporter=NullReporter()) as d:
        yield d


def _sdist(dists: Distributions, name: str) -> Path:
    files = dists.project(name).files
    [sdist] = [f for f in files if not f.is_wheel][-1:]
    return dists.download(sdist)


def _builds(dists: Distributions) -> dict[str, Any]:
    """The keyword arguments every build takes: how to resolve and install, and the cache."""
    return {"context": dists.build_context, "cache": dists.cache}


def test_prepare_metadata_reveals_dynamic_dependencies(dists: Distributions) -> None:
    text = build.prepare_metadata(_sdist(dists, "sddynamic"), **_builds(dists))
    assert "Name: sddynamic" in text and "Version: 1.0" in text
    assert "Requires-Dist: beta<2" in text


def test_build_wheel_is_cached_by_sdist_hash(dists: Distributions) -> None:
    sdist = _sdist(dists, "sdlegacy")
    assert build.cached_wheel(sdist, Path(sys.executable), dists.cache) is None
    wheel = build.build_wheel(sdist, **_builds(dists))
    assert wheel.name == "sdlegacy-0.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        assert "sdlegacy/__init__.py" in zf.namelist()
    assert build.cached_wheel(sdist, Path(sys.executable), dists.cache) == wheel
    assert build.build_wheel(sdist, **_builds(dists)) == wheel


def test_build_failure_carries_the_backend_output(dists: Distributions) -> None:
    with pytest.raises(BuildError) as info:
        build.build_wheel(_sdist(dists, "sdbroken"), **_builds(dists))
    assert info.value.message == "building sdbroken-1.0.tar.gz failed"
    assert any("missing header file: fakelib.h" in line for line in info.value.details)
    assert len(info.value.details) <= 20


def test_build_editable_points_at_the_source(project: Path, dists: Distributions) -> None:
    write_project(project, [], build_system=True)
    wheel = build.build_editable(project, **_builds(dists), python=Path(sys.executable))
    with zipfile.ZipFile(wheel) as zf:
        pth = [n for n in zf.namelist() if n.endswith(".pth")]
        assert pth and str(project / "src") in zf.read(pth[0]).decode()


def test_missing_build_system_means_setuptools_legacy(tmp_path: Path) -> None:
    assert build._build_system(tmp_path) == (["setuptools>=40.8.0"], "setuptools.build_meta:__legacy__", None)
    (tmp_path / "pyproject.toml").write_text("[build-system]\nrequires = 'nope'\n")
    with pytest.raises(BuildError, match="requires must be a list of strings"):
        build._build_system(tmp_path)


def test_unknown_build_requirement_is_a_clear_error(project: Path, dists: Distributions) -> None:
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["no-such-backend"]\nbuild-backend = "x"\n'
        '[project]\nname = "x"\nversion = "1"\n')
    from lockenv.errors import LockenvError

    with pytest.raises(LockenvError) as info:
        build.build_editable(project, **_builds(dists), python=Path(sys.executable))
    assert "no-such-backend" in str(info.value)
    assert str(info.value).startswith("build requirements of the project x: ")


def test_a_backend_that_cannot_be_imported_is_a_build_error(project: Path, dists: Distributions) -> None:
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["lockenv-fixture-backend"]\nbuild-backend = "no_such_module"\n'
        '[project]\nname = "x"\nversion = "1"\n')
    with pytest.raises(BuildError) as info:
        build.build_editable(project, **_builds(dists), python=Path(sys.executable))
    assert info.value.message == "the build backend `no_such_module` of the project x could not be imported"
    assert any("no_such_module" in line for line in info.value.details)


WARNING_BACKEND = '''
import os, sys, warnings

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    print("BACKEND-STDOUT chatter")
    print("BACKEND-STDERR License classifiers are deprecated", file=sys.stderr)
    warnings.warn("BACKEND-WARNING License classifiers are deprecated")
    os.makedirs(os.path.join(metadata_directory, "warns-1.0.dist-info"))
    with open(os.path.join(metadata_directory, "warns-1.0.dist-info", "METADATA"), "w") as fh:
        fh.write("Metadata-Version: 2.1\\nName: warns\\nVersion: 1.0\\n\\n")
    return "warns-1.0.dist-info"
'''


def test_a_backends_warnings_are_kept_with_its_output_not_printed(dists: Distributions, tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    import io
    import tarfile
    import warnings

    sdist = tmp_path / "warns-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, text in {
            "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "warnbackend"\n'
                              'backend-path = ["."]\n',
            "warnbackend.py": WARNING_BACKEND,
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(f"warns-1.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = build.prepare_metadata(sdist, **_builds(dists))
    assert "Name: warns" in text
    assert [str(w.message) for w in caught] == []
    out, err = capfd.readouterr()
    assert "BACKEND" not in out + err


def test_a_build_that_needs_itself_fails_naming_the_chain(project: Path, dists: Distributions) -> None:
    # The project is named like the sdist-only package its build requires: resolving its build
    # requirements would build `sddynamic`'s metadata while `sddynamic` is being built.
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["sddynamic"]\nbuild-backend = "lockenv_fixture_backend"\n'
        '[project]\nname = "sddynamic"\nversion = "1"\n')
    with pytest.raises(BuildError) as info:
        build.build_editable(project, python=Path(sys.executable), **_builds(dists))
    assert info.value.message == (
        "building the project sddynamic needs sddynamic built from source, which needs itself: "
        "the project sddynamic -> sddynamic-1.0.tar.gz")
    assert "wheel" in (info.value.hint or "")


def _dynamic_project(path: Path, name: str, gamma: str) -> Path:
    """A project whose build backend (the fixture backend, wrapped in-tree) asks for
    `gamma==<gamma>` through get_requires_for_build_editable, over the same static requires."""
    path.mkdir(parents=True)
    (path / f"{name}.py").write_text("X = 1\n")
    (path / "mybackend.py").write_text(
        "from lockenv_fixture_backend import *  # noqa: F401,F403\n"
        "def get_requires_for_build_editable(config_settings=None):\n"
        f"    return [\"gamma=={gamma}\"]\n")
    (path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["lockenv-fixture-backend"]\nbuild-backend = "mybackend"\n'
        'backend-path = ["."]\n'
        f'[project]\nname = "{name}"\nversion = "0.1"\nrequires-python = ">=3.10"\ndependencies = []\n')
    return path


def test_f17_dynamic_build_requirements_get_a_build_env_of_their_own(tmp_path: Path, index_server: Any,
                                                                      hermetic_env: Path) -> None:
    """F17: two projects with the same static build requires but different dynamic ones
    (gamma 1.0 and gamma 1.2) never share a build env: before, both versions' dist-infos ended up
    in one env that every later build with those static requires used."""
    for name, gamma in (("proja", "1.0"), ("projb", "1.2")):
        project = _dynamic_project(tmp_path / name, name, gamma)
        result = sync(project, index_server)
        assert result.code == 0, result.output
    envs = sorted((hermetic_env / "lockenv-cache").glob("build-envs-v1/*/lib/python3*/site-packages"))
    assert envs
    found = {str(env): sorted(p.name for p in env.glob("gamma-*.dist-info")) for env in envs}
    assert all(len(infos) <= 1 for infos in found.values()), found
    assert sorted(i for infos in found.values() for i in infos) == ["gamma-1.0.dist-info", "gamma-1.2.dist-info"]
