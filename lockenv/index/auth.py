"""Credentials for one package index: where they are looked up (in order), the policy on where
they may be sent, and the messages that name exactly which credential failed.

Looked up per index, first found wins:
1. the index URL's own `user:password@`;
2. `LOCKENV_INDEX_<NAME>_USERNAME` / `_PASSWORD` (named indexes only);
3. the netrc file (`NETRC`, else ~/.netrc): an exact `machine` entry, never `default` (a
   catch-all entry would go to every host, PyPI included);
4. with `keyring-provider = "subprocess"`: `keyring get <index URL> <username>`, only after the
   index answered 401 (a subprocess per run is not free), and only when a user name is known.
A user name without a password is never sent (as `user:`). Nothing here prints a secret: the
sources are named ("~/.netrc (machine host)"), never their values.
"""

from __future__ import annotations

import base64
import ipaddress
import netrc
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from lockenv.error_context import ContextFields
from lockenv.errors import AuthError
from lockenv.urls import SafeUrl

KEYRING_TIMEOUT = 30.0
"""Seconds the `keyring` command may take (it may ask a desktop agent to unlock)."""


@dataclass(frozen=True)
class Credentials:
    """A user name and password, and where they came from (for messages)."""

    username: str = field(repr=False)
    password: str = field(repr=False)
    source: str
    """e.g. "the index URL", "LOCKENV_INDEX_INTERNAL_USERNAME/PASSWORD", "~/.netrc (machine h)"."""

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(URL without user-info, user name or None, password or None); percent-decoded."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, (unquote(password) if sep else None)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: what credentials are tied to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def is_local(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1: plain http there never leaves the machine."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def env_prefix(name: str) -> str:
    """`LOCKENV_INDEX_<NAME>_`: NAME upper-cased, `-` → `_`."""
    return "LOCKENV_INDEX_" + name.upper().replace("-", "_") + "_"


def netrc_path() -> tuple[Path, str]:
    """(the netrc file, how messages name it)."""
    env = os.environ.get("NETRC")
    if env:
        return Path(env), env
    return Path.home() / ".netrc", "~/.netrc"


class CredentialLookup:
    """Everything about one index's credentials: the lookup chain, the insecure-host policy
    and the error messages. Thread-safe once built (it only reads)."""

    def __init__(self, url: str, *, name: str | None, keyring: bool = False,
                 allow_insecure_hosts: tuple[str, ...] = ()) -> None:
        clean, self._user, self._password = split_credentials(url)
        self.url = SafeUrl(clean)
        self.name = name
        self.keyring = keyring
        self.origin = origin(clean)
        scheme, host, port = self.origin
        self.insecure = scheme == "http" and not is_local(host)
        """Plain http to a host that is not this machine."""
        self.insecure_allowed = host in allow_insecure_hosts or f"{host}:{port}" in \
            allow_insecure_hosts
        self._env_user: str | None = None
        self._env_password: str | None = None
        if name:
            prefix = env_prefix(name)
            self._env_user = os.environ.get(prefix + "USERNAME") or None
            self._env_password = os.environ.get(prefix + "PASSWORD") or None

    @property
    def label(self) -> str:
        """"index `internal` (https://host/simple/)" or "the default index (https://…)"."""
        return (f"index `{self.name}`" if self.name else "the default index") + f" ({self.url})"

    @property
    def username(self) -> str | None:
        """The user name known without a password lookup (URL, then the variable)."""
        return self._user or self._env_user

    def eager(self) -> Credentials | None:
        """Credentials sent with the first request: the URL's, the variables', netrc's."""
        if self._password:  # `user:@host` is a user name alone: never sent as `user:`
            return Credentials(self._user or "", self._password, "the index URL")
        if self._env_password is not None:
            return Credentials(self.username or "", self._env_password,
                               f"{env_prefix(self.name or '')}USERNAME/PASSWORD")
        return self._netrc()

    def after_401(self) -> Credentials | None:
        """Credentials worth asking for only once the index said it needs some: the keyring."""
        if not self.keyring or not self.username:
            return None
        command = shutil.which("keyring")
        if command is None:
            return None
        try:
            done = subprocess.run([command, "get", str(self.url), self.username],
                                  capture_output=True, text=True, timeout=KEYRING_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        password = done.stdout.rstrip("\r\n")
        if done.returncode != 0 or not password:
            return None
        return Credentials(self.username, password, f"the keyring (keyring get {self.url} …)")

    def _netrc(self) -> Credentials | None:
        path, shown = netrc_path()
        host = self.origin[1]
        if not path.is_file():
            return None
        try:
            entry = netrc.netrc(str(path)).hosts.get(host)  # `machine` only, never `default`
        except (netrc.NetrcParseError, OSError, UnicodeDecodeError):
            return None
        if not entry:
            return None
        login, _account, password = entry
        if not password or (self.username and login and login != self.username):
            return None
        return Credentials(login or self.username or "", password, f"{shown} (machine {host})")

    def looked_in(self) -> str:
        places = ["the URL"]
        if self.name:
            places.append(f"{env_prefix(self.name)}USERNAME/PASSWORD")
        places.append(netrc_path()[1])
        if self.keyring:
            places.append("keyring")
        return ", ".join(places)

    # -- messages -------------------------------------------------------------------------
    def missing(self, status: int) -> AuthError:
        """The index wants credentials (401/403) and none were found."""
        alone = (" (a user name without a password is never sent)"
                 if self.username and not self.keyring else "")
        hint = (f"set {env_prefix(self.name)}USERNAME and {env_prefix(self.name)}PASSWORD, add a "
                f"`machine {self.origin[1]}` entry to your netrc file, or use a keyring "
                '(`keyring-provider = "subprocess"`)' if self.name else
                f"add a `machine {self.origin[1]}` entry to your netrc file, put the credentials "
                "in the index URL, or use a keyring (`keyring-provider = \"subprocess\"`)")
        if self.keyring and not self.username:
            hint += "; the keyring is only asked when a user name is known (URL or _USERNAME)"
        return AuthError(
            f"{self.label} needs credentials; none were found (looked in: {self.looked_in()})"
            + alone,
            hint=hint,
            context={"url": str(self.url), "status": status, **self._named()},
        )

    def rejected(self, credentials: Credentials, status: int, reason: str) -> AuthError:
        return AuthError(
            f"{self.label}: credentials from {credentials.source} were rejected: "
            f"{status} {reason}".rstrip(),
            hint=f"check the user name and password in {credentials.source}; lockenv did not "
                 "retry them",
            context={"url": str(self.url), "status": status, **self._named()},
        )

    def refuse_insecure(self, credentials: Credentials) -> AuthError:
        host, port = self.origin[1], self.origin[2]
        return AuthError(
            f"{self.label} is plain http on `{host}`; refusing to send it the credentials from "
            f"{credentials.source} (anyone on the way could read them)",
            hint=f"use https, or, if the network is trusted, add \"{host}\" (or \"{host}:{port}\") "
                 "to `allow-insecure-host` in [tool.lockenv]",
            context={"url": str(self.url), **self._named()},
        )

    def _named(self) -> ContextFields:
        return {"index": self.name} if self.name else {}
