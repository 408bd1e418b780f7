"""Unit tests of the resolver's pure parts: targets, fork separators, the lock's file set."""

from __future__ import annotations

from typing import Any

from packaging.markers import Marker

from lockenv.models import DistFile
from lockenv.resolve.requirements import file_tags
from lockenv.resolve.markers import dnf_true, partition, separator, to_marker
from lockenv.resolve.targets import NEWEST_PYTHON_MINOR, PLATFORMS, Target, make_targets
from lockenv.resolve.source import IndexSource, best_file, lock_files


def _file(name: str, yanked: bool = False) -> DistFile:
    return DistFile(name, f"http://x/{name}", "0" * 64, 1, None, None, yanked=yanked)


def test_targets_cover_requires_python_and_five_platforms_newest_first() -> None:
    targets = make_targets(">=3.11")
    minors = sorted({t.python[1] for t in targets})
    assert minors == list(range(11, NEWEST_PYTHON_MINOR + 1))
    assert len(targets) == 5 * len(minors)
    assert targets[0].python == (3, NEWEST_PYTHON_MINOR)
    assert {t.platform.key for t in targets} == {
        "linux-x86_64", "linux-aarch64", "macos-x86_64", "macos-arm64", "windows-amd64"
    }
    # Complete marker environments: packaging's evaluate() needs every key.
    for t in targets:
        assert Marker("python_full_version >= '3.11.0' and os_name != ''").evaluate(t.environment)


def test_targets_narrowed_by_environments_and_patch_floor() -> None:
    targets = make_targets(">=3.10.4,<3.12", ["sys_platform == 'linux' and platform_machine == 'x86_64'"])
    assert [(t.python_full, t.platform.key) for t in targets] == [
        ("3.11.0", "linux-x86_64"), ("3.10.4", "linux-x86_64")
    ]


def test_separator_prefers_python_bounds_then_platform() -> None:
    targets = make_targets(">=3.10,<3.13")
    old = [t for t in targets if t.python < (3, 12)]
    new = [t for t in targets if t.python >= (3, 12)]
    assert separator(old, new) == [[("python_version", "<", "3.12")]]
    win = [t for t in targets if t.platform.sys_platform == "win32"]
    rest = [t for t in targets if t not in win]
    assert separator(win, rest) == [[("sys_platform", "==", "win32")]]


def test_partition_is_exclusive_and_covers_unknown_environments() -> None:
    targets = make_targets(">=3.10,<3.14")
    groups = [
        [t for t in targets if t.python == (3, 10)],
        [t for t in targets if t.python >= (3, 11) and t.platform.sys_platform == "win32"],
        [t for t in targets if t.python >= (3, 11) and t.platform.sys_platform != "win32"],
    ]
    conds = partition(groups)
    for group, cond in zip(groups, conds):
        for t in targets:
            assert dnf_true(cond, t) == (t in group)
    # An environment outside the targets (FreeBSD, Python 3.13) matches exactly one group.
    env = dict(targets[0].environment, sys_platform="freebsd", platform_system="FreeBSD", python_version="3.13")
    hits = [str(to_marker(c)) for c in conds if not to_marker(c).is_empty() and Marker(str(to_marker(c))).evaluate(env)]
    assert len(hits) == 1


def test_lock_files_keeps_py2_py3_and_abi3_wheels_and_drops_unusable_ones() -> None:
    files = [
        _file("six-1.0-py2.py3-none-any.whl"),
        _file("six-1.0-py2-none-any.whl"),
        _file("six-1.0-cp39-cp39-manylinux_2_17_x86_64.whl"),
        _file("six-1.0-cp38-abi3-win_amd64.whl"),
        _file("six-1.0-cp311-cp311-musllinux_1_2_x86_64.whl"),
        _file("six-1.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl"),
        _file("six-1.0.tar.gz"),
    ]
    wheels, sdist = lock_files(files, ">=3.10")
    assert [w.filename for w in wheels] == [
        "six-1.0-cp311-cp311-musllinux_1_2_x86_64.whl",
        "six-1.0-cp38-abi3-win_amd64.whl",
        "six-1.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl",
        "six-1.0-py2.py3-none-any.whl",
    ]
    assert sdist is not None and sdist.filename == "six-1.0.tar.gz"


def test_best_file_is_the_best_ranked_compatible_wheel_on_every_target() -> None:
    """What an installer there picks: the wheel whose best tag ranks first (the file name breaks
    ties), among those whose requires-python admits the target's Python, else the sdist; the
    same answer whatever tag of a multi-tag name matches, and for a tag priority made anew."""
    names = [
        "p-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "p-1-cp312-cp312-manylinux_2_28_aarch64.whl", "p-1-cp39-abi3-manylinux_2_17_x86_64.whl",
        "p-1-cp313-cp313-manylinux_2_28_x86_64.manylinux1_x86_64.whl", "p-1-cp313-cp313-manylinux_2_17_x86_64.whl",
        "p-1-cp313-cp313-macosx_10_13_universal2.whl", "p-1-cp313-cp313-macosx_11_0_arm64.whl",
        "p-1-cp313-cp313-win_amd64.whl", "p-1-cp313-cp313t-win_amd64.whl", "p-1-py2.py3-none-any.whl",
        "p-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", "p-1.tar.gz", "p-1.zip",
    ]
    files = [_file(n) for n in names]
    new_only = DistFile("p-1-cp314-cp314-win_amd64.whl", "http://x/n", "0" * 64, 1, None, ">=3.14")
    for target in make_targets(">=3.10"):
        ranks = target.tag_priority
        for pool in (files, [*files, new_only], [f for f in files if "none-any" not in f.filename],
                     [f for f in files if not f.filename.endswith(".whl")]):
            fits = [f for f in pool if f.filename.endswith(".whl") and any(t in ranks for t in file_tags(f))
                    and (f.requires_python is None or target.python >= (3, 14))]
            ranked = [(min(ranks[t] for t in file_tags(f) if t in ranks), f.filename, f) for f in fits]
            sdists = [f for f in pool if not f.filename.endswith(".whl")]
            want = min(ranked)[2] if ranked else min(sdists, key=lambda f: f.filename)
            assert best_file(pool, ranks, target.python_full) is want
            assert best_file(pool, dict(ranks), target.python_full) is want


def test_best_for_answers_as_best_file_for_the_resolutions_targets_and_others() -> None:
    """The reuse of a pin asks the package source for each target's file of the version; the
    answer worked out once per version (with its representative wheels) is best_file's."""
    names = ["q-2-cp312-cp312-manylinux_2_17_x86_64.whl", "q-2-cp313-cp313-win_amd64.whl",
             "q-2-cp39-abi3-macosx_11_0_arm64.whl", "q-2.tar.gz"]
    files = [_file(n) for n in names]
    targets = make_targets(">=3.11")
    source = IndexSource(None, None, targets)  # type: ignore[arg-type]  # no page or metadata is read
    others = [Target((3, 10), "3.10.0", PLATFORMS[0]), Target((3, 11), "3.11.0", PLATFORMS[1], "pypy")]
    for target in [*targets, *others]:
        assert source.best_for(files, target) is best_file(files, target.tag_priority, target.python_full)
    assert {source.best_for(files, t).filename for t in targets} == set(names)  # type: ignore[union-attr]


def test_lock_files_skips_yanked_files() -> None:
    wheels, sdist = lock_files([_file("a-1-py3-none-any.whl", yanked=True), _file("a-1-py3-none-any.whl")], ">=3.10")
    assert len(wheels) == 1 and not wheels[0].yanked and sdist is None


def test_html_only_simple_index_still_gives_sizes(index_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """PEP 503 HTML pages carry no sizes; the lock still records one for every file."""
    import httpx

    from lockenv.cache import Cache
    from lockenv.dists import Distributions
    from lockenv.index import IndexClient
    from lockenv.lockfile import inputs_from_spec
    from lockenv.models import ProjectSpec
    from lockenv.resolve import resolve

    class HtmlOnly(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.headers["Accept"] = "text/html"
            return super().handle_request(request)

    spec = ProjectSpec(
        root=str(tmp_path), pyproject=str(tmp_path / "pyproject.toml"), name="app",
        requires_python=">=3.10,<3.14", requires_python_declared=True, dependencies=("alpha",),
        optional_dependencies={}, dependency_groups={}, default_groups=(),
        index_url=index_server.simple_url, environments=(), exclude_newer=None, has_build_system=False,
    )
    cache = Cache(tmp_path / "cache")
    with IndexClient(index_server.simple_url, cache=cache, transport=HtmlOnly()) as client, \
            Distributions(client, cache=cache) as dists:
        resolution = resolve(spec, inputs_from_spec(spec), dists).resolution
    files = [f for p in resolution.packages for f in (*p.wheels, *([p.sdist] if p.sdist else []))]
    assert files and all(f.size is not None and f.size > 0 for f in files)
    assert any(r.method == "HEAD" for r in index_server.requests)


def test_a_single_python_reads_as_equality() -> None:
    targets = make_targets(">=3.10,<3.14")
    one = [t for t in targets if t.python == (3, 12)]
    rest = [t for t in targets if t not in one]
    assert separator(one, rest) == [[("python_version", "==", "3.12")]]
    assert str(to_marker(separator(one, rest))) == 'python_version == "3.12"'


def test_the_environments_value_for_unserved_targets_leaves_out_exactly_those() -> None:
    """Whatever set of targets a package leaves unserved, the written-out `environments` value
    (with and without an existing one) keeps every other target and none of them."""
    import random

    from lockenv.resolve.derived import derive_targets
    from lockenv.resolve.unserved import environments_excluding

    targets = make_targets(">=3.10,<3.14")
    targets += derive_targets({("implementation_name", "pypy"), ("sys_platform", "freebsd")}, targets, ())
    rng = random.Random(9)
    shapes = [set(rng.sample(targets, rng.randint(1, len(targets) - 1))) for _ in range(60)]
    shapes += [{t for t in targets if t.platform.key == "macos-x86_64"},
               {t for t in targets if t.python >= (3, 13) or t.implementation == "pypy"}]
    for out in shapes:
        for existing in ((), ("python_version >= '3.10'",)):
            values = environments_excluding(out, targets, existing)
            markers = [Marker(v) for v in values]
            kept = {t for t in targets if any(m.evaluate(t.environment) for m in markers)}
            assert kept == set(targets) - out, (values, sorted(t.name for t in out))


def test_targets_are_derived_from_equality_markers_only() -> None:
    from lockenv.resolve.derived import derive_targets, marker_values

    values = marker_values([Marker("implementation_name == 'pypy' and sys_platform != 'cygwin'"),
                            Marker("'freebsd' == sys_platform or platform_machine == 'AMD64'")])
    assert values == {("implementation_name", "pypy"), ("sys_platform", "freebsd"), ("platform_machine", "AMD64")}
    targets = make_targets(">=3.10,<3.14")
    derived = derive_targets(values, targets, ())
    assert sorted(t.label for t in derived) == [  # every Python the built-in targets have
        "PyPy 3.10 on linux-x86_64", "PyPy 3.11 on linux-x86_64", "PyPy 3.12 on linux-x86_64",
        "PyPy 3.13 on linux-x86_64",
        "Python 3.10 on freebsd-amd64", "Python 3.11 on freebsd-amd64", "Python 3.12 on freebsd-amd64",
        "Python 3.13 on freebsd-amd64",
    ]
    assert derive_targets(values, targets, ("implementation_name == 'cpython'",))[0].platform.key == "freebsd-amd64"
    assert derive_targets(values, targets + derived, ()) == []


def test_partition_of_interleaved_groups_stays_small_and_exclusive() -> None:
    """Three versions of one package chosen across 26 targets with no pattern (a real lock of
    apache-airflow and dbt-core: Python 3.9-3.12, five platforms, PyPy, ppc64le, Emscripten):
    negating the separators would multiply out to 6^7 terms; the conditions come from a
    decision tree instead, true exactly on each group's targets, and every environment outside
    the targets selects exactly one of them."""
    from lockenv.resolve.targets import Platform, Target

    base = {t.name: t for t in make_targets(">=3.9,<3.13")}
    ppc = Platform("linux-ppc64le", "linux", "Linux", "posix", "ppc64le")
    ems = Platform("emscripten-x86_64", "emscripten", "Emscripten", "posix", "x86_64")
    linux = Platform("linux-x86_64", "linux", "Linux", "posix", "x86_64")
    for python, full in (((3, 12), "3.12.0"), ((3, 9), "3.9.0")):
        for target in (Target(python, full, ppc, origin=("platform_machine", "ppc64le")),
                       Target(python, full, ems, origin=("sys_platform", "emscripten")),
                       Target(python, full, linux, "pypy", origin=("implementation_name", "pypy"))):
            base[target.name] = target
    names = [
        "cp312-emscripten-x86_64 cp312-linux-ppc64le cp39-emscripten-x86_64 cp39-linux-aarch64 "
        "cp39-linux-ppc64le cp39-linux-x86_64 cp39-macos-arm64 cp39-macos-x86_64 "
        "cp39-windows-amd64 pypy312-linux-x86_64 pypy39-linux-x86_64",
        "cp310-linux-x86_64 cp310-macos-x86_64 cp310-windows-amd64 cp311-linux-aarch64 "
        "cp311-macos-arm64 cp312-linux-x86_64 cp312-macos-x86_64 cp312-windows-amd64",
        "cp310-linux-aarch64 cp310-macos-arm64 cp311-linux-x86_64 cp311-macos-x86_64 "
        "cp311-windows-amd64 cp312-linux-aarch64 cp312-macos-arm64",
    ]
    groups = [[base[n] for n in line.split()] for line in names]
    assert sum(map(len, groups)) == len(base)
    conds = partition(groups)
    assert sum(map(len, conds)) < 60
    markers = [Marker(str(to_marker(c))) for c in conds]
    for group, cond, marker in zip(groups, conds, markers):
        for t in base.values():
            assert dnf_true(cond, t) == (t in group) == marker.evaluate(t.environment), t.name
    unknown = []
    for t in base.values():
        for change in ({"python_version": "3.13", "python_full_version": "3.13.0"},
                       {"python_version": "3.8", "python_full_version": "3.8.0"},
                       {"sys_platform": "freebsd14", "platform_system": "FreeBSD"},
                       {"platform_machine": "riscv64"}, {"implementation_name": "graalpy"},
                       {"os_name": "java"}):
            unknown.append(dict(t.environment, **change))
    for env in unknown:
        assert sum(m.evaluate(env) for m in markers) == 1, env


class _CrawlIndex:
    """Pages and metadata of `a` (2 needs Python 3.12, 1 does not, 1's wheel needs `b`), `b`,
    and `c` (a Windows wheel and an sdist); records what the crawler asks for, and when `b`'s
    page is started. The pages named in `cached` come "from the cache"."""

    def __init__(self) -> None:
        import threading

        from lockenv.models import CoreMetadata

        def file(name: str, python: str | None = None) -> DistFile:
            return DistFile(name, f"http://x/{name}", "0" * 64, 1, None, python)

        self.files = {"a": {"2": [file("a-2-py3-none-any.whl", ">=3.12")],
                            "1": [file("a-1-py3-none-any.whl", ">=3.8")]},
                      "b": {"1": [file("b-1-py3-none-any.whl")]},
                      "c": {"1": [file("c-1-cp312-cp312-win_amd64.whl"), file("c-1.tar.gz")]}}
        self.cached: set[str] = set()
        self.meta = CoreMetadata
        self.prefetched_pages: list[str] = []
        self.prefetched_metadata: list[str] = []
        self.b_started = threading.Event()

    def project(self, name: str):  # type: ignore[no-untyped-def]
        from lockenv.models import ProjectFiles, VersionFiles

        versions = tuple(VersionFiles(v, False, files=tuple(fs)) for v, fs in self.files[name].items())
        return ProjectFiles(name, versions, "http://x/", from_cache=name in self.cached)  # type: ignore[arg-type]

    def prefetch(self, names) -> None:  # type: ignore[no-untyped-def]
        self.prefetched_pages.extend(sorted(names))
        if "b" in names:
            self.b_started.set()

    def metadata(self, file: DistFile):  # type: ignore[no-untyped-def]
        requires = ("b",) if file.filename.startswith("a-1") else ()
        return self.meta(file.project_name, str(file.version), requires, None, (), "range")

    def prefetch_metadata(self, files) -> None:  # type: ignore[no-untyped-def]
        self.prefetched_metadata.extend(f.filename for f in files)

    def metadata_cached(self, file: DistFile) -> bool:
        return False


def test_the_crawl_reads_the_version_an_older_python_takes_and_its_dependencies() -> None:
    """When the newest allowed version has no file for an environment (it needs a newer
    Python), the crawl goes on with the newest one that has, as the resolver will: its metadata
    and its dependencies' pages are started before the resolver (or the reuse of another
    target's pins) asks for them one at a time."""
    from lockenv.resolve.prefetch import Prefetcher
    from lockenv.resolve.requirements import requirement_to_reqs
    from packaging.requirements import Requirement

    index = _CrawlIndex()
    target = Target((3, 10), "3.10.0", PLATFORMS[0])
    crawler = Prefetcher(IndexSource(index, index))
    try:
        crawler.speculate(requirement_to_reqs(Requirement("a"), "main"), target.environment, target.tag_priority)
        assert index.b_started.wait(30), "the crawl stopped at a 2, which has no file for Python 3.10"
    finally:
        crawler.close()
    assert "a-1-py3-none-any.whl" in index.prefetched_metadata


def test_the_resolvers_dependencies_have_their_pages_started_even_when_crawled_before() -> None:
    """A requirement crawled already (for another environment, or by a crawler thread that has
    not started its page yet) has its page started when it is first passed on, not by the
    crawler thread: the resolver must find the request in flight rather than fetch the pages
    it needs one by one. Once a run: the resolver passes the same names again for every
    target (a page asked for is in flight or done)."""
    from lockenv.resolve.prefetch import Prefetcher
    from lockenv.resolve.requirements import requirement_to_reqs
    from packaging.requirements import Requirement

    index = _CrawlIndex()
    target = Target((3, 12), "3.12.0", PLATFORMS[0])
    crawler = Prefetcher(IndexSource(index, index))
    try:
        reqs = requirement_to_reqs(Requirement("b"), "main")
        crawler.speculate(reqs, target.environment, target.tag_priority)
        assert index.prefetched_pages == ["b"]
        crawler.speculate(reqs, target.environment, target.tag_priority, new_only=True)
        crawler.speculate(reqs, Target((3, 12), "3.12.0", PLATFORMS[1]).environment, target.tag_priority)
        assert index.prefetched_pages == ["b"]
    finally:
        crawler.close()


class _SharedCrawlIndex(_CrawlIndex):
    """`_CrawlIndex` where `a 2` (Python 3.12+) needs `b` on Windows only and `a 1` needs `c`,
    each file with a hash of its own; counts the metadata reads of each file."""

    def __init__(self) -> None:
        import collections
        import dataclasses
        import hashlib
        import threading

        super().__init__()
        self.files = {name: {v: [dataclasses.replace(f, sha256=hashlib.sha256(f.url.encode()).hexdigest()) for f in fs]
                             for v, fs in versions.items()} for name, versions in self.files.items()}
        self.reads: collections.Counter[str] = collections.Counter()
        self._reads_lock = threading.Lock()
        self.c_started = threading.Event()

    def prefetch(self, names) -> None:  # type: ignore[no-untyped-def]
        super().prefetch(names)
        if "c" in names:
            self.c_started.set()

    def metadata(self, file: DistFile):  # type: ignore[no-untyped-def]
        with self._reads_lock:
            self.reads[file.filename] += 1
        requires = {"a-2": ("b; sys_platform == 'win32'",), "a-1": ("c",)}.get(file.filename[:3], ())
        return self.meta(file.project_name, str(file.version), requires, None, (), "range")


def test_one_crawl_of_a_requirement_serves_all_the_targets_that_need_it() -> None:
    """The crawl ahead walks a requirement once for all the far-apart targets: the version each
    target takes (Python 3.12 takes `a 2`, 3.10 the older `a 1`), each distinct file's metadata
    read once, and each dependency crawled for the targets it applies to (`b` is for Windows
    only: on a Linux-only project its page is never asked for)."""
    for environments, expected_pages in ((["sys_platform == 'linux'"], ["a", "c"]), ([], ["a", "b", "c"])):
        index = _SharedCrawlIndex()
        targets = make_targets(">=3.10,<3.13", environments)
        _crawl_until(index, targets, "a", index.c_started,
                     "the crawl never reached `c`, which only Python 3.10 needs")
        assert sorted(set(index.prefetched_pages)) == expected_pages
        assert index.reads["a-2-py3-none-any.whl"] == index.reads["a-1-py3-none-any.whl"] == 1
        assert sorted({f for f in index.prefetched_metadata if f.startswith("a-")}) == [
            "a-1-py3-none-any.whl", "a-2-py3-none-any.whl"]


def _crawl_until(index: Any, targets: Any, name: str, event: Any, failure: str) -> None:
    """Crawl from the requirement `name` over `targets` until `event` is set (`failure` if it
    is not within 30 s), then stop the crawler."""
    from lockenv.resolve.prefetch import Prefetcher
    from lockenv.resolve.requirements import requirement_to_reqs
    from packaging.requirements import Requirement

    crawler = Prefetcher(IndexSource(index, index, targets))
    try:
        crawler.speculate_targets([(r, targets) for r in requirement_to_reqs(Requirement(name), "main")])
        assert event.wait(30), failure
    finally:
        crawler.close()


class _PythonsIndex(_SharedCrawlIndex):
    """`n 2` has a Windows wheel for Python 3.12 only, `n 1` for 3.10 and 3.12."""

    def __init__(self) -> None:
        import hashlib
        import threading

        super().__init__()

        def wheel(name: str) -> DistFile:
            return DistFile(name, f"http://x/{name}", hashlib.sha256(name.encode()).hexdigest(), 1, None, None)

        self.files = {"n": {"2": [wheel("n-2-cp312-cp312-win_amd64.whl")],
                            "1": [wheel("n-1-cp310-cp310-win_amd64.whl"), wheel("n-1-cp312-cp312-win_amd64.whl")]}}
        self.old_read = threading.Event()

    def prefetch_metadata(self, files) -> None:  # type: ignore[no-untyped-def]
        files = list(files)
        super().prefetch_metadata(files)
        if any(f.filename.startswith("n-1-cp310") for f in files):
            self.old_read.set()


def test_a_version_only_older_pythons_take_has_only_their_wheels_read_ahead() -> None:
    """The metadata started for a version is what the targets that may take it read: the
    crawl starts `n 2`'s wheel for Python 3.12 and `n 1`'s for 3.10 (which cannot install `n 2`),
    not `n 1`'s Python 3.12 wheel, which no target reads; a pin on Python 3.10 starts what the
    targets that may reuse it (3.10 and older) read, a pin on 3.12 both Pythons' wheels."""
    from packaging.version import Version

    from lockenv.resolve.prefetch import Prefetcher

    targets = make_targets(">=3.10,<3.13", ["sys_platform == 'win32'"])
    index = _PythonsIndex()
    _crawl_until(index, targets, "n", index.old_read, "the crawl never started `n 1`, which Python 3.10 takes")
    assert sorted(index.prefetched_metadata) == ["n-1-cp310-cp310-win_amd64.whl", "n-2-cp312-cp312-win_amd64.whl"]
    for python, expected in (("3.10.0", ["n-1-cp310-cp310-win_amd64.whl"]),
                             ("3.12.0", ["n-1-cp310-cp310-win_amd64.whl", "n-1-cp312-cp312-win_amd64.whl"])):
        index = _PythonsIndex()
        source = IndexSource(index, index, targets)
        crawler = Prefetcher(source)
        try:
            crawler.prefetch_version(source.versions("n")[Version("1")], targets[0].tag_priority, python)
        finally:
            crawler.close()
        assert sorted(index.prefetched_metadata) == expected


def test_the_targets_derived_from_the_graph_have_the_metadata_they_reuse_started() -> None:
    """A target derived from the graph (emscripten, ppc64le...) on a platform no target has
    reads, reusing the pins, each pin's own file (there are no representative wheels there).
    `prefetch_targets` starts those reads together (the main thread did them one at a time):
    the file the target installs, a wheel standing in for an sdist as `metadata_file` does;
    nothing on a platform with representatives (read with them), nor for a page from the
    cache (a warm lock)."""
    from packaging.version import Version

    from lockenv.resolve.prefetch import Prefetcher
    from lockenv.resolve.requirements import Candidate
    from lockenv.resolve.single import TargetResult

    index = _CrawlIndex()
    windows = make_targets(">=3.12", ["sys_platform == 'win32'"])

    def pin(name: str, version: str) -> Candidate:
        files = tuple(index.files[name][version])
        return Candidate(name, Version(version), None, files[0], files)  # type: ignore[arg-type]

    results = [TargetResult(windows[0], {("a", None): pin("a", "2"), ("c", None): pin("c", "1")})]
    linux = Target((3, 12), "3.12.0", PLATFORMS[0])
    for cached, expected in ((set(), ["a-2-py3-none-any.whl", "c-1-cp312-cp312-win_amd64.whl"]),
                             ({"a"}, ["c-1-cp312-cp312-win_amd64.whl"])):
        index.cached, index.prefetched_metadata = cached, []
        source = IndexSource(index, index, windows)
        source.versions("a")
        crawler = Prefetcher(source)
        try:
            crawler.prefetch_targets(results, [linux, windows[-1]])
        finally:
            crawler.close()
        assert sorted(index.prefetched_metadata) == expected


def test_the_derived_targets_have_the_pins_reuse_tries_first_started() -> None:
    """`_reuse` tries the latest result on the same or a newer Python first, and each derived
    target the derived ones before it: those pins are what the derived targets read, started
    with those of the same Python's result (where they do not fit, resolvelib's preferences
    lead there). An older Python's result (the oldest CPython comes last) is never reused
    there: its files are not read for nothing."""
    from packaging.version import Version

    from lockenv.resolve.prefetch import Prefetcher
    from lockenv.resolve.requirements import Candidate
    from lockenv.resolve.single import TargetResult

    index = _CrawlIndex()
    windows = make_targets(">=3.11", ["sys_platform == 'win32'"])

    def pin(name: str, version: str) -> Candidate:
        files = tuple(index.files[name][version])
        return Candidate(name, Version(version), None, files[0], files)  # type: ignore[arg-type]

    on = {minor: next(t for t in windows if t.python == (3, minor)) for minor in (11, 12, 13)}
    results = [TargetResult(on[13], {("a", None): pin("a", "1")}),
               TargetResult(on[12], {("a", None): pin("a", "2")}),
               TargetResult(on[11], {("c", None): pin("c", "1")})]
    derived = [Target((3, 13), "3.13.0", PLATFORMS[0]), Target((3, 12), "3.12.0", PLATFORMS[0])]
    crawler = Prefetcher(IndexSource(index, index, windows))
    try:
        crawler.prefetch_targets(results, derived)
    finally:
        crawler.close()
    assert index.prefetched_metadata == ["a-1-py3-none-any.whl", "a-2-py3-none-any.whl"]


# -- the merge's unions ------------------------------------------------------------------------

def _libdev_like(groups: tuple[str, ...], pythons: tuple[str, ...]) -> str:
    """An OR of conjunctions like a library's lock on `>=3.8` with groups and forks by Python
    and PyPy: what made one dep-logic union take 18 s."""
    return " or ".join(
        f'"{g}" in dependency_groups and python_version == "{py}" and '
        f'platform_python_implementation {op} "PyPy" and sys_platform != "emscripten"'
        for g in groups for py in pythons for op in ("==", "!="))


def _grid() -> list[dict[str, Any]]:
    return [{"python_version": py, "python_full_version": f"{py}.1", "platform_python_implementation": impl,
             "implementation_name": impl.lower(), "sys_platform": plat, "platform_machine": "x86_64",
             "platform_system": "", "os_name": "posix", "platform_release": "", "platform_version": "",
             "implementation_version": f"{py}.1", "extra": "", "extras": frozenset(),
             "dependency_groups": frozenset(gs)}
            for py in ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
            for impl in ("CPython", "PyPy") for plat in ("linux", "win32", "emscripten")
            for gs in ((), ("test",), ("docs",), ("lint",), ("test", "docs", "lint"))]


def test_a_union_too_big_for_dep_logic_is_kept_as_an_or_of_conjunctions(monkeypatch: Any) -> None:
    import dep_logic.markers.multi
    import dep_logic.markers.union
    from dep_logic.markers import parse_marker

    from lockenv.resolve import graph
    from lockenv.resolve.normal import Algebra

    a_text = _libdev_like(("test", "docs"), ("3.8", "3.9", "3.10"))
    b_text = _libdev_like(("lint", "test"), ("3.9", "3.11", "3.12"))
    a, b = parse_marker(a_text), parse_marker(b_text)
    assert graph._clauses(a) * graph._clauses(b) > graph._CNF_LIMIT

    def refuse(*markers: object) -> object:
        raise AssertionError("dep-logic's CNF union was asked for a union of this size")

    monkeypatch.setattr(dep_logic.markers.union, "union", refuse)
    monkeypatch.setattr(dep_logic.markers.multi, "union", refuse)
    unsimplified: set[Any] = set()
    node = (graph.Root("main"), "")
    merged = graph._union(a, b, node, unsimplified, Algebra())
    assert node in unsimplified, "the node stays unsimplified, so the fixed point is reached"
    again = graph._union(merged, b, node, unsimplified, Algebra())
    assert str(again) == str(merged), "a conjunction already there is not added twice"
    expected_a, expected_b, got = Marker(a_text), Marker(b_text), Marker(str(merged))
    for env in _grid():
        want = expected_a.evaluate(env, "lock_file") or expected_b.evaluate(env, "lock_file")
        assert got.evaluate(env, "lock_file") == want, env


def test_a_small_union_is_dep_logics_own() -> None:
    from dep_logic.markers import parse_marker

    from lockenv.resolve import graph
    from lockenv.resolve.normal import Algebra

    a = parse_marker('python_version < "3.10" and "test" in dependency_groups')
    b = parse_marker('python_version >= "3.10" and "test" in dependency_groups')
    unsimplified: set[Any] = set()
    assert str(graph._union(a, b, (graph.Root("main"), ""), unsimplified, Algebra())) == str(a | b)
    assert not unsimplified


def test_a_marker_dep_logic_rewrites_back_and_forth_settles() -> None:
    """A real lock (pandas 1.5.3 on Windows, pandas >= 2 elsewhere, numpy 2.2.6 reached from
    both, PyPy and Emscripten in the graph) failed with "the lock's markers did not settle":
    dep-logic wrote numpy's marker as an OR of ANDs, then, adding the same environments from
    the other edge, as an AND of ORs, and back, on every pass. The graph below is that lock's,
    cut down to the five edges that still looped; the marker must settle and be exact."""
    from dep_logic.markers import parse_marker

    from lockenv.resolve import graph
    from lockenv.resolve.requirements import Ident

    root = (graph.Root("main"), "")
    old, new, numpy = (Ident("pandas", None), "1.5.3"), (Ident("pandas", None), "2.3.3"), (Ident("numpy", None), "2.2.6")
    edges = [(root, old, 'sys_platform == "win32"'),
             (root, new, 'sys_platform != "win32" and python_version >= "3.9"'),
             (new, numpy, 'python_version < "3.11"'), (old, numpy, 'python_version >= "3.10"'),
             (new, numpy, 'python_version >= "3.12"')]
    forks = {
        old: 'python_version < "3.9" and (sys_platform == "darwin" or sys_platform == "emscripten" '
             'or sys_platform == "linux") or sys_platform == "win32"',
        new: 'python_version < "3.11" and python_version >= "3.9" and (sys_platform == "darwin" or '
             'sys_platform == "linux") or python_version >= "3.9" and sys_platform == "emscripten"',
        numpy: 'python_version == "3.10" and (sys_platform == "darwin" or sys_platform == "win32" or '
               'sys_platform == "linux") or python_version >= "3.10" and sys_platform == "emscripten"',
    }
    g = graph._Graph()
    for parent, child, text in edges:
        g.edge_targets[(parent, child, text)] = set()
        g.edge_marker[(parent, child, text)] = parse_marker(text)
    marker = graph._propagate(g, {n: parse_marker(t) for n, t in forks.items()})

    def holds(text: str, env: dict[str, str]) -> bool:
        return Marker(text).evaluate(env, "lock_file")

    for env in _grid():
        for plat in ("linux", "win32", "emscripten", "darwin"):
            e = {**env, "sys_platform": plat}
            via_old = holds(edges[0][2], e) and holds(forks[old], e) and holds(edges[3][2], e)
            via_new = holds(edges[1][2], e) and holds(forks[new], e) and (holds(edges[2][2], e) or holds(edges[4][2], e))
            want = (via_old or via_new) and holds(forks[numpy], e)
            assert holds(str(marker[numpy]), e) == want, (e, str(marker[numpy]))


def test_the_merges_marker_algebra_gives_dep_logics_own_results() -> None:
    """The propagation's `Algebra` follows dep-logic's normal forms step by step, remembering
    what it computed: every AND and OR of these markers (ranges that merge, platform sets,
    extras and groups, terms shared between sides, contradictions) has dep-logic's text."""
    import random

    import dep_logic.utils
    from dep_logic.markers import parse_marker

    from lockenv.resolve.normal import Algebra

    atoms = ['python_version < "3.10"', 'python_version >= "3.9"', 'python_version == "3.11"',
             'python_full_version >= "3.9.1"', 'sys_platform == "linux"', 'sys_platform == "win32"',
             'sys_platform != "emscripten"', 'platform_python_implementation == "PyPy"',
             'platform_python_implementation != "PyPy"', 'platform_machine == "ppc64le"',
             '"test" in dependency_groups', '"docs" in dependency_groups', '"all" in extras',
             '"rich" in extras', 'implementation_name == "cpython"']
    rng = random.Random(11)

    def conj() -> str:
        return " and ".join(rng.sample(atoms, rng.randint(1, 2)))

    def text() -> str:
        return " or ".join(f"({conj()})" for _ in range(rng.randint(1, 2)))  # more: seconds a `|`

    markers = [parse_marker(text()) for _ in range(60)]
    # dep-logic remembers its normal forms per process by equality, and `sys_platform == "a" or
    # sys_platform == "b"` equals the same values in another order: what ran before in this
    # process could then decide the order dep-logic writes. Both start from nothing here.
    dep_logic.utils.cnf.cache_clear()
    dep_logic.utils.dnf.cache_clear()
    algebra = Algebra()  # one for all, as one propagation: what it remembers must not leak across
    for _ in range(120):
        a, b = rng.choice(markers), rng.choice(markers)
        assert str(algebra.and_(a, b)) == str(a & b), (str(a), str(b))
        assert str(algebra.or_(a, b)) == str(a | b), (str(a), str(b))


def test_an_and_of_library_markers_builds_no_normal_form_past_the_limit(monkeypatch: Any) -> None:
    """A library with extras, groups, include-groups and forks by Python, PyPy, ppc64le and
    Emscripten (a real project: 113 s of marker propagation, uv 0.6 s): the AND below of one
    package's marker with a fork condition made dep-logic's `union_simplify` union the unshared
    parts of two ANDs of 4-5 terms, whose CNF's DNF has up to 16,384 conjunctions (~1 s each,
    20,000 such unions in the lock). Past the limit the union is left unsimplified; the AND
    comes out exact, and (as in that lock) with the same text."""
    from dep_logic.markers import parse_marker

    from lockenv.resolve import normal

    pm_text = (
        '"async" in extras and platform_python_implementation != "CPython" and python_version >= "3.10"'
        ' and implementation_name != "PyPy" or "async" in extras and python_version >= "3.10" and'
        ' "crypto" in extras and implementation_name != "PyPy" or "async" in extras and python_version'
        ' >= "3.10" and os_name == "nt" and (implementation_name != "pypy" and implementation_name !='
        ' "PyPy") or "crypto" in extras and python_version >= "3.10" and platform_python_implementation'
        ' != "PyPy" and implementation_name != "PyPy" or "http2" in extras and'
        ' platform_python_implementation != "CPython" and python_version >= "3.10" and'
        ' implementation_name != "PyPy"')
    fork_text = (
        'platform_machine != "ppc64le" and platform_python_implementation != "PyPy" and python_version'
        ' == "3.10" and sys_platform != "emscripten" or platform_machine == "ppc64le" and python_version'
        ' >= "3.10" or platform_python_implementation == "PyPy" and python_version >= "3.10" or'
        ' python_version >= "3.10" and sys_platform == "emscripten"')
    built = normal.Algebra._build

    def bounded(self: Any, conjunctive: bool, markers: Any) -> Any:
        assert len(markers) <= normal.DNF_LIMIT + normal.CNF_LIMIT, f"a normal form of {len(markers)} terms"
        return built(self, conjunctive, markers)

    monkeypatch.setattr(normal.Algebra, "_build", bounded)
    got = normal.Algebra().and_(parse_marker(pm_text), parse_marker(fork_text))
    pm, fork, result = Marker(pm_text), Marker(fork_text), Marker(str(got))
    for env in _grid():
        for machine, os_name, name in (("x86_64", "posix", "cpython"), ("ppc64le", "posix", "cpython"),
                                       ("AMD64", "nt", "cpython"), ("x86_64", "posix", "pypy")):
            for extras in ((), ("async",), ("crypto",), ("http2",), ("async", "crypto")):
                e = {**env, "platform_machine": machine, "os_name": os_name, "implementation_name": name,
                     "extras": frozenset(extras)}
                want = pm.evaluate(e, "lock_file") and fork.evaluate(e, "lock_file")
                assert result.evaluate(e, "lock_file") == want, e
    assert len(str(got)) == 2812  # dep-logic's own simplification of it, as before the limit
