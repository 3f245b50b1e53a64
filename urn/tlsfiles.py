"""Server TLS contexts that follow their certificate files, with no restart.

certbot renews in place and cert-manager swaps a symlinked directory; either way the
files a listener was started with change under it. A `RotatingContext` is the one
`ssl.SSLContext` a listener holds; `refresh` re-reads the chain and key when the config
names other files or the files changed (size, mtime or inode), and loads them into that
same context, so every connection opened afterwards gets the new certificate and those
already open keep theirs. The pair is first loaded into a scratch context: a half-written
or mismatched pair is refused (counted, logged once per change) and the one in force
keeps serving.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Literal

from urn.http import server_ssl_context
from urn.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from urn.config import Tls

__all__ = ["CERT_POLL_INTERVAL", "REFRESH_RESULTS", "Refresh", "RotatingContext"]

CERT_POLL_INTERVAL = 1.0  # seconds between looks at the files: two stat calls
log = get_logger("tls")

Refresh = Literal["unchanged", "ok", "refused"]
REFRESH_RESULTS: tuple[Refresh, ...] = ("ok", "refused")  # the ones worth counting
_Stamp = tuple[str, str, tuple[int, int, int] | None, tuple[int, int, int] | None]


def _file_stamp(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _stamp(cert: str, key: str) -> _Stamp:
    return cert, key, _file_stamp(cert), _file_stamp(key)


class RotatingContext:
    """A server context for `tls` (which must name a certificate and key), offering
    `alpn` in preference order, re-read by `refresh`."""

    def __init__(self, tls: Tls, alpn: Sequence[str] = ()) -> None:
        if tls.cert is None or tls.key is None:
            raise ValueError("a TLS listener needs tls.cert and tls.key in the config")
        stamp = _stamp(tls.cert, tls.key)  # before loading: a change during it is seen next
        context = server_ssl_context(tls)
        assert context is not None  # cert and key are both named
        if alpn:
            context.set_alpn_protocols(list(alpn))
        self.context = context
        self.reloads = 0  # pairs loaded after the first
        self.refused = 0  # changed pairs that did not load
        self.last_error: str | None = None
        self._stamp = stamp
        self._refused_stamp: _Stamp | None = None

    def refresh(self, tls: Tls) -> Refresh:
        """Load the pair `tls` names if it differs from the one in force: `ok` when it
        loaded, `refused` when it did not (once per change), else `unchanged`."""
        if tls.cert is None or tls.key is None:
            return "unchanged"  # TLS turned off in the config: listeners keep theirs
        stamp = _stamp(tls.cert, tls.key)
        if stamp == self._stamp or stamp == self._refused_stamp:
            return "unchanged"
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.cert, tls.key)
            self.context.load_cert_chain(tls.cert, tls.key)
        except (OSError, ssl.SSLError) as exc:
            self.refused += 1
            self._refused_stamp = stamp
            self.last_error = f"{tls.cert}, {tls.key}: {exc}"
            log.error("certificate_refused", cert=tls.cert, key=tls.key, error=str(exc))
            return "refused"
        self.reloads += 1
        self._stamp = stamp
        self._refused_stamp = None
        self.last_error = None
        log.info("certificate_reloaded", cert=tls.cert, key=tls.key)
        return "ok"
