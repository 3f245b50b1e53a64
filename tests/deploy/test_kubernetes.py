"""The Kubernetes manifests validate offline against the API schemas, and wire up right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from urn.config import parse_text
from urn.trust import AllowList

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


# --- a key per tier: who may hold which key ------------------------------------------

SECRETS = {d["metadata"]["name"]: d for _, d in DOCUMENTS if d["kind"] == "Secret"}


def _pod(name: str) -> dict[str, Any]:
    deployment = next(
        d for _, d in DOCUMENTS if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _secrets_reachable(pod: dict[str, Any]) -> set[str]:
    """Every Secret a Pod's containers can read: volumes, env and envFrom."""
    found = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    found |= {
        source["secret"]["name"]
        for v in pod.get("volumes", [])
        if "projected" in v
        for source in v["projected"]["sources"]
        if "secret" in source
    }
    for container in pod["containers"] + pod.get("initContainers", []):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                found.add(ref["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                found.add(source["secretRef"]["name"])
    return found


def _document() -> Any:
    config = next(d for _, d in DOCUMENTS if d["kind"] == "ConfigMap")
    return parse_text(config["data"]["urn.yaml"])


def _key_files(pod: dict[str, Any], container: str) -> set[str]:
    """The key files a container can read: each key of each Secret volume it mounts."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files = set()
    for c in pod["containers"]:
        if c["name"] != container:
            continue
        for mount in c.get("volumeMounts", []):
            secret = volumes[mount["name"]].get("secret")
            if secret is not None:
                keys = SECRETS[secret["secretName"]]["stringData"]
                files |= {f"{mount['mountPath']}/{key}" for key in keys}
    return files


def test_the_config_gives_each_tier_its_own_key() -> None:
    document = _document()
    assert document.table_key is not None
    assert document.table_key.file != document.push_key.file
    push = SECRETS["urn-push-key"]["stringData"]
    table = SECRETS["urn-table-key"]["stringData"]
    assert set(push) == {"push_key", "previous_push_key"}
    assert set(table) == {"table_key", "previous_table_key"}


def test_sidecar_example_mounts_only_the_checker_key() -> None:
    pod = _pod("web-a")
    assert _secrets_reachable(pod) == {"urn-push-key"}
    document = _document()
    readable = _key_files(pod, "urn-checker")
    assert document.push_key.file in readable
    table_files = {document.table_key.file, *(k.file for k in document.previous_table_keys)}
    assert not readable & table_files
    web = next(c for c in pod["containers"] if c["name"] == "web")
    assert "volumeMounts" not in web  # the application itself holds no key at all


ROLE_SECRETS = {
    "urn-checker-a": {"urn-push-key"},
    "urn-checker-b": {"urn-push-key"},
    "urn-checker-c": {"urn-push-key"},
    "urn-aggregator-1": {"urn-push-key", "urn-table-key"},
    "urn-aggregator-2": {"urn-push-key", "urn-table-key"},
    "urn-resolver-1": {"urn-table-key"},
    "urn-resolver-2": {"urn-table-key"},
}


def test_each_role_holds_the_keys_of_its_tiers_only() -> None:
    document = _document()
    assert document.table_key is not None
    push_files = {document.push_key.file, *(k.file for k in document.previous_push_keys)}
    table_files = {document.table_key.file, *(k.file for k in document.previous_table_keys)}
    for deployment, secrets in ROLE_SECRETS.items():
        pod = _pod(deployment)
        assert _secrets_reachable(pod) == secrets, deployment
        readable = _key_files(pod, pod["containers"][0]["name"])
        assert (push_files <= readable) == ("urn-push-key" in secrets), deployment
        assert (table_files <= readable) == ("urn-table-key" in secrets), deployment
        assert not (table_files & readable) or "urn-table-key" in secrets, deployment


def test_resolvers_accept_aggregated_tables_only_from_the_aggregators_deployed() -> None:
    document = _document()
    ids = set()
    for name in ("urn-aggregator-1", "urn-aggregator-2"):
        args = _pod(name)["containers"][0]["args"]
        ids.add(args[args.index("--id") + 1])
    assert document.senders.aggregators is not None
    assert set(document.senders.aggregators) == ids


def test_aggregators_admit_the_pods_of_every_checker_deployment() -> None:
    """Checker ids are Pod names (`$(POD_NAME)`): <deployment>-<hash>-<suffix>."""
    admits = AllowList.of(_document().senders.checkers or ()).admits
    for _, d in DOCUMENTS:
        if d["kind"] != "Deployment":
            continue
        for container in d["spec"]["template"]["spec"]["containers"]:
            args = container.get("args", [])
            if args[:1] == ["checker"]:
                assert args[args.index("--id") + 1] == "$(POD_NAME)"
                assert admits(f"{d['metadata']['name']}-5d8f9c7b6d-x2k9p"), d["metadata"]["name"]
    assert not admits("urn-resolver-1-5d8f9c7b6d-x2k9p")


def test_every_urn_container_is_ready_on_readyz_and_alive_on_healthz() -> None:
    """Readiness is /readyz (503 while a role cannot do its job, e.g. a resolver with no
    fresh table); liveness is /healthz, so a missing table never restarts a pod."""
    containers = [
        (where, container)
        for where, doc in DOCUMENTS
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
        if container.get("args", [""])[0] in ("checker", "aggregator", "resolver")
    ]
    roles = {container["args"][0] for _, container in containers}
    assert roles == {"checker", "aggregator", "resolver"}
    for where, container in containers:
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
