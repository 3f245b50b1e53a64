"""One `urn resolver` child process on loopback, for tests that drive it as users do.

`resolver_process` starts it on free ports (HTTP or HTTPS, DNS over UDP and TCP, and
DNS over TLS when asked for), waits until `/healthz` answers, and on the way out stops
it with SIGTERM and asserts it exited 0 without a traceback. Its log (stdout and
stderr) goes to a file, read back in every failure message.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sim.fleet import _die_with_parent
from sim.testing import free_port
from sim.testing.resolver import TEST_ENVIRON

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ["ResolverProcess", "resolver_process"]

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


@dataclass
class ResolverProcess:
    process: subprocess.Popen[bytes]
    http: int  # the HTTP(S) listener
    dns: int  # classic DNS, UDP and TCP
    dot: int  # DNS over TLS (0: not served)
    log: Path
    context: ssl.SSLContext | None  # trusts the listener's certificate when it has one

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://{HOST}:{self.http}"

    def get(self, path: str, **params: str) -> tuple[int, bytes]:
        """GET `path?params` over HTTP/1.1; (status, body), error statuses included."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(
                f"{self.url}{path}{query}", timeout=5, context=self.context
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`, from /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        _, text = self.get("/metrics")
        total = 0.0
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def rss(self) -> int:
        """Resident memory of the process, in bytes."""
        pages = int(Path(f"/proc/{self.process.pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")

    def alive(self) -> bool:
        """True while running; AssertionError with the log's tail once it has exited."""
        assert self.process.poll() is None, self.log.read_text()[-2000:]
        return True


@contextlib.contextmanager
def resolver_process(
    config: Path,
    directory: Path,
    *,
    env: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    dot: bool = False,
    flags: Sequence[str] = (),
) -> Iterator[ResolverProcess]:
    """`urn resolver --config CONFIG` running until the block ends.

    `env` is added to this process's environment (default: the test push key).
    `context` trusts the certificate the config's tls block names: the listener is
    then HTTPS, and `dot` serves DNS over TLS too. `flags` go on the command line.
    """
    http, dns_port = free_port(), free_port()
    dot_port = free_port() if dot else 0
    log = directory / "resolver.log"
    command = [
        sys.executable, "-m", "urn", "resolver", "--config", str(config), "--id", "r1",
        "--listen", f"{HOST}:{http}", "--dns", f"{HOST}:{dns_port}",
        *(("--dot", f"{HOST}:{dot_port}") if dot else ()), *flags,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(TEST_ENVIRON if env is None else env)},
            preexec_fn=_die_with_parent,
        )
    running = ResolverProcess(process, http, dns_port, dot_port, log, context)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            running.alive()
            with contextlib.suppress(OSError):
                if running.get("/healthz")[0] == 200:
                    break
            assert time.monotonic() < deadline, f"resolver not serving after {START_TIMEOUT}s"
            time.sleep(0.05)  # polling a starting process, bounded by the deadline above
        yield running
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log.read_text()
    assert process.returncode == 0, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
