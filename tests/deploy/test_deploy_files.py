"""deploy/ and collector-config.yaml cannot run here (no Docker, no Collector or Grafana
binary): these tests parse them and cross-check their wiring, ports, users and paths with
the rest of the repository."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from receiver.config import load_config, split_host_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def collector() -> dict[str, Any]:
    return yaml.safe_load((REPO / "collector-config.yaml").read_text())


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path → host path (relative to deploy/), for bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = source
    return out


# -- collector-config.yaml ----------------------------------------------------------------------


def _ottl(condition: str, record: dict[str, Any]) -> bool:
    """The small OTTL subset the filters use: not / and / or / parentheses / IsMatch(path, re)."""
    tokens = re.findall(r'IsMatch\((?:[^()"]|"(?:\\.|[^"\\])*")*\)|\(|\)|\bnot\b|\band\b|\bor\b', condition)
    position = 0

    def atom() -> bool:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "not":
            return not atom()
        if token == "(":
            value = expr()
            assert tokens[position] == ")"
            position += 1
            return value
        match = re.fullmatch(r'IsMatch\((event_name|attributes\["([^"]+)"\]), "((?:\\.|[^"\\])*)"\)', token)
        assert match, token
        value = (
            record.get("event_name")
            if match.group(1) == "event_name"
            else record.get("attributes", {}).get(match.group(2))
        )
        pattern = match.group(3).encode().decode("unicode_escape")  # OTTL string escapes
        return value is not None and re.search(pattern, value) is not None

    def expr() -> bool:
        nonlocal position
        value = atom()
        while position < len(tokens) and tokens[position] in ("and", "or"):
            op = tokens[position]
            position += 1
            right = atom()
            value = (value and right) if op == "and" else (value or right)
        return value

    return expr()


def _kept(cfg: dict[str, Any], processors: list[str], record: dict[str, Any]) -> bool:
    for name in processors:
        if name.split("/")[0] == "filter":
            conditions = cfg["processors"][name]["logs"]["log_record"]
            if any(_ottl(c, record) for c in conditions):  # the filter processor DROPS matches
                return False
    return True


def test_collector_config_wiring():
    cfg = collector()
    service = cfg["service"]
    for extension in service["extensions"]:
        assert extension in cfg["extensions"]
    for name, pipeline in service["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in cfg[kind], f"{name}: {kind[:-1]} {component} is not defined"
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter must come first"
    # audit events reach the otel-audit exporter, and only it; other logs go their usual way
    records = {
        "audit (event_name)": ({"event_name": "audit.user.login"}, True),
        "audit (old SDK: event.name attribute)": (
            {"attributes": {"event.name": "audit.document.read"}},
            True,
        ),
        "not audit": ({"event_name": "http.server.request"}, False),
        "look-alike": ({"event_name": "auditing.report", "attributes": {"event.name": "audit"}}, False),
        "plain log": ({}, False),
    }
    log_pipelines = {k: v for k, v in service["pipelines"].items() if k.split("/")[0] == "logs"}
    for label, (record, is_audit) in records.items():
        reached = {
            exporter
            for pipeline in log_pipelines.values()
            if _kept(cfg, pipeline["processors"], record)
            for exporter in pipeline["exporters"]
        }
        assert reached == ({"otlp/otel_audit"} if is_audit else {"otlp/observability"}), label


def test_collector_queue_is_persistent_and_retries_forever():
    cfg = collector()
    exporter = cfg["exporters"]["otlp/otel_audit"]
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    storage = queue["storage"]
    assert storage.startswith("file_storage") and storage in cfg["extensions"]
    assert storage in cfg["service"]["extensions"]  # a defined but unused extension would not start
    assert cfg["extensions"][storage]["directory"].endswith("/var/lib/otelcol/storage}")
    assert (
        exporter["retry_on_failure"]["enabled"] is True
        and exporter["retry_on_failure"]["max_elapsed_time"] == 0
    )
    assert exporter["headers"]["authorization"] == "Bearer ${env:OTEL_AUDIT_INGEST_TOKEN}"
    assert exporter["endpoint"] == "${env:OTEL_AUDIT_ENDPOINT}"
    text = (REPO / "collector-config.yaml").read_text()
    assert "# ca_file:" in text and "# cert_file:" in text  # TLS settings, commented


# -- deploy/ ------------------------------------------------------------------------------------


@pytest.fixture
def receiver_config(monkeypatch):
    env = {
        "OTEL_AUDIT_WRITER_PASSWORD": "ch-secret",
        "OTEL_AUDIT_INGEST_TOKEN": "i" * 32,
        "OTEL_AUDIT_TENANT": "acme",
        "OTEL_AUDIT_ADMIN_TOKEN": "a" * 32,
        "OTEL_AUDIT_AUDITOR_TOKEN": "u" * 32,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_config(DEPLOY / "otel-audit.yaml")


def users_xml() -> ET.Element:
    return ET.parse(DEPLOY / "clickhouse" / "users.d" / "otel-audit.xml").getroot()


def sql_role_grants(role: str) -> list[str]:
    """``GRANT … TO role`` of receiver/store/schema/server/grants.sql, without the ``TO``."""
    text = (REPO / "receiver/store/schema/server/grants.sql").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [
        " ".join(m.group(1).split())
        for m in re.finditer(rf"(GRANT\s[^;]*?)\s+TO\s+{role}\s*;", code)
        if not re.match(r"GRANT\s+\w+\s*$", m.group(1))  # role-to-user grants
    ]


def grants_of(user: str) -> list[str]:
    node = users_xml().find(f"users/{user}")
    assert node is not None, f"no ClickHouse user {user}"
    return [q.text or "" for q in node.findall("grants/query")]


def test_compose_services_and_mounted_paths_exist():
    services = compose()["services"]
    assert set(services) == {"clickhouse", "migrate", "otel-audit", "otel-collector", "grafana"}
    for name, service in services.items():
        for target, source in mounts(service).items():
            assert (DEPLOY / source).exists(), f"{name}: {source} (mounted at {target}) does not exist"
    assert (DEPLOY / "Dockerfile").exists() and "'.[receiver]'" in (DEPLOY / "Dockerfile").read_text()
    assert services["migrate"]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_receiver_store_users_and_ports(receiver_config):
    services = compose()["services"]
    cfg = receiver_config
    store = re.match(r"clickhouse://(\w+):ch-secret@([\w-]+):(\d+)/(\w+)$", cfg.store)
    assert store, cfg.store
    user, host, port, database = store.groups()
    assert host in services and int(port) == 8123 and database == "audit"
    # the service's user: the grants of grants.sql's ingest role; synchronous inserts
    assert sorted(grants_of(user)) == sorted(sql_role_grants("otel_audit_ingest"))
    assert not any(re.search(r"\b(UPDATE|DELETE|TRUNCATE|DROP|MODIFY)\b", g) for g in grants_of(user))
    profile = users_xml().find(f"users/{user}/profile").text
    assert users_xml().find(f"profiles/{profile}/async_insert").text == "0"
    # migrate runs as that same user (its additive DDL grants cover every schema version)
    migrate = " ".join(services["migrate"]["command"])
    assert re.search(r"clickhouse://(\w+):", migrate).group(1) == user
    # every user's password comes from an env var the clickhouse service receives
    env = services["clickhouse"]["environment"]
    for node in users_xml().find("users"):
        password = node.find("password")
        assert password is not None and password.get("from_env") in env, node.tag
    # the admin port is published as the config listens
    published = {p.split(":")[-1] for p in services["otel-audit"]["ports"]}
    assert str(split_host_port(cfg.listen.admin)[1]) in published
    assert cfg.archive.path in mounts(services["otel-audit"]) or any(
        v.endswith(":" + cfg.archive.path) for v in services["otel-audit"]["volumes"]
    )
    assert mounts(services["otel-audit"])["/etc/otel-audit/otel-audit.yaml"] == "./otel-audit.yaml"
    assert "/etc/otel-audit/otel-audit.yaml" in services["otel-audit"]["command"]


def test_collector_service_matches_the_receiver(receiver_config):
    services = compose()["services"]
    col = services["otel-collector"]
    config_path = col["command"][0].split("=", 1)[1]
    assert mounts(col)[config_path] == "../collector-config.yaml"
    endpoint_host, endpoint_port = col["environment"]["OTEL_AUDIT_ENDPOINT"].split(":")
    assert (
        endpoint_host == "otel-audit"
        and int(endpoint_port) == split_host_port(receiver_config.listen.grpc)[1]
    )
    assert (
        col["environment"]["OTEL_AUDIT_INGEST_TOKEN"]
        == services["otel-audit"]["environment"]["OTEL_AUDIT_INGEST_TOKEN"]
    )
    storage_dir = col["environment"]["OTELCOL_STORAGE_DIR"]
    assert any(v.endswith(":" + storage_dir) and not v.startswith(".") for v in col["volumes"])
    receivers = collector()["receivers"]["otlp"]["protocols"]
    ports = {split_host_port(p["endpoint"])[1] for p in receivers.values()}
    assert {int(p.split(":")[-1]) for p in col["ports"]} == ports == {4317, 4318}


def test_grafana_provisioning_matches_clickhouse_and_dashboards():
    services = compose()["services"]
    graf = services["grafana"]
    assert "grafana-clickhouse-datasource" in graf["environment"]["GF_INSTALL_PLUGINS"]
    m = mounts(graf)
    assert m["/etc/grafana/provisioning/datasources"] == "../dashboards/provisioning/datasources"
    assert m["/etc/grafana/provisioning/dashboards"] == "../dashboards/provisioning/dashboards"
    provider = yaml.safe_load((REPO / "dashboards/provisioning/dashboards/otel-audit.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert m[path] == "../dashboards" and list((REPO / "dashboards").glob("*.json"))
    ds = yaml.safe_load((REPO / "dashboards/provisioning/datasources/clickhouse.yaml").read_text())[
        "datasources"
    ][0]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["jsonData"]["protocol"] == "http"
    assert ds["jsonData"]["defaultDatabase"] == "audit" and "password" in ds["secureJsonData"]
    env = graf["environment"]

    def resolve(value: Any) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda mt: str(env[mt.group(1)]), str(value))

    assert resolve(ds["jsonData"]["host"]) in services
    assert resolve(ds["jsonData"]["port"]) == "8123"
    user = resolve(ds["jsonData"]["username"])
    assert sorted(grants_of(user)) == sorted(sql_role_grants("otel_audit_reader"))
    profile = users_xml().find(f"users/{user}/profile").text
    assert users_xml().find(f"profiles/{profile}/readonly").text == "1"
    # clickhouse-go sends max_execution_time on every query: changeable in readonly, bounded
    constraint = users_xml().find(f"profiles/{profile}/constraints/max_execution_time")
    assert constraint is not None and constraint.find("changeable_in_readonly") is not None
    assert int(constraint.find("max").text) >= 65  # the plugin's default timeout 60 s + 5
    grants_sql = (REPO / "receiver/store/schema/server/grants.sql").read_text()
    assert re.search(r"max_execution_time = \d+ MAX (\d+) CHANGEABLE_IN_READONLY", grants_sql)
    assert (
        env["OTEL_AUDIT_CLICKHOUSE_PASSWORD"]
        == services["clickhouse"]["environment"]["OTEL_AUDIT_READER_PASSWORD"]
    )
    # every dashboard's data source is the plugin type the provisioned data source has
    for board in (REPO / "dashboards").glob("*.json"):
        assert '"type": "grafana-clickhouse-datasource"' in board.read_text()


def test_production_guide_names_the_real_users_and_files():
    guide = (DEPLOY / "PRODUCTION.md").read_text()
    for user in users_xml().find("users"):
        assert f"`{user.tag}`" in guide
    for heading in ("## Sizing", "## Users and grants", "## Retention", "## Backups"):
        assert heading in guide
    assert "clickhouse/users.d/otel-audit.xml" in guide and "otel-audit migrate" in guide
    env_example = (DEPLOY / ".env.example").read_text()
    needed = set(re.findall(r"\$\{(\w+):\?", (DEPLOY / "docker-compose.yml").read_text()))
    assert needed <= set(re.findall(r"^(\w+)=", env_example, re.M))
