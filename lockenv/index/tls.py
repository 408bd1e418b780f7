"""TLS trust: the system trust store by default (`truststore`, as pip does), or exactly the CAs
in SSL_CERT_FILE / SSL_CERT_DIR when either is set (as pip's `--cert`), so a corporate proxy's
CA works either way without a flag. Also recognises a certificate failure, which is never
retried (it will not fix itself) and gets its own message."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from lockenv.errors import NetworkError

if TYPE_CHECKING:
    import ssl

_lock = threading.Lock()
_contexts: dict[tuple[str, str], ssl.SSLContext] = {}


def ssl_context() -> ssl.SSLContext:
    """One context per process (per SSL_CERT_FILE/SSL_CERT_DIR value): building one loads
    the CA store, which costs milliseconds."""
    cafile = os.environ.get("SSL_CERT_FILE", "")
    capath = os.environ.get("SSL_CERT_DIR", "")
    key = (cafile, capath)
    with _lock:
        ctx = _contexts.get(key)
        if ctx is None:
            ctx = _contexts[key] = _build(cafile, capath)
        return ctx


def _build(cafile: str, capath: str) -> ssl.SSLContext:
    import ssl  # imported with the first client: a warm lock (all cached) makes none

    if cafile or capath:
        try:
            return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
        except (OSError, ssl.SSLError) as exc:
            which = " and ".join(f"{k}={v}" for k, v in (("SSL_CERT_FILE", cafile),
                                                         ("SSL_CERT_DIR", capath)) if v)
            raise NetworkError(
                f"cannot load the certificates in {which}: {exc.strerror or exc}",
                hint="point SSL_CERT_FILE at a PEM bundle (or SSL_CERT_DIR at a hashed "
                     "directory of PEM files), or unset it to use the system trust store",
                context={"variable": which},
            ) from None
    import truststore

    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate error behind an httpx/httpcore exception, if that is what it is."""
    import ssl

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        current = current.__cause__ or current.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ssl.SSLCertVerificationError(text)
    return None


def certificate_error(host: str, cause: ssl.SSLCertVerificationError) -> NetworkError:
    """The message for a certificate that did not verify, naming the host and both variables."""
    reason = getattr(cause, "verify_message", None) or str(cause)
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        trusted = "only the CAs in " + " and ".join(
            f"{k}={v}" for k, v in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if v)
        hint = ("add the CA that signed this certificate (your proxy's, or the index's) to "
                "SSL_CERT_FILE / SSL_CERT_DIR, or unset them to trust the system store")
    else:
        trusted = "the system trust store"
        hint = ("install the CA that signed it (your proxy's, or the index's) in the system "
                "trust store, or set SSL_CERT_FILE (a PEM bundle) or SSL_CERT_DIR to it")
    return NetworkError(
        f"the TLS certificate of {host} could not be verified against {trusted}: {reason}",
        hint=hint,
        context={"host": host},
    )
