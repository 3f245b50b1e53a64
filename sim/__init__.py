"""The simulated world: target farm, fleet supervisor, scenarios, chaos, verdicts, demo.

What `urn demo`, `urn targets`, the deploy config generator, the benchmarks and the tests
use to stand up and judge a fleet on loopback. Product packages never import it.
"""

__all__: list[str] = []
