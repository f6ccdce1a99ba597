"""`featurestore online up/down` cannot lie: `up` verifies the server answering is its own process
and names a port's other holder; `down` stops only a process it can prove it started; the port
given to `up` is the one `sync` and `get` then use; "local" means a loopback address. Each
project has its own local DynamoDB on a port of its own (endpoint `auto`), so two checkouts'
demos run at once; `serve` names the holder of a busy port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from typer.testing import CliRunner

from conftest import EXAMPLE, copy_project
from featurestore import FeatureStore
from featurestore.cli import app
from featurestore.errors import FeatureStoreError
from featurestore.online.local import free_port

BIN = Path(sys.executable).parent


def cli(*args, project, check=True, **env):
    result = subprocess.run([str(BIN / "featurestore"), *args, "-p", str(project)], capture_output=True, text=True,
                            timeout=120, env={**{k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")},
                                              **env})
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def project(tmp_path):
    return copy_project(EXAMPLE, tmp_path / "project")


def test_up_refuses_a_port_another_program_holds_and_names_it(project):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = cli("online", "up", "--port", str(port), project=project, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Port {port} is in use by PID {os.getpid()}" in result.stderr
    assert not (project / ".featurestore" / "local_dynamodb.json").exists()


def test_the_port_given_to_up_is_the_one_the_other_commands_use(project):
    port = free_port()
    try:
        result = cli("online", "up", "--port", str(port), project=project)
        assert f"http://127.0.0.1:{port}" in result.stdout
        # dbt_project.yml says `auto`; the running server is what the store uses
        store = FeatureStore(project)
        assert store.online_config.endpoint_url == f"http://127.0.0.1:{port}"
        assert cli("online", "up", project=project).stdout.strip().endswith(f"http://127.0.0.1:{port}")  # reused
    finally:
        assert "stopped" in cli("online", "down", project=project).stdout
    assert FeatureStore(project).online_config.endpoint_url == "auto"  # not running: as configured


def test_down_never_stops_a_process_it_did_not_start(project):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = project / ".featurestore" / "local_dynamodb.json"
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"pid": bystander.pid, "start": "1", "port": 8766, "url": "http://127.0.0.1:8766"}))
        result = cli("online", "down", project=project, check=False)
        assert result.returncode == 1 and f"PID {bystander.pid}" in result.stderr
        assert "not stopping it" in result.stderr
        assert bystander.poll() is None  # still alive
        assert not record.exists()  # the stale record is gone
        assert "not running" in cli("online", "down", project=project).stdout
    finally:
        bystander.kill()
        bystander.wait()


def test_local_means_a_loopback_address(project):
    config = project / "dbt_project.yml"
    config.write_text(config.read_text().replace("endpoint_url: auto", "endpoint_url: http://localhost.example.com:8766"))
    result = cli("online", "up", project=project, check=False)
    assert result.returncode == 1 and "is not local" in result.stderr


def test_two_projects_run_their_local_dynamodb_at_once(tmp_path):
    """Two checkouts of the demo on one machine: each `online up` takes a free port, records it in
    its own .featurestore/, and each project's commands talk to their own server."""
    projects = [copy_project(EXAMPLE, tmp_path / name) for name in ("first", "second")]
    try:
        urls = [cli("online", "up", project=project).stdout.split()[-1] for project in projects]
        assert urls[0] != urls[1]
        stores = [FeatureStore(project) for project in projects]
        for project, store, url in zip(projects, stores, urls):
            assert json.loads((project / ".featurestore" / "local_dynamodb.json").read_text())["url"] == url
            assert store.online_config.endpoint_url == url
        stores[0].online.client.create_table(
            TableName="only_in_first", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        assert "only_in_first" in stores[0].online.client.list_tables()["TableNames"]
        assert "only_in_first" not in stores[1].online.client.list_tables()["TableNames"]
    finally:
        for project in projects:
            cli("online", "down", project=project)
    with pytest.raises(FeatureStoreError, match=r"local DynamoDB \(endpoint_url: auto\), which is not running: start it "
                                                 r"with `featurestore online up -p .*first`"):
        FeatureStore(projects[0]).online.ping()


runner = CliRunner()


def test_serve_refuses_a_busy_port_and_an_auto_endpoint_that_is_not_running(demo_project, moto_server):
    result = runner.invoke(app, ["serve", "-p", str(demo_project)])
    assert result.exit_code == 1 and "endpoint_url: auto), which is not running" in result.output, result.output
    with socket.socket() as other:  # e.g. another checkout's feature server
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = runner.invoke(app, ["serve", "-p", str(demo_project), "--port", str(port)],
                               env={"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server})
    assert result.exit_code == 1, result.output
    assert f"Port {port} is in use by PID {os.getpid()}" in result.output and "--port N" in result.output


def test_two_ups_of_one_project_at_once_start_one_server(tmp_path):
    """`online up` twice at once (two terminals, a script and a person): one server, one record,
    and `down` stops it (before the lock, both started one and the first was orphaned)."""
    from concurrent.futures import ThreadPoolExecutor

    from featurestore.online.local import LocalDynamoDB

    state = tmp_path / ".featurestore"
    with ThreadPoolExecutor(2) as pool:
        urls = list(pool.map(lambda _: LocalDynamoDB(state).start(), range(2)))
    try:
        assert urls[0] == urls[1]
    finally:
        assert LocalDynamoDB(state).stop()
    assert LocalDynamoDB(state).record() is None
