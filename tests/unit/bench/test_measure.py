"""Pure figures of the az-failure bench: deltas, peaks, ratios, latency; loadgen's codec."""

from __future__ import annotations

import math

import dns.message
import dns.rrset
import numpy as np
import pytest

from bench.az_failure import _by_role, _lean_scrape, cpu_budget, markdown
from bench.measure import MemberSample, Phase, Sample, latency, phase_work, ratios, work_series
from sim.loadgen import RECORD, parse_answers, query_packet

ROLES = {"c1": "checker", "r1": "resolver"}


def samples():
    out = []
    for k in range(5):
        # c1: 10 ms CPU per 1 s tick, 100 bytes per push, except one 1,000-byte push at k=3
        pushed = 100 * k + (900 if k >= 3 else 0)
        out.append(
            Sample(
                float(k),
                {
                    "c1": MemberSample(
                        cpu=0.01 * k,
                        tick_sum=0.01 * k,
                        tick_count=k,
                        push_bytes=pushed,
                        pushes_ok=k,
                    ),
                    "r1": MemberSample(cpu=0.05 * k, queries=500.0 * k),
                },
            )
        )
    return out


def test_phase_work_deltas_and_peaks():
    work = phase_work(samples(), Phase("steady", 0.0, 4.0), ROLES, push=1.0)
    assert work["c1"]["tick_cpu"] == pytest.approx(0.01)
    assert work["c1"]["cpu_per_interval"] == pytest.approx(0.01)
    assert work["c1"]["bytes_per_interval"] == pytest.approx(1300 / 4)
    assert work["c1"]["bytes_per_push"] == pytest.approx(1300 / 4)
    assert work["c1"]["peak_bytes_per_push"] == pytest.approx(1000)
    assert work["r1"]["cpu_per_query"] == pytest.approx(0.05 / 500)
    assert work["r1"]["queries_per_s"] == pytest.approx(500)
    assert phase_work(samples(), Phase("none", 10.0, 11.0), ROLES, push=1.0) == {}


def test_work_series_and_role_merge():
    series = work_series(samples(), ROLES, push=1.0)
    assert series["c1"]["bytes_per_interval"] == [100, 100, 1000, 100]
    merged = _by_role(
        {"a": {"bytes_per_interval": 1.0, "tick_cpu": 2.0}, "b": {"bytes_per_interval": 3.0}},
        {"a": "checker", "b": "checker"},
    )
    assert merged["checker"]["bytes_per_interval"] == 4.0
    assert merged["checker"]["tick_cpu"] == 2.0
    assert merged["checker"]["members"] == 2.0


def test_ratios_handle_zero_and_missing():
    got = ratios({"a": 2.0, "b": 0.0, "c": math.nan}, {"a": 3.0, "b": 0.0, "c": 1.0, "d": 1.0})
    assert got["a"] == pytest.approx(1.5)
    assert got["b"] == 1.0
    assert math.isnan(got["c"])
    assert math.isnan(got["d"])


def test_latency_percentiles_and_lost_queries():
    rows = np.zeros(1000, dtype=RECORD)
    rows["t"] = np.linspace(0, 9.99, 1000)
    rows["latency"] = 0.001
    rows["latency"][-1] = 0.5
    rows["latency"][0] = np.nan
    figures = latency(rows, Phase("p", 0.0, 10.0))
    assert figures["p50_ms"] == pytest.approx(1.0)
    assert figures["max_ms"] == pytest.approx(500.0)
    assert (figures["sent"], figures["answered"], figures["lost"]) == (1000, 999, 1)


def test_loadgen_query_and_answer_codec_agree_with_dnspython():
    packet = query_packet("svc1.example.com.", ident=7)
    query = dns.message.from_wire(packet)
    assert str(query.question[0].name) == "svc1.example.com."
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text("svc1.example.com.", 30, "IN", "A", "127.100.0.1", "127.102.0.1")
    )
    ident, rcode, found = parse_answers(response.to_wire(), len(packet) - 12)
    assert (ident, rcode) == (7, 0)
    assert sorted(found) == [bytes([127, 100, 0, 1]), bytes([127, 102, 0, 1])]


def test_lean_scrape_sums_label_sets():
    text = "\n".join(
        [
            "# HELP urn_push_bytes_total x",
            'urn_push_bytes_total{peer="a"} 10.0',
            'urn_push_bytes_total{peer="b"} 5.0',
            'urn_pushes_total{peer="a",result="ok"} 2.0',
            'urn_pushes_total{peer="a",result="timeout"} 9.0',
            "urn_tick_cpu_seconds_count 4.0",
            "urn_tick_cpu_seconds_sum 0.5",
            'urn_queries_total{qtype="A",rcode="noerror",transport="udp"} 7.0',
            'urn_probes_total{result="healthy"} 8.0',
            'urn_probes_total{result="timeout"} 2.0',
        ]
    )
    got = _lean_scrape(text)
    assert got == {
        "tick_sum": 0.5,
        "tick_count": 4.0,
        "push_bytes": 15.0,
        "queries": 7.0,
        "pushes_ok": 2.0,
        "probes": 10.0,
        "probes_healthy": 8.0,
    }


def test_cpu_budget_counts_probes_farm_and_queries():
    budget = cpu_budget(checks=10_000, checkers=3, probe=5.0, qps=2000, cores=2)
    assert budget["probes_per_s"] == 6000
    assert budget["fraction"] == pytest.approx((6000 * 70e-6 + 2000 * 80e-6) / 2)


def test_markdown_renders_every_phase_and_design():
    phase = {"roles": {"checker": {"tick_cpu": 0.01}}, "latency": {"p99_ms": 1.0}}
    failure = {**phase, "ratios": {"roles": {"checker": {"tick_cpu": 1.0}}, "latency": {}}}
    design = {
        "phases": {"steady": phase, "failure": failure, "recovery": failure},
        "correctness": {
            "affected_names": 3,
            "timed_names": 2,
            "detection_s": {"min": 0.1, "median": 0.5, "max": 1.0},
            "recovery_s": {},
            "never_turned": [],
            "dead_answers_after_bound": 0,
            "healthy_answers_dropped": 0,
            "query_gap_per_name_s": 0.1,
            "ok": True,
        },
    }
    config = dict.fromkeys(
        ("checks", "azs", "checkers_per_az", "probe_interval", "push_interval", "timeout"), 1
    )
    config.update(
        aggregators=2, resolvers=1, qps=10, fail_az="b", fail_mode="refuse", phase_seconds=5
    )
    config.update(failures=1, of_last=1, detection_bound_s=3)
    budget = {"probes_per_s": 1.0, "fraction": 0.1, "cores": 2}
    text = markdown(
        {"config": config, "budget": budget, "designs": {"urn": design, "edge": design}}
    )
    assert "## failure" in text
    assert "| checker CPU per tick (ms) | 10.0 | 10.0 |" in text
    assert "0.10 / 0.50 / 1.00" in text


def test_reports_are_strict_json():
    from bench.az_failure import _finite

    got = _finite({"a": [1.0, math.nan, {"b": math.inf}], "c": (2, np.float64(3.5))})
    assert got == {"a": [1.0, None, {"b": None}], "c": [2, 3.5]}


def test_plots_are_written_for_each_design_and_compared(tmp_path):
    from bench.az_failure import plot

    rows = np.zeros(400, dtype=RECORD)
    rows["t"] = np.linspace(0, 3.99, 400)
    rows["latency"] = 0.001
    rows["mask"] = 0b11
    roles = {"c1": "checker", "r1": "resolver", "a1": "aggregator"}
    series = samples()
    for sample in series:
        sample.members["a1"] = sample.members["c1"]  # type: ignore[index]
    result = {
        "samples": series,
        "roles": roles,
        "rows": rows,
        "queried": [{"name": "svc0.example.com.", "answers": [
            {"value": "127.100.0.0"}, {"value": "127.101.0.0"}
        ]}],
        "phases": [Phase("steady", 0, 1.5), Phase("failure", 1.5, 3), Phase("recovery", 3, 4)],
    }  # fmt: skip
    config = {"push_interval": 1.0, "fail_az": "b", "fail_mode": "refuse", "azs": 2}
    config["phase_seconds"] = 1.5
    plot({"config": config}, {"urn": result, "edge": result}, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["az-failure-compare.png", "az-failure-edge.png", "az-failure-urn.png"]
