"""Private indexes end to end: a real pypiserver behind an htpasswd file (the company's index)
and the fixture index as "PyPI". Routing (first index wins, pinned names from their index
only), every credential source with its failure messages, no leak anywhere, plain-http and
TLS trust, proxies."""

from __future__ import annotations

import base64
import os
import stat
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from fixtures.index import IndexServer, LocalServer
from fixtures.private_index import PrivateIndex
from helpers import run_lockenv

USER, PASSWORD = "ci-bot", "Pa55-w0rd-9f3e"

PUBLIC = {
    # What an attacker published on the public index under the private names, higher versions.
    "acme-utils": {"9.0": {}},
    "acme-app": {"9.0": {}},
    "gamma": {"1.0": {}, "1.2": {}},
    "beta": {"1.0": {"dependencies": ["gamma"]}},
}
PRIVATE = {
    "acme-app": {"1.0": {"dependencies": ["acme-utils>=1", "beta"]}},
    "acme-utils": {"1.0": {"dependencies": ["gamma"]}, "1.1": {"dependencies": ["gamma"]}},
    "gamma": {"1.0": {}},
}


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateIndex]:
    with PrivateIndex(tmp_path_factory.mktemp("pypiserver"), PRIVATE, user=USER,
                      password=PASSWORD) as idx:
        yield idx


@pytest.fixture
def public() -> Iterator[IndexServer]:
    with IndexServer(PUBLIC) as srv:
        yield srv


def pyproject(project: Path, url: str, *, deps: tuple[str, ...] = ("acme-app",),
              explicit: bool = True, sources: tuple[str, ...] = ("acme-app", "acme-utils"),
              extra: str = "", name: str = "internal") -> None:
    project.mkdir(parents=True, exist_ok=True)
    pins = "\n".join(f'{s} = {{ index = "{name}" }}' for s in sources)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "app"
        version = "0.1"
        requires-python = ">=3.10"
        dependencies = [{", ".join(f'"{d}"' for d in deps)}]

        [tool.lockenv]
        {extra}

        [[tool.lockenv.index]]
        name = "{name}"
        url = "{url}"
        explicit = {"true" if explicit else "false"}

        [tool.lockenv.sources]
        """) + pins + "\n")


def with_creds(url: str, user: str = USER, password: str = PASSWORD) -> str:
    return url.replace("http://", f"http://{user}:{password}@")


def lock(project: Path, public: IndexServer, **env: str) -> Any:
    return run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": public.json_url, **env})


def locked(project: Path) -> dict[str, tuple[str, str]]:
    """name → (version, index) from pylock.toml."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    data = tomllib.loads((project / "pylock.toml").read_text())
    return {p["name"]: (p["version"], p.get("index", "")) for p in data["packages"]}


def asked(srv: IndexServer) -> set[str]:
    """The project names the fixture index ("PyPI") was asked about, in any form."""
    names = set()
    for r in srv.requests:
        parts = [p for p in r.path.split("?")[0].split("/") if p]
        if len(parts) >= 2 and parts[0] in ("pypi", "simple"):
            names.add(parts[1])
        if len(parts) >= 2 and parts[0] == "files":
            names.add(parts[1])
    return names


# -- routing ----------------------------------------------------------------------------------

def test_pinned_names_come_only_from_their_index_direct_and_transitive(
        project: Path, public: IndexServer, private: PrivateIndex) -> None:
    # acme-app is direct, acme-utils only transitive (acme-app needs it); both are pinned.
    # The public index has both at 9.0: never chosen, never even asked.
    pyproject(project, with_creds(private.url))
    result = lock(project, public)
    assert result.code == 0, result.output
    pins = locked(project)
    assert pins["acme-app"] == ("1.0", private.url)
    assert pins["acme-utils"] == ("1.1", private.url)
    assert pins["beta"][1] == public.simple_url and pins["gamma"] == ("1.2", public.simple_url)
    assert not {"acme-app", "acme-utils", "acme_app", "acme_utils"} & asked(public), \
        sorted(r.path for r in public.requests)
    assert "gamma" in asked(public)  # the public index was used for what it should serve
    text = (project / "pylock.toml").read_text()
    assert PASSWORD not in text and USER not in text


def test_first_index_that_has_a_name_wins_and_later_ones_are_never_asked(
        project: Path, public: IndexServer, private: PrivateIndex) -> None:
    # `internal` is searched (not explicit) before PyPI: it has gamma 1.0, so gamma comes from
    # it even though PyPI has 1.2; beta it does not have, so PyPI serves that.
    pyproject(project, with_creds(private.url), deps=("gamma", "beta"), explicit=False,
              sources=())
    result = lock(project, public)
    assert result.code == 0, result.output
    pins = locked(project)
    assert pins["gamma"] == ("1.0", private.url)
    assert pins["beta"] == ("1.0", public.simple_url)
    assert "gamma" not in asked(public) and "beta" in asked(public)


def test_a_pin_to_an_unknown_index_names_the_known_ones(project: Path, public: IndexServer,
                                                         private: PrivateIndex) -> None:
    pyproject(project, private.url)
    text = (project / "pyproject.toml").read_text() + 'gamma = { index = "privat" }\n'
    (project / "pyproject.toml").write_text(text)
    result = lock(project, public)
    assert result.code == 2
    assert "`gamma` is pinned to index `privat`, which is not declared" in result.stderr
    assert "hint: declared indexes: `internal`" in result.stderr
    assert not public.requests and not (project / "pylock.toml").exists()


@pytest.mark.parametrize("name", ["Internal", "in_ternal", "", "a.b"])
def test_an_index_name_outside_a_z_0_9_dash_is_an_error(project: Path, public: IndexServer,
                                                          name: str) -> None:
    pyproject(project, "https://example.invalid/simple/", name=name, sources=())
    result = lock(project, public)
    assert result.code == 2 and "invalid index name" in result.stderr, result.output
    assert "lower-case letters, digits and `-`" in result.stderr


# -- credentials: every source, its failures ------------------------------------------------

def keyring_on_path(tmp_path: Path, password: str) -> dict[str, str]:
    """A `keyring` command (the CLI the keyring package installs, as pip and uv call it):
    answers `keyring get URL USER` from a file, logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    store = tmp_path / "keyring-store"
    store.write_text(password)
    script = bin_dir / "keyring"
    script.write_text(f"""#!{sys.executable}
import sys
open({str(tmp_path / "keyring.log")!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["get"] and sys.argv[3:] == [{USER!r}]:
    print(open({str(store)!r}).read())
else:
    sys.exit(1)
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def netrc_file(tmp_path: Path, password: str) -> dict[str, str]:
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.1 login {USER} password {password}\n")
    path.chmod(0o600)
    return {"NETRC": str(path)}


SOURCES = ["url", "env", "netrc", "keyring"]


def credential_setup(source: str, tmp_path: Path, project: Path, private: PrivateIndex,
                     password: str) -> tuple[dict[str, str], str]:
    """Configure `source` to give `password`; returns (env, how the message names it)."""
    if source == "url":
        pyproject(project, with_creds(private.url, password=password))
        return {}, "the index URL"
    pyproject(project, private.url, extra='keyring-provider = "subprocess"'
              if source == "keyring" else "")
    if source == "env":
        return ({"LOCKENV_INDEX_INTERNAL_USERNAME": USER,
                 "LOCKENV_INDEX_INTERNAL_PASSWORD": password},
                "LOCKENV_INDEX_INTERNAL_USERNAME/PASSWORD")
    if source == "netrc":
        env = netrc_file(tmp_path, password)
        return env, f"{env['NETRC']} (machine 127.0.0.1)"
    env = keyring_on_path(tmp_path, password)
    return {**env, "LOCKENV_INDEX_INTERNAL_USERNAME": USER}, "the keyring"


@pytest.mark.parametrize("source", SOURCES)
def test_each_credential_source_works(source: str, tmp_path: Path, project: Path,
                                      public: IndexServer, private: PrivateIndex) -> None:
    env, _ = credential_setup(source, tmp_path, project, private, PASSWORD)
    result = lock(project, public, **env)
    assert result.code == 0, result.output
    assert locked(project)["acme-app"] == ("1.0", private.url)
    if source == "keyring":
        calls = (tmp_path / "keyring.log").read_text().splitlines()
        assert calls == [f"get {private.url} {USER}"]  # asked once, after the first 401


@pytest.mark.parametrize("source", SOURCES)
def test_a_wrong_password_names_its_source(source: str, tmp_path: Path, project: Path,
                                           public: IndexServer, private: PrivateIndex) -> None:
    env, named = credential_setup(source, tmp_path, project, private, "not-the-password")
    result = lock(project, public, **env)
    assert result.code == 2, result.output
    assert (f"error: index `internal` ({private.url}): credentials from {named}"
            in result.stderr), result.stderr
    assert "were rejected: 403 Forbidden" in result.stderr  # pypiserver's answer to them
    assert "not-the-password" not in result.output
    assert not (project / "pylock.toml").exists()


@pytest.mark.parametrize("source", ["none", "username-only-url", "username-only-env", "keyring"])
def test_no_password_found_lists_where_it_looked(source: str, tmp_path: Path, project: Path,
                                                 public: IndexServer,
                                                 private: PrivateIndex) -> None:
    env: dict[str, str] = {}
    looked = "the URL, LOCKENV_INDEX_INTERNAL_USERNAME/PASSWORD, ~/.netrc"
    if source == "username-only-url":
        pyproject(project, private.url.replace("http://", f"http://{USER}@"))
    elif source == "keyring":
        pyproject(project, private.url, extra='keyring-provider = "subprocess"')
        env = {**keyring_on_path(tmp_path, PASSWORD), "LOCKENV_INDEX_INTERNAL_USERNAME": "other"}
        looked += ", keyring"
    else:
        pyproject(project, private.url)
        if source == "username-only-env":
            env = {"LOCKENV_INDEX_INTERNAL_USERNAME": USER}
    result = lock(project, public, **env)
    assert result.code == 2, result.output
    assert (f"error: index `internal` ({private.url}) needs credentials; none were found "
            f"(looked in: {looked})") in result.stderr, result.stderr
    assert f"{USER}:" not in result.output


def test_an_auth_failure_is_not_retried(project: Path, public: IndexServer,
                                        make_index: Any) -> None:
    # The fixture index counts requests: one unauthenticated, then nothing more (no keyring).
    srv = make_index(PRIVATE)
    srv.inject("/", "auth", user=USER, password=PASSWORD)
    pyproject(project, srv.simple_url)
    result = lock(project, public)
    assert result.code == 2 and "needs credentials" in result.stderr, result.output
    assert [r.status for r in srv.requests] == [401]
    # Wrong credentials sent: exactly one request, refused, not retried.
    srv.clear_log()
    pyproject(project, with_creds(srv.simple_url, password="wrong"))
    result = lock(project, public)
    assert result.code == 2 and "were rejected: 401" in result.stderr, result.output
    assert [(r.status, r.headers.get("authorization")) for r in srv.requests] == \
        [(401, "present")]


# -- no leak anywhere -------------------------------------------------------------------------

def test_credentials_never_leak_into_any_file_or_output(tmp_path: Path, project: Path,
                                                        public: IndexServer,
                                                        private: PrivateIndex) -> None:
    pyproject(project, private.url)
    env = {"LOCKENV_INDEX_INTERNAL_USERNAME": USER, "LOCKENV_INDEX_INTERNAL_PASSWORD": PASSWORD,
           "LOCKENV_INDEX_URL": public.json_url}
    outputs = [run_lockenv("-v", "lock", cwd=project, env=env),
               run_lockenv("-v", "sync", cwd=project, env=env),
               run_lockenv("-v", "verify", cwd=project, env=env),
               run_lockenv("lock", "--check", cwd=project, env=env)]
    assert [r.code for r in outputs] == [0, 0, 0, 0], [r.output for r in outputs]
    secrets = [PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
               base64.b64encode(PASSWORD.encode()).decode()]
    for r in outputs:
        for secret in secrets:
            assert secret not in r.output
    home = Path(os.environ["HOME"])
    roots = [project, home, Path(os.environ["LOCKENV_CACHE_DIR"])]
    checked = 0
    for root in roots:
        for path in root.rglob("*"):
            if path == project / "pyproject.toml" or not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            checked += 1
            for secret in secrets:
                assert secret.encode() not in data, path
                assert secret not in str(path)
    assert checked > 100  # the venv, the cache, the lock: a real run's files


# -- plain http, proxies, TLS -----------------------------------------------------------------

class _Proxy(BaseHTTPRequestHandler):
    """A forward HTTP proxy: `*.internal.test` names reach 127.0.0.1 on the same port."""

    log: list[tuple[str, str, bool]]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def _forward(self) -> None:
        import http.client
        from urllib.parse import urlsplit

        url = urlsplit(self.path)
        self.server.log.append((url.hostname or "", url.path,  # type: ignore[attr-defined]
                                "Authorization" in self.headers))
        host = "127.0.0.1" if (url.hostname or "").endswith(".internal.test") else url.hostname
        conn = http.client.HTTPConnection(host or "", url.port or 80, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection",)}
        conn.request(self.command, url.path + (f"?{url.query}" if url.query else ""),
                     headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def proxy() -> Iterator[Any]:
    server = LocalServer(("127.0.0.1", 0), _Proxy)
    server.daemon_threads = True
    server.log = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_no_proxy_hosts_are_reached_directly_by_lock_and_sync(
        project: Path, public: IndexServer, proxy: Any) -> None:
    """NO_PROXY names the index's host: lock and sync go straight to it; without it, the same
    requests go through HTTP_PROXY (lockenv reads the proxy settings pip and uv read)."""
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        'dependencies = ["beta"]\n')
    env = {"LOCKENV_INDEX_URL": public.json_url,
           "HTTP_PROXY": f"http://127.0.0.1:{proxy.server_port}", "NO_PROXY": "127.0.0.1,.example.test"}
    for command in ("lock", "sync"):
        result = run_lockenv(command, cwd=project, env=env)
        assert result.code == 0, result.output
    assert proxy.log == [], "a NO_PROXY host was reached through the proxy"
    assert any(r.path.endswith(".whl") for r in public.requests), "the sync downloaded nothing"

    (project / "pylock.toml").unlink()
    public.clear_log()
    result = run_lockenv("lock", cwd=project, env={**env, "NO_PROXY": ".example.test",
                                                    "LOCKENV_CACHE_DIR": str(project / "cold")})
    assert result.code == 0, result.output
    assert ("127.0.0.1", "/pypi/beta/json", False) in proxy.log


def test_plain_http_to_another_host_warns_once_and_goes_through_the_proxy(
        project: Path, public: IndexServer, proxy: Any) -> None:
    mirror = public.json_url.replace("127.0.0.1", "mirror.internal.test")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        'dependencies = ["beta"]\n')
    env = {"LOCKENV_INDEX_URL": mirror, "HTTP_PROXY": f"http://127.0.0.1:{proxy.server_port}"}
    result = run_lockenv("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    warning = f"warning: the default index ({mirror}) is plain http"
    assert result.stderr.count(warning) == 1, result.stderr
    assert ("mirror.internal.test", "/pypi/beta/json", False) in proxy.log  # via HTTP_PROXY
    assert locked(project)["beta"][1] == mirror.replace("/pypi", "/simple/")


def test_credentials_for_plain_http_to_another_host_are_refused_unless_allowed(
        project: Path, public: IndexServer, private: PrivateIndex, proxy: Any) -> None:
    host = "private.internal.test"
    url = private.url.replace("127.0.0.1", host)
    pyproject(project, url)
    env = {"LOCKENV_INDEX_INTERNAL_USERNAME": USER, "LOCKENV_INDEX_INTERNAL_PASSWORD": PASSWORD,
           "HTTP_PROXY": f"http://127.0.0.1:{proxy.server_port}"}
    result = lock(project, public, **env)
    assert result.code == 2, result.output
    assert (f"error: index `internal` ({url}) is plain http on `{host}`; refusing to send it "
            "the credentials from LOCKENV_INDEX_INTERNAL_USERNAME/PASSWORD") in result.stderr
    assert f'"{host}"' in result.stderr and "allow-insecure-host" in result.stderr
    assert not [e for e in proxy.log if e[0] == host]  # nothing was sent to it
    assert PASSWORD not in result.output
    # Allowed: the credentials go (through the proxy), and no warning.
    pyproject(project, url, extra=f'allow-insecure-host = ["{host}:{private.port}"]')
    result = lock(project, public, **env)
    assert result.code == 0, result.output
    assert "plain http" not in result.stderr
    assert any(h == host and auth for h, _path, auth in proxy.log)
    assert locked(project)["acme-app"] == ("1.0", url)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Any]:
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    class Server(LocalServer):
        attempts = 0

        def get_request(self) -> Any:
            sock, addr = self.socket.accept()
            self.attempts += 1
            return context.wrap_socket(sock, server_side=True), addr

    server = Server(("127.0.0.1", 0), Handler)
    server.cert = cert  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_certificate_failure_is_not_retried_and_says_what_to_set(
        project: Path, tls_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        'dependencies = ["beta"]\n')
    url = f"https://127.0.0.1:{tls_server.server_port}/simple/"
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    result = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": url,
                                                   "LOCKENV_HTTP_RETRIES": "3"})
    assert result.code == 2, result.output
    assert ("error: the TLS certificate of 127.0.0.1 could not be verified against the system "
            "trust store") in result.stderr, result.stderr
    assert "SSL_CERT_FILE" in result.stderr and "SSL_CERT_DIR" in result.stderr
    assert tls_server.attempts == 1  # not retried
    # SSL_CERT_FILE replaces the system store: the self-signed CA is now trusted.
    result = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": url,
                                                   "SSL_CERT_FILE": str(tls_server.cert)})
    assert result.code == 2 and "`beta` was not found" in result.stderr, result.output


def test_a_ca_file_that_does_not_load_is_told_once_without_a_traceback(
        project: Path, tls_server: Any, tmp_path: Path) -> None:
    """The CA store loads on its own thread while httpx is imported: its failure there is left
    to the client's own load, which names the variable; nothing else reaches the user."""
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        'dependencies = ["beta"]\n')
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("not a certificate\n")
    url = f"https://127.0.0.1:{tls_server.server_port}/simple/"
    result = run_lockenv("lock", cwd=project, env={"LOCKENV_INDEX_URL": url, "SSL_CERT_FILE": str(bad)})
    assert result.code == 2, result.output
    assert f"cannot load the certificates in SSL_CERT_FILE={bad}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr
    assert tls_server.attempts == 0
    assert not (project / "pylock.toml").exists()


def test_each_index_gets_its_own_credentials_and_no_other_origin_gets_any(
        project: Path, public: IndexServer, make_index: Any) -> None:
    # Two private indexes on one host (127.0.0.1), each with its own user and password: a
    # password sent to the wrong one is a 401 there, and the public index sees no credentials.
    one = make_index({"acme-app": {"1.0": {"dependencies": ["acme-utils", "gamma"]}}})
    two = make_index({"acme-utils": {"1.0": {}}})
    one.inject("/", "auth", user="one", password="pw-one-111")
    two.inject("/", "auth", user="two", password="pw-two-222")
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "app"
        version = "0.1"
        requires-python = ">=3.10"
        dependencies = ["acme-app"]

        [[tool.lockenv.index]]
        name = "one"
        url = "{one.simple_url}"
        explicit = true

        [[tool.lockenv.index]]
        name = "two"
        url = "{two.json_url}"
        explicit = true

        [tool.lockenv.sources]
        acme-app = {{ index = "one" }}
        acme-utils = {{ index = "two" }}
        """))
    env = {"LOCKENV_INDEX_URL": public.json_url,
           "LOCKENV_INDEX_ONE_USERNAME": "one", "LOCKENV_INDEX_ONE_PASSWORD": "pw-one-111",
           "LOCKENV_INDEX_TWO_USERNAME": "two", "LOCKENV_INDEX_TWO_PASSWORD": "pw-two-222"}
    result = run_lockenv("lock", cwd=project, env=env)
    assert result.code == 0, result.output
    pins = locked(project)
    assert pins["acme-app"][1] == one.simple_url
    assert pins["acme-utils"][1] == two.simple_url  # a JSON API base's sibling /simple/
    result = run_lockenv("sync", cwd=project, env=env)
    assert result.code == 0, result.output
    for srv in (one, two):
        assert srv.requests and all(r.status != 401 for r in srv.requests), srv.requests
        assert all(r.headers.get("authorization") == "present" for r in srv.requests)
        assert any("/files/" in r.path for r in srv.requests)  # sync's downloads too
    assert public.requests and not any(r.headers.get("authorization") for r in public.requests)


def test_changing_indexes_or_pins_makes_the_lock_stale(project: Path, public: IndexServer,
                                                       private: PrivateIndex) -> None:
    pyproject(project, private.url)
    env = {"LOCKENV_INDEX_INTERNAL_USERNAME": USER, "LOCKENV_INDEX_INTERNAL_PASSWORD": PASSWORD}
    assert lock(project, public, **env).code == 0
    text = (project / "pylock.toml").read_text()
    assert f'indexes = ["internal {private.url} explicit"]' in text
    assert 'sources = [\n    "acme-app=internal",\n    "acme-utils=internal",\n]' in text
    pyproject(project, private.url, sources=("acme-app",))
    result = run_lockenv("lock", "--check", cwd=project,
                         env={"LOCKENV_INDEX_URL": public.json_url, **env})
    assert result.code == 1, result.output
    assert "removed the pin of `acme-utils` to index `internal`" in result.stderr
    pyproject(project, private.url, explicit=False)
    result = run_lockenv("lock", "--check", cwd=project,
                         env={"LOCKENV_INDEX_URL": public.json_url, **env})
    assert result.code == 1 and "changed the indexes" in result.stderr, result.output


@pytest.mark.parametrize("password", ["pa/s3cr3t", "pa#s3cr3t", "pa?s3cr3t", "12/s3cr3t"])
def test_unencoded_characters_in_a_password_are_refused_without_showing_it(
        project: Path, public: IndexServer, password: str) -> None:
    pyproject(project, f"https://ci:{password}@pypi.internal.example/simple/", sources=())
    result = lock(project, public)
    assert result.code == 2, result.output
    assert "the `url` of index `internal`: its user name or password has an unencoded" \
        in result.stderr
    assert "s3cr3t" not in result.output and not public.requests
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\ndependencies = ["beta"]\n')
    result = run_lockenv("lock", cwd=project, env={
        "LOCKENV_INDEX_URL": f"http://alice:{password}@127.0.0.1:{public.port}/pypi"})
    assert result.code == 2 and "LOCKENV_INDEX_URL: its user name" in result.stderr
    assert "s3cr3t" not in result.output
