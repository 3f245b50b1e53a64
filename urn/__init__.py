"""urn: constant-work health checks and DNS-style failover.

The shared kernel: the configuration document, the status table and its wire
envelope, the clock, logging, metrics and the HTTP pieces every role uses.
"""

from urn.errors import ConfigError, UrnError, WireError

__version__ = "0.1.0"

__all__ = ["ConfigError", "UrnError", "WireError", "__version__"]
