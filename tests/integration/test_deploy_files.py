"""deploy/ (image, compose stack, Kubernetes manifests) agrees with the code it deploys.

Neither Docker nor a cluster is needed: the files are parsed and checked against what the service
reads (server/config.py), listens on, reports health for and accepts as commands.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from server.api.server import SERVICE_NAMES
from server.cli import _parser
from server.config import Settings
from server.outbox.publisher import nats_servers

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Set in the image for Python itself; the service does not read them.
PYTHON_VARIABLES = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


# --- what the code says -------------------------------------------------------------------------

def variables_the_service_reads() -> set[str]:
    source = (ROOT / "server" / "config.py").read_text()
    return set(re.findall(r'env(?:\.get\(|\[)\s*"([A-Z][A-Z0-9_]*)"', source))


def licensing_subcommands() -> set[str]:
    (commands,) = [action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return set(commands.choices)


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a process with exactly this environment runs with (defaults from server/config.py)."""
    with mock.patch.dict(os.environ, env, clear=True):
        return Settings.from_env()


def port_of(listen: str) -> int:
    return int(listen.rpartition(":")[2])  # as server/runtime.py splits METRICS_LISTEN


def seconds(duration: str | int | float) -> float:
    """A compose duration: 15s, 1m30s, 500ms."""
    if isinstance(duration, (int, float)):
        return float(duration)
    unit = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * unit[u] for n, u in parts)


# --- deploy/Dockerfile --------------------------------------------------------------------------

def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per stage; comments dropped, continuation lines joined."""
    lines = [line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            if instruction.upper() == "FROM":
                stages.append([])
            stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in stage:
        if instruction == "ENV":
            words = shlex.split(arguments)
            if "=" in words[0]:
                env.update(word.split("=", 1) for word in words)
            else:  # the legacy form: ENV NAME value
                env[words[0]] = " ".join(words[1:])
    return env


def instruction(stage: list[tuple[str, str]], name: str) -> str:
    (arguments,) = [arguments for found, arguments in stage if found == name]
    return arguments


def image_env() -> dict[str, str]:
    return dockerfile_env(dockerfile_stages()[-1])


# --- deploy/compose.yaml ------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def licensing_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the image built from deploy/Dockerfile."""
    return {name: service for name, service in compose()["services"].items()
            if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def nats_services() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose()["services"].items()
            if service.get("image", "").startswith("nats:")}


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def compose_settings(service: dict[str, Any]) -> Settings:
    return settings_from({**image_env(), **compose_env(service)})


def compose_command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else command


# --- deploy/k8s ---------------------------------------------------------------------------------

def manifests() -> list[dict[str, Any]]:
    return [document for path in sorted(K8S.glob("*.yaml"))
            for document in yaml.safe_load_all(path.read_text()) if document]


def manifest(kind: str) -> dict[str, Any]:
    (found,) = [document for document in manifests() if document["kind"] == kind]
    return found


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    return {**(secret.get("data") or {}), **(secret.get("stringData") or {})}


def pod_spec(kind: str) -> dict[str, Any]:
    return manifest(kind)["spec"]["template"]["spec"]


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The environment a container runs with: the image's ENV, then envFrom, then env, references resolved."""
    config_maps = {m["metadata"]["name"]: m.get("data") or {} for m in manifests() if m["kind"] == "ConfigMap"}
    secrets = {m["metadata"]["name"]: secret_values(m) for m in manifests() if m["kind"] == "Secret"}
    env = dict(image_env())
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
        else:
            env.update(secrets[source["secretRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        elif "configMapKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["configMapKeyRef"]
            env[variable["name"]] = config_maps[ref["name"]][ref["key"]]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def api_container() -> dict[str, Any]:
    (container,) = pod_spec("Deployment")["containers"]
    return container


def container_port(container: dict[str, Any], target: int | str) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if target in (p.get("name"), p["containerPort"])]
    return port


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def variables_set() -> dict[str, set[str]]:
    """Each place the deploy files set the service's environment, and the variables it sets."""
    found = {"Dockerfile": {name for stage in dockerfile_stages() for name in dockerfile_env(stage)} - PYTHON_VARIABLES}
    for name, service in licensing_services().items():
        found[f"compose.yaml service {name}"] = set(compose_env(service))
    found["k8s ConfigMap"] = set(manifest("ConfigMap")["data"])
    found["k8s Secret"] = set(secret_values(manifest("Secret")))  # all of it goes in through envFrom
    for kind in ("Deployment", "Job"):
        for container in pod_spec(kind)["containers"]:
            found[f"k8s {kind} container {container['name']}"] = {v["name"] for v in container.get("env", [])}
    return found


# --- environment ----------------------------------------------------------------------------------

def test_the_scan_of_config_py_finds_a_variable_for_every_setting() -> None:
    assert len(variables_the_service_reads()) >= len(dataclasses.fields(Settings))


@pytest.mark.parametrize("where", sorted(variables_set()))
def test_deploy_files_set_only_variables_the_service_reads(where: str) -> None:
    unknown = variables_set()[where] - variables_the_service_reads()
    assert not unknown, f"{where} sets {sorted(unknown)}, which server/config.py never reads"


def test_the_deployment_and_job_use_only_the_configmap_and_secret_defined_here() -> None:
    for kind in ("Deployment", "Job"):
        for container in pod_spec(kind)["containers"]:
            container_env(container)  # raises KeyError for a ConfigMap, Secret or key that is not there


def test_compose_reads_the_signing_key_from_a_secret_it_mounts() -> None:
    defined = set(compose()["secrets"])
    for name, service in licensing_services().items():
        path = compose_settings(service).signing_keys_file
        assert path is not None and path.parent == Path("/run/secrets"), name
        assert path.name in set(service.get("secrets", [])) & defined, name


def test_every_nats_url_lists_nats_servers_the_relay_can_connect_to() -> None:
    # The relay splits NATS_URL on commas (server.outbox.publisher.nats_servers): each entry is one server.
    urls = {name: compose_settings(service).nats_url for name, service in licensing_services().items()}
    urls["k8s Deployment"] = settings_from(container_env(api_container())).nats_url
    for where, url in urls.items():
        assert url, f"{where}: NATS_URL is not set"
        for server in nats_servers(url):
            assert re.fullmatch(r"nats://[A-Za-z0-9.-]+:\d+", server), f"{where}: {server!r}"


# --- the image ----------------------------------------------------------------------------------

def test_the_image_runs_the_licensing_console_script() -> None:
    runtime = dockerfile_stages()[-1]
    assert json.loads(instruction(runtime, "ENTRYPOINT")) == ["licensing"]
    assert "licensing = " in (ROOT / "pyproject.toml").read_text()
    assert json.loads(instruction(runtime, "CMD")) == ["serve"]


def test_the_image_exposes_the_ports_it_listens_on() -> None:
    exposed = {int(port.split("/")[0]) for port in instruction(dockerfile_stages()[-1], "EXPOSE").split()}
    default = settings_from(image_env())
    assert port_of(default.grpc_listen) in exposed
    assert default.grpc_listen.startswith("0.0.0.0:")  # reachable from outside the container
    assert port_of(settings_from(container_env(api_container())).metrics_listen or "") in exposed


def test_the_image_generates_the_protobuf_code_as_the_makefile_does_before_installing() -> None:
    build = " ".join(" ".join(arguments for _, arguments in dockerfile_stages()[0]).split())
    makefile = (ROOT / "Makefile").read_text()
    make_protoc = re.search(r"-m grpc_tools\.protoc (.*?) \$\(PROTOS\)", makefile)
    assert make_protoc and f"-m grpc_tools.protoc {make_protoc.group(1)} protos/licensing/v1/*.proto" in build
    assert "touch gen/licensing/__init__.py gen/licensing/v1/__init__.py" in build
    assert build.index("grpc_tools.protoc") < build.index("pip install --no-cache-dir --no-deps .")
    assert not re.search(r"grpcio-tools==\d", build), "take the grpcio-tools pin from pyproject.toml"


def test_the_build_context_holds_everything_the_image_copies() -> None:
    rules = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "an allow-list: everything not named stays out of the context"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    for stage in dockerfile_stages():
        for name, arguments in stage:
            if name == "COPY" and "--from=" not in arguments:
                source = arguments.split()[0]
                assert source in allowed, f"COPY {source}: not in deploy/Dockerfile.dockerignore's allow-list"


def test_the_containers_run_as_a_non_root_user_on_a_read_only_root() -> None:
    user = int(instruction(dockerfile_stages()[-1], "USER").split(":")[0])
    assert user != 0
    for kind in ("Deployment", "Job"):
        pod = pod_spec(kind)
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["runAsUser"] == user, kind
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, kind
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, kind


# --- commands -----------------------------------------------------------------------------------

def test_every_command_the_deploy_files_run_is_a_licensing_subcommand() -> None:
    commands = {"Dockerfile CMD": json.loads(instruction(dockerfile_stages()[-1], "CMD"))}
    for name, service in licensing_services().items():
        commands[f"compose.yaml service {name}"] = compose_command(service)
    for kind in ("Deployment", "Job"):
        for container in pod_spec(kind)["containers"]:
            assert "command" not in container, f"{kind}: the image's ENTRYPOINT (licensing) must run"
            commands[f"k8s {kind}"] = container["args"]
    for where, command in commands.items():
        assert command and command[0] in licensing_subcommands(), f"{where}: {command}"


def test_compose_migrates_then_runs_two_api_replicas_and_the_relay_apart() -> None:
    services = licensing_services()
    by_command = {compose_command(service)[0]: name for name, service in services.items()}
    assert set(by_command) == {"migrate", "serve", "relay"}
    api, relay = services[by_command["serve"]], services[by_command["relay"]]
    assert api["deploy"]["replicas"] == 2
    assert compose_settings(api).relay_enabled is False
    for service in (api, relay):
        assert service["depends_on"][by_command["migrate"]] == {"condition": "service_completed_successfully"}


def test_the_migration_job_and_the_deployment_run_migrate_and_serve() -> None:
    assert [c["args"] for c in pod_spec("Job")["containers"]] == [["migrate"]]
    assert api_container()["args"] == ["serve"]
    assert pod_spec("Job")["restartPolicy"] in ("Never", "OnFailure")


# --- ports, probes, Service, PDB ----------------------------------------------------------------

def test_compose_publishes_the_port_the_api_listens_on() -> None:
    for name, service in licensing_services().items():
        for port in service.get("ports", []):
            target = port["target"] if isinstance(port, dict) else int(str(port).split("/")[0].rpartition(":")[2])
            assert target == port_of(compose_settings(service).grpc_listen), name


def test_the_deployment_declares_the_ports_it_listens_on() -> None:
    settings = settings_from(container_env(api_container()))
    assert container_port(api_container(), "grpc") == port_of(settings.grpc_listen)
    assert container_port(api_container(), "metrics") == port_of(settings.metrics_listen or "")


def test_the_probes_check_the_grpc_port() -> None:
    grpc_port = port_of(settings_from(container_env(api_container())).grpc_listen)
    for probe in ("livenessProbe", "readinessProbe"):
        assert api_container()[probe]["grpc"]["port"] == grpc_port, probe


def test_the_probes_ask_for_services_the_server_reports_health_for() -> None:
    # server/api/server.py sets "" (the server as a whole) and each service in SERVICE_NAMES to SERVING.
    assert api_container()["livenessProbe"]["grpc"].get("service", "") in ["", *SERVICE_NAMES]
    assert api_container()["readinessProbe"]["grpc"]["service"] in SERVICE_NAMES


def test_the_service_targets_the_container_ports() -> None:
    grpc_port = port_of(settings_from(container_env(api_container())).grpc_listen)
    ports = manifest("Service")["spec"]["ports"]
    for port in ports:
        container_port(api_container(), port.get("targetPort", port["port"]))  # one container port each
    assert grpc_port in {container_port(api_container(), port.get("targetPort", port["port"])) for port in ports}


def test_the_deployment_selects_its_own_pods() -> None:
    deployment = manifest("Deployment")
    assert selects(deployment["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"])


def test_the_service_selects_the_api_pods_and_not_the_migration_job() -> None:
    selector = manifest("Service")["spec"]["selector"]
    assert selects(selector, manifest("Deployment")["spec"]["template"]["metadata"]["labels"])
    assert not selects(selector, manifest("Job")["spec"]["template"]["metadata"]["labels"])


def test_the_pdb_selects_the_api_pods_and_not_the_migration_job() -> None:
    selector = manifest("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    assert selects(selector, manifest("Deployment")["spec"]["template"]["metadata"]["labels"])
    assert not selects(selector, manifest("Job")["spec"]["template"]["metadata"]["labels"])
    assert manifest("Deployment")["spec"]["replicas"] >= 2


def test_the_grpc_workers_match_the_cpu_request() -> None:
    workers = settings_from(container_env(api_container())).workers
    assert str(workers) == str(api_container()["resources"]["requests"]["cpu"])


# --- graceful shutdown ----------------------------------------------------------------------------

def test_kubernetes_waits_longer_than_the_calls_drain() -> None:
    pod = pod_spec("Deployment")
    pre_stop = api_container().get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    drain = settings_from(container_env(api_container())).shutdown_grace_seconds
    assert pod["terminationGracePeriodSeconds"] > pause + drain


def test_compose_waits_longer_than_the_calls_drain() -> None:
    for name, service in licensing_services().items():
        if compose_command(service)[0] == "serve":
            grace = seconds(service.get("stop_grace_period", "10s"))
            assert grace > compose_settings(service).shutdown_grace_seconds, name


# --- NATS JetStream -----------------------------------------------------------------------------

def nats_config() -> str:
    return (DEPLOY / "nats" / "nats.conf").read_text()


def test_jetstream_syncs_every_write_to_disk_before_acknowledging_it() -> None:
    jetstream = re.search(r"^jetstream\s*\{(.*?)^\}", nats_config(), re.MULTILINE | re.DOTALL)
    assert jetstream and re.search(r"^\s*sync_interval\s*:\s*always\s*$", jetstream.group(1), re.MULTILINE)


def test_compose_runs_three_named_nats_nodes_on_that_config() -> None:
    nodes = nats_services()
    assert len(nodes) == 3
    for name, service in nodes.items():
        assert "./nats/nats.conf:/etc/nats/nats.conf:ro" in service["volumes"], name
        command = compose_command(service)
        assert command[command.index("--config") + 1] == "/etc/nats/nats.conf", name
        assert command[command.index("--name") + 1] == name, name


def test_the_cluster_routes_reach_every_nats_node() -> None:
    routes = set(re.findall(r"nats-route://([A-Za-z0-9.-]+):(\d+)", nats_config()))
    cluster_port = re.search(r"^cluster\s*\{.*?^\s*port\s*:\s*(\d+)", nats_config(), re.MULTILINE | re.DOTALL)
    assert cluster_port
    assert routes == {(name, cluster_port.group(1)) for name in nats_services()}


def test_the_stream_made_for_the_relay_is_replicated_on_every_node() -> None:
    stream = json.loads((DEPLOY / "nats" / "stream.json").read_text())
    relays = [s for s in licensing_services().values() if compose_command(s)[0] == "relay"]
    assert relays
    for relay in relays:
        settings = compose_settings(relay)
        assert stream["name"] == settings.nats_stream
        assert stream["subjects"] == [f"{settings.nats_subject_prefix}.>"]
        assert stream["duplicate_window"] == int(settings.nats_duplicate_window_seconds * 1_000_000_000)
    assert stream["storage"] == "file"
    assert stream["num_replicas"] == len(nats_services())
    (maker,) = [name for name, service in compose()["services"].items()
                if "./nats/stream.json:/etc/nats/stream.json:ro" in service.get("volumes", [])]
    assert stream["name"] in " ".join(compose_command(compose()["services"][maker]))
    for relay in relays:  # made before the relay starts, which would make it with one replica
        assert relay["depends_on"][maker] == {"condition": "service_completed_successfully"}
