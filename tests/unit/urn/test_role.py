"""The role contract: one settings shape, one make_app signature, one signer, one tuning path."""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import sys
from typing import TYPE_CHECKING

import pytest

from aggregator import app as aggregator_app
from aggregator import main as aggregator_main
from aggregator.settings import AggregatorSettings
from checker import app as checker_app
from checker import main as checker_main
from checker.settings import CheckerSettings
from resolver import app as resolver_app
from resolver import main as resolver_main
from resolver.settings import ResolverSettings
from sim.testing import TEST_PUSH_KEY, FakeClock, document_dict
from urn.config import parse_text
from urn.errors import StartupError
from urn.keys import Keyring, Keys
from urn.push import PUSH_TIMEOUT_SHARE, push_timeout
from urn.runtime import Tuning, current_fd_limit, settle_process, tune_process
from urn.signer import SEQUENCE_PER_SECOND, TableSigner, seed_sequence
from urn.source import Loaded
from urn.wire import MAX_AZS, MAX_CHECKERS, TableKind, decode

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

ROLES = {
    "checker": (CheckerSettings, checker_app, checker_main, ["--az", "a"]),
    "aggregator": (AggregatorSettings, aggregator_app, aggregator_main, []),
    "resolver": (ResolverSettings, resolver_app, resolver_main, []),
}
SHARED_FIELDS = ("id", "config", "listen_host", "listen_port")


def flags(main: ModuleType, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    main.add_arguments(parser)
    return parser.parse_args(["--config", "c.yaml", "--id", "x-1", *argv])


@pytest.mark.parametrize("role", ROLES)
def test_every_role_builds_settings_the_same_way(role: str) -> None:
    settings_type, _, main, extra = ROLES[role]
    settings = settings_type.from_args(flags(main, *extra, "--listen", "127.0.0.2:9"))
    assert type(settings) is settings_type
    shared = tuple(getattr(settings, name) for name in SHARED_FIELDS)
    assert shared == ("x-1", "c.yaml", "127.0.0.2", 9)
    with pytest.raises(StartupError, match="--listen"):
        settings_type.from_args(flags(main, *extra, "--listen", "127.0.0.1:http"))
    with pytest.raises(StartupError, match="--id"):
        settings_type.from_args(flags(main, *extra, "--id", "x" * 40))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_the_same_make_app(role: str) -> None:
    _, app, _, _ = ROLES[role]
    parameters = inspect.signature(app.make_app).parameters
    names = [name for name in parameters if name != "rng"]
    assert names == ["settings", "clock", "registry", "environ", "transport"]
    assert all(p.kind is p.KEYWORD_ONLY for name, p in parameters.items() if name != "settings")
    assert isinstance(app.TUNING, Tuning)
    assert app.SERVICE is not None


def test_only_the_resolver_takes_an_rng() -> None:
    takes = {role: "rng" in inspect.signature(ROLES[role][1].make_app).parameters for role in ROLES}
    assert takes == {"checker": False, "aggregator": False, "resolver": True}


def test_the_resolver_without_dns() -> None:
    settings = ResolverSettings.from_args(flags(resolver_main, "--dns", "none"))
    assert settings.dns_host is None
    with pytest.raises(StartupError, match="--dns"):
        ResolverSettings.from_args(flags(resolver_main, "--dns", "127.0.0.1:domain"))


def test_one_push_timeout_share_for_every_pusher() -> None:
    assert 0 < PUSH_TIMEOUT_SHARE < 1
    assert push_timeout(2.0) == pytest.approx(2.0 * PUSH_TIMEOUT_SHARE)


def loaded(capacity: int = 8) -> Loaded:
    document = parse_text(json.dumps(document_dict(capacity=capacity)))
    ring = Keyring(signing=TEST_PUSH_KEY, accepted=(TEST_PUSH_KEY,))
    return Loaded(document, Keys(push=ring, table=ring, table_defaulted=True))


def test_signer_seeds_from_wall_time_and_counts_up_by_one() -> None:
    clock = FakeClock(wall_offset=1_700_000_000.0)
    checker = TableSigner(TableKind.CHECKER, "chk-a1", clock, az="b")
    aggregator = TableSigner(TableKind.AGGREGATE, "agg-1", clock)
    # The same unit in both roles: nanoseconds, as checkers always seeded.
    assert checker.sequence == aggregator.sequence == seed_sequence(clock.time())
    assert seed_sequence(1.5) == 1_500_000_000 == 1.5 * SEQUENCE_PER_SECOND
    config = loaded()
    envelopes = [
        decode(checker.sign(config, bytes(16)), [TEST_PUSH_KEY], 8, TableKind.CHECKER)
        for _ in range(3)
    ]
    first = seed_sequence(clock.time())
    assert [e.sequence for e in envelopes] == [first + 1, first + 2, first + 3]
    assert {(e.sender, e.az, e.generated_at) for e in envelopes} == {("chk-a1", "b", clock.time())}
    assert envelopes[0].config_digest == config.document.digest


def test_signer_caps_the_aggregate_counts_at_what_the_wire_carries() -> None:
    signer = TableSigner(TableKind.AGGREGATE, "agg-1", FakeClock())
    body = signer.sign(loaded(), bytes(8), checkers=MAX_CHECKERS + 5, azs=MAX_AZS + 1)
    envelope = decode(body, [TEST_PUSH_KEY], 8, TableKind.AGGREGATE)
    assert (envelope.checkers, envelope.azs, envelope.az) == (MAX_CHECKERS, MAX_AZS, "")


@pytest.fixture
def process_state() -> Iterator[None]:
    """Put back what tuning changes, so the rest of the run sees the defaults."""
    thresholds = gc.get_threshold()
    interval = sys.getswitchinterval()
    yield
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)
    gc.unfreeze()


def test_tune_process_applies_what_the_role_declares(process_state: None) -> None:
    assert tune_process(Tuning()) == current_fd_limit()
    fd_limit = tune_process(checker_app.TUNING)
    assert gc.get_threshold() == checker_app.GC_THRESHOLDS
    assert fd_limit == current_fd_limit()
    tune_process(resolver_app.TUNING)
    assert sys.getswitchinterval() == pytest.approx(resolver_app.GIL_SWITCH_INTERVAL)
    frozen = gc.get_freeze_count()
    settle_process(aggregator_app.TUNING)
    assert gc.get_freeze_count() == frozen  # nothing to freeze for the aggregator
    fresh = [[] for _ in range(10)]  # objects the collector tracks: the freeze takes them
    settle_process(resolver_app.TUNING)
    assert gc.get_freeze_count() >= frozen + len(fresh) + 1
