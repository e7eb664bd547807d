"""docker-compose.yml: valid against the compose-spec schema, and consistent with itself.

No Docker engine runs here, so the stack is checked statically: the schema (from
check-jsonschema's vendored copy of compose-spec), then what the schema cannot know — every
mounted file exists, every service another one names exists, every address in the
Prometheus, Grafana and modeltap configurations is a service listening on that port — and
the mounted Prometheus and Alertmanager files pass promtool and amtool as mounted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from modeltap.configload import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_the_file_is_valid_against_the_compose_spec_schema() -> None:
    result = schema_check(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["collect"]["restart_policy"] = "always"  # no such key in a service
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert schema_check(path).returncode != 0


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Bind mounts of ``service``: container path -> host path (named volumes left out)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = (ROOT / source).resolve()
    return found


def test_every_mounted_file_exists() -> None:
    checked = 0
    for name, service in services().items():
        for target, source in mounts(service).items():
            assert source.exists(), f"{name} mounts {source} at {target}, which does not exist"
            checked += 1
    assert checked >= 8


def test_every_named_service_exists_and_named_volumes_are_declared() -> None:
    known, volumes = set(services()), set(compose()["volumes"])
    for name, service in services().items():
        depends = service.get("depends_on", [])
        assert set(depends) <= known, name
        network = service.get("network_mode", "")
        if network.startswith("service:"):
            assert network.removeprefix("service:") in known
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in volumes, (name, source)


def test_images_are_the_names_the_chart_uses() -> None:
    images = {name: service["image"].split(":")[0] for name, service in services().items()}
    assert images["model-sidecar"] == "modeltap-sidecar"
    for name in ("collect", "serve", "detect", "db-upgrade", "model", "traffic"):
        assert images[name] == "modeltap"
    assert services()["model-sidecar"]["build"]["target"] == "sidecar"
    assert services()["collect"]["build"]["target"] == "full"
    assert services()["traffic"]["profiles"] == ["traffic"]


def listening(name: str) -> set[int]:
    """Ports the service ``name`` listens on, from what it is told (its command, its
    MONITOR_* addresses, its image's own default) — the side each address must agree with."""
    service = services()[name]
    env = service.get("environment", {})
    ports = {int(value.rsplit(":", 1)[1]) for key, value in env.items() if key.endswith("LISTEN")}
    for argument in [*service.get("command", []), *service.get("entrypoint", [])]:
        if "listen-address=" in argument:
            ports.add(int(argument.rsplit(":", 1)[1]))
    # Images' own defaults: the model server's --port, Grafana 3000, Alertmanager 9093,
    # PostgreSQL 5432; the broker's from its listeners.
    entry = service.get("entrypoint", [])
    if "--port" in entry:
        ports.add(int(entry[entry.index("--port") + 1]))
    image = service.get("image", "")
    ports |= {3000} if "grafana" in image else set()
    ports |= {9093} if "alertmanager" in image else set()
    ports |= {5432} if "postgres" in image else set()
    for listener in env.get("KAFKA_LISTENERS", "").split(","):
        if listener:
            ports.add(int(listener.rsplit(":", 1)[1]))
    # A service sharing another's network listens on its ports.
    for other, shared in services().items():
        if shared.get("network_mode") == f"service:{name}":
            ports |= listening(other)
    return ports


def assert_served(address: str, where: str) -> None:
    host, _, port = address.rpartition(":")
    assert host in services(), f"{where}: {host} is no service"
    assert int(port) in listening(host), f"{where}: {host} does not listen on {port}"


def test_prometheus_scrapes_each_process_where_it_listens() -> None:
    config = yaml.safe_load((ROOT / "compose" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, job in jobs.items():
        for target in job["static_configs"][0]["targets"]:
            if name != "prometheus":
                assert name.startswith("modeltap")  # exporter.job_pattern: modeltap.*
                assert_served(target, f"scrape job {name}")
    assert set(jobs) >= {"modeltap-sidecar", "modeltap-collect", "modeltap-serve"}
    assert "modeltap-detect" in jobs
    for target in config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]:
        assert_served(target, "alerting")
    published = {port.split(":")[1] for port in services()["prometheus"]["ports"]}
    assert {str(port) for port in listening("prometheus")} == published


def test_the_sidecar_is_published_where_the_model_service_shares_its_network() -> None:
    published = {int(port.split(":")[1]) for port in services()["model"]["ports"]}
    assert published == listening("model-sidecar") == {8000, 9108}
    assert published < listening("model")  # the model server's own 8080 stays inside
    sidecar_env = services()["model-sidecar"]["environment"]
    assert urlsplit(sidecar_env["MONITOR_SIDECAR__UPSTREAM"]).port == 8080
    traffic = services()["traffic"]["command"]
    assert_served(urlsplit(traffic[traffic.index("--url") + 1]).netloc, "traffic")


def test_grafana_provisioning_points_at_the_prometheus_service() -> None:
    grafana = mounts(services()["grafana"])
    provisioning = grafana["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources" / "modeltap.yaml").read_text())
    url = urlsplit(datasources["datasources"][0]["url"])
    assert_served(url.netloc, "the Grafana data source")
    providers = yaml.safe_load((provisioning / "dashboards" / "modeltap.yaml").read_text())
    folder = providers["providers"][0]["options"]["path"]
    assert folder in grafana
    assert sorted(grafana[folder].glob("*.json")), "no dashboards where the provider looks"


def test_every_modeltap_service_gets_a_valid_configuration_with_reachable_services() -> None:
    seen = 0
    for name, service in services().items():
        env = service.get("environment", {})
        if "MONITOR_CONFIG" not in env or name == "traffic":
            continue
        mounted = mounts(service)
        config = load_config(mounted[env["MONITOR_CONFIG"]], {k: str(v) for k, v in env.items()})
        storage = urlsplit(config.storage.url)
        assert storage.hostname is not None
        assert_served(f"{storage.hostname}:{storage.port}", f"{name}: storage.url")
        postgres = services()[storage.hostname]["environment"]
        assert storage.path == "/" + postgres["POSTGRES_DB"]
        assert storage.username == postgres["POSTGRES_USER"]
        for server in config.kafka.bootstrap_servers:
            assert_served(server, f"{name}: kafka.bootstrap_servers")
        kafka_env = services()["kafka"]["environment"]
        assert (
            f"PLAINTEXT://{config.kafka.bootstrap_servers[0]}"
            in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        )
        if name == "model-sidecar":
            assert config.sink.url is not None
            sink = urlsplit(config.sink.url)
            assert_served(sink.netloc, "the sidecar's sink")
            assert sink.path.lstrip("/") == config.kafka.topics.events
            assert config.sidecar.model in {model.name for model in config.models}
        seen += 1
    assert seen == 6


def container_view(service: str, config: Path, tmp_path: Path) -> Path:
    """``config`` copied next to the files it names, as the container sees them mounted:
    each container path it mentions becomes the mounted host file."""
    text = config.read_text()
    for target, source in mounts(services()[service]).items():
        text = text.replace(target, str(source))
    copied = tmp_path / config.name
    copied.write_text(text)
    return copied


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:  # scripts/services.sh installs both (Debian prometheus packages)
        subprocess.run([str(ROOT / "scripts" / "services.sh"), "install", "prometheus"], check=True)
        found = shutil.which(name)
    assert found is not None, f"{name} is missing after scripts/services.sh install prometheus"
    return found


def test_promtool_accepts_the_prometheus_configuration_with_its_mounted_rules(
    tmp_path: Path,
) -> None:
    config = mounts(services()["prometheus"])["/etc/prometheus/prometheus.yml"]
    view = container_view("prometheus", config, tmp_path)
    assert str(ROOT / "dashboards" / "prometheus" / "rules.yml") in view.read_text()
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(view)], capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_amtool_accepts_the_mounted_alertmanager_configuration() -> None:
    config = mounts(services()["alertmanager"])["/etc/alertmanager/alertmanager.yml"]
    result = subprocess.run(
        [tool("amtool"), "check-config", str(config)], capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("tool_name", ["promtool", "amtool"])
def test_the_tools_refuse_a_broken_file(tool_name: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("route: {receiver: nowhere}\nscrape_configs: [{job_name: 1, oops: 2}]\n")
    command = ["check", "config"] if tool_name == "promtool" else ["check-config"]
    result = subprocess.run(
        [tool(tool_name), *command, str(broken)], capture_output=True, check=False, timeout=60
    )
    assert result.returncode != 0
