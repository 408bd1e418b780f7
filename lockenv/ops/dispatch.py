"""`BuildDispatch`: the `BuildContext` builds get from the use cases (uv's `BuildDispatch`). A
build's requirements are resolved by the resolver for the build environment alone, against the
same index (through the same `Distributions`, so an sdist among them is built with the same
build stack), and installed with lockenv's wheel installer. Living here, above resolve, sync
and build, it lets build.py import neither."""

from __future__ import annotations

from collections.abc import Sequence

from lockenv.build import BuildEnv, Pin
from lockenv.cache import Cache
from lockenv.dists import Distributions, PackageIndex
from lockenv.environment import Probe
from lockenv.errors import BuildError
from lockenv.ui import Reporter



class BuildDispatch:
    """A `build.BuildContext` over one `Distributions`."""

    def __init__(self, dists: Distributions) -> None:
        self.dists = dists

    @property
    def reporter(self) -> Reporter:
        return self.dists.reporter

    @property
    def index_url(self) -> str:
        return self.dists.index_url

    def resolve(self, requirements: Sequence[str], env: Probe) -> Sequence[Pin]:
        from lockenv.resolve import resolve_single

        return resolve_single(list(requirements), self.dists, environment=env.markers,
                              tags=env.tag_objects())

    def install(self, pins: Sequence[Pin], env: BuildEnv, label: str) -> None:
        """Install the pins `env` lacks, wheels only: lockenv does not build build requirements
        from source (a build inside a build, and the way to a build that needs itself)."""
        from lockenv.sync.install.wheel import install_wheel, scheme_for, validate_wheel
        from lockenv.sync.scan import scan

        present = {d.name: d.version for d in scan(env.probe.site_dirs, check=False)}
        todo = [(n, v, f) for n, v, f in pins if present.get(n) != v]
        sdists = [f.filename for _n, _v, f in todo if not f.is_wheel]
        if sdists:
            raise BuildError(
                f"{label}: build requirement {', '.join(sdists)} has no wheel for this Python",
                hint="lockenv does not build build requirements from source",
            )
        files = self.dists.client.download_many([f for _n, _v, f in todo])
        for name, _version, dist in todo:
            scheme = scheme_for(env.probe.paths, env.probe.version, name)
            info = validate_wheel(files[dist.filename], name=name, scheme=scheme, venv=env.path,
                                  cache=self.dists.cache, sha256=dist.sha256)
            install_wheel(info, scheme=scheme, python=env.python, cache=self.dists.cache,
                          source_sha256=dist.sha256, source_name=dist.filename)


def distributions(client: PackageIndex, *, cache: Cache, reporter: Reporter) -> Distributions:
    """The `Distributions` of one index with builds dispatched here: what the use cases open."""
    return Distributions(client, cache=cache, reporter=reporter, build_context=BuildDispatch)
