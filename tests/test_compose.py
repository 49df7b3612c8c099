"""docker-compose.yml against a testnet generated with `testnet init --docker` (no Docker engine needed)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from lab import testnet as tn
from lab.testnet.compose import compose_text
from node import cometbft
from node.p2p import node_host

REPO = cometbft.REPO_ROOT
ROSTER = REPO / "config" / "testnet-4.toml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return doc


@pytest.fixture(scope="module")
def docker_net(tmp_path_factory: pytest.TempPathFactory) -> tn.Testnet:
    out = tmp_path_factory.mktemp("compose") / "testnet-docker"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        result = CliRunner().invoke(app, ["testnet", "init", "--roster", str(ROSTER), "--out", str(out), "--docker",
                                          "--compose", str(out.parent / "docker-compose.yml")])
    assert result.exit_code == 0, result.output
    return tn.load_testnet(out)


def published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port -> (host interface, host port) from "HOST:HOSTPORT:CONTAINERPORT" entries."""
    ports = {}
    for entry in service["ports"]:
        host, host_port, container_port = str(entry).split(":")
        ports[int(container_port)] = (host, int(host_port))
    return ports


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_one_service_per_validator(compose: dict[str, Any], docker_net: tn.Testnet) -> None:
    assert list(compose["services"]) == [node.name for node in docker_net.nodes] == ["node0", "node1", "node2",
                                                                                      "node3"]


def test_build_context_and_image(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        assert service["build"]["context"] == "."
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["image"] == "gridledger:dev"
        assert service["stop_signal"] == "SIGTERM"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["gridledger"]' in dockerfile
    assert "make setup" in dockerfile
    # Local chains hold private keys: they must never be copied into the image.
    assert ".gridledger" in (REPO / ".dockerignore").read_text().split()


def test_command_and_volume_are_the_generated_home(compose: dict[str, Any], docker_net: tn.Testnet) -> None:
    for node in docker_net.nodes:
        service = compose["services"][node.name]
        home_in_container = f"{tn.DOCKER_IMAGE_HOME}/{node.name}"
        assert service["command"] == ["node", "start", "--home", home_in_container]
        assert service["volumes"] == [f"./{tn.DOCKER_OUT / node.home}:{home_in_container}"]
        assert (docker_net.home(node) / "config" / "genesis.json").is_file()
    # The documented init command writes to the directory the volumes name.
    assert f"--out {tn.DOCKER_OUT} --docker" in (REPO / "docker-compose.yml").read_text()


def test_published_ports_match_the_homes(compose: dict[str, Any], docker_net: tn.Testnet) -> None:
    for index, node in enumerate(docker_net.nodes):
        ports = published(compose["services"][node.name])
        home = docker_net.home(node)
        config = cometbft.read_config(home)
        rpc = _port_of(config["rpc"]["laddr"])
        app_metrics = _port_of(cometbft.read_node_settings(home)["app_metrics"])
        comet_metrics = _port_of(config["instrumentation"]["prometheus_listen_addr"])
        libp2p = node_host.listen_port(home)
        assert set(ports) == {rpc, app_metrics, comet_metrics, libp2p}
        for container_port, (host, host_port) in ports.items():
            assert host == "127.0.0.1"  # published on the host's loopback only
            assert host_port == tn.docker_host_port(index, container_port)
        assert node.rpc_url == f"http://127.0.0.1:{ports[rpc][1]}"
        # A participant on the host dials the published libp2p port.
        assert node.p2p_addr == f"/ip4/127.0.0.1/tcp/{ports[libp2p][1]}/p2p/{node.p2p_peer_id}"
        # Inside the container everything the host reaches listens on all interfaces.
        assert config["rpc"]["laddr"].startswith("tcp://0.0.0.0:")
        assert config["p2p"]["laddr"].startswith("tcp://0.0.0.0:")
        # The ABCI socket never leaves the container.
        assert config["proxy_app"].startswith("tcp://127.0.0.1:")
    host_ports = [p for s in compose["services"].values() for _, p in published(s).values()]
    assert len(host_ports) == len(set(host_ports))


def test_peers_by_service_name(compose: dict[str, Any], docker_net: tn.Testnet) -> None:
    services = set(compose["services"])
    ids = {node.name: node.node_id for node in docker_net.nodes}
    for node in docker_net.nodes:
        peers = cometbft.read_config(docker_net.home(node))["p2p"]["persistent_peers"].split(",")
        assert len(peers) == len(docker_net.nodes) - 1
        for peer in peers:
            match = re.fullmatch(r"([0-9a-f]{40})@([a-z0-9]+):(\d+)", peer)
            assert match is not None, peer
            node_id, host, port = match.groups()
            assert host in services and host != node.name
            assert ids[host] == node_id
            target = cometbft.read_config(docker_net.home(docker_net.select([host])[0]))
            assert _port_of(target["p2p"]["laddr"]) == int(port)


def test_compose_volume_paths_are_relative_to_the_repo(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        source = service["volumes"][0].split(":")[0]
        assert source.startswith("./") and not Path(source).is_absolute()


def test_libp2p_hosts_bootstrap_by_service_name(docker_net: tn.Testnet) -> None:
    services = {node.name: node for node in docker_net.nodes}
    for node in docker_net.nodes:
        config = node_host.read_config(docker_net.home(node))
        assert config["listen"] == [f"/ip4/0.0.0.0/tcp/{node_host.port_of(cometbft.DEFAULT_BASE_PORT)}"]
        expected = {f"/dns4/{name}/tcp/{other.p2p_port}/p2p/{other.p2p_peer_id}"
                    for name, other in services.items() if name != node.name}
        assert set(config["bootstrap"]) == expected
        assert set(config["trusted_publishers"]) == {n.p2p_pubkey for n in docker_net.nodes}


def test_the_compose_file_is_what_testnet_init_generates(docker_net: tn.Testnet) -> None:
    """The repository's file is `testnet init --docker`'s for testnet-4 (so it cannot drift from the generator)."""
    at_repo = replace(docker_net, directory=REPO / tn.DOCKER_OUT)
    generated = compose_text(at_repo, REPO / "docker-compose.yml", REPO, "config/testnet-4.toml")
    assert (REPO / "docker-compose.yml").read_text() == generated


def test_init_docker_writes_the_compose_file(tmp_path: Path) -> None:
    roster = tmp_path / "two.toml"
    text = ROSTER.read_text()
    roster.write_text(text)
    out, compose_file = tmp_path / "tn", tmp_path / "compose" / "docker-compose.yml"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        result = CliRunner().invoke(app, ["testnet", "init", "--roster", str(roster), "--out", str(out), "--docker",
                                          "--compose", str(compose_file)])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(compose_file.read_text())
    assert list(doc["services"]) == ["node0", "node1", "node2", "node3"]
    assert doc["services"]["node2"]["volumes"] == ["../tn/node2:/data/node2"]
    assert (compose_file.parent / doc["x-node"]["build"]["context"]).resolve() == Path.cwd().resolve()


def _final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.M)[-1]


def test_the_image_is_multi_stage_non_root_healthy_and_exposes_what_compose_publishes(
        compose: dict[str, Any]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.M)) >= 2
    final = _final_stage(dockerfile)
    users = re.findall(r"^USER (\S+)", final, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*CMD", final, flags=re.M | re.S)
    assert "build-essential" not in final and "golang" not in final  # no compilers in the image that runs
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", final, flags=re.M) for p in line.split()}
    published_ports = {port for service in compose["services"].values() for port in published(service)}
    assert published_ports <= exposed
