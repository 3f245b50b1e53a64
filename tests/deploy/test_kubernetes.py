"""The Kubernetes manifests validate offline against the API schemas, and wire up right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from urn.config import parse_text

MANIFESTS = sorted((Path(__file__).parents[2] / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.30.0"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                found.append((f"{path.name}#{i}", doc))
    return found


DOCUMENTS = _documents()


def test_manifests_exist() -> None:
    kinds = {doc["kind"] for _, doc in DOCUMENTS}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service"} <= kinds


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_manifest_is_valid_strictly(where: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_config_map_holds_a_valid_urn_document() -> None:
    config = next(d for _, d in DOCUMENTS if d["kind"] == "ConfigMap")
    document = parse_text(config["data"]["urn.yaml"])
    services = {d["metadata"]["name"] for _, d in DOCUMENTS if d["kind"] == "Service"}
    # Every replica is pushed to by its own Service, never through a load balancer.
    for url in (*document.aggregators, *document.resolvers):
        host = url.split("//")[1].split(".")[0]
        assert host in services, f"{url} has no Service"


def test_resolver_service_carries_dns_over_udp_and_tcp() -> None:
    service = next(
        d
        for _, d in DOCUMENTS
        if d["kind"] == "Service" and d["metadata"]["name"] == "urn-resolver"
    )
    protocols = {(p["port"], p["protocol"]) for p in service["spec"]["ports"]}
    assert {(53, "UDP"), (53, "TCP")} <= protocols


def test_every_checker_deployment_is_pinned_to_its_az_and_spread() -> None:
    checkers = [
        d
        for _, d in DOCUMENTS
        if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("urn-checker-")
    ]
    assert len(checkers) == 3
    for deployment in checkers:
        az = deployment["metadata"]["name"][-1]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"topology.kubernetes.io/zone": az}
        assert pod["topologySpreadConstraints"]
        assert "--az" in pod["containers"][0]["args"]


def test_sidecar_example_selects_only_its_application() -> None:
    sidecar = next(
        d for _, d in DOCUMENTS if d["kind"] == "Deployment" and d["metadata"]["name"] == "web-a"
    )
    containers = sidecar["spec"]["template"]["spec"]["containers"]
    checker = next(c for c in containers if c["name"] == "urn-checker")
    assert checker["args"][-2:] == ["--select", "label=app=web"]
    assert len(containers) == 2


def test_validation_catches_a_broken_manifest() -> None:
    _, deployment = next((w, d) for w, d in DOCUMENTS if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
