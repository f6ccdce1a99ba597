"""How dbt is invoked (FEATURESTORE_DBT) and what a dbt run as a command gives back: exit code and
run_results.json. A stand-in `dbt` script plays the command here; the real dbt runs as a command
in tests/integration/test_dbt_command.py and through the dbt_compat tests in CI (`make test-compat`)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from featurestore.dbt import DbtProject
from featurestore.errors import ManifestError
from featurestore.profiles import load_target

PROFILE = "p:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: x.duckdb}\n"

STAND_IN = """#!{python}
import json, os, sys
from pathlib import Path
Path("args.json").write_text(json.dumps({{"args": sys.argv[1:], "target": os.environ.get("FEATURESTORE_TARGET"), "cwd": os.getcwd()}}))
Path("target").mkdir(exist_ok=True)
Path("target/run_results.json").write_text(json.dumps({{"results": [
    {{"unique_id": "model.p.good_view", "status": "success", "message": "OK"}},
    {{"unique_id": "model.p.bad_view", "status": "error", "message": "Binder Error: column x not found"}}]}}))
sys.exit({code})
"""


def project(tmp_path: Path, env: dict[str, str]) -> DbtProject:
    (tmp_path / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (tmp_path / "profiles.yml").write_text(PROFILE)
    return DbtProject.at(tmp_path, "dev", env)


def stand_in(tmp_path: Path, code: int) -> str:
    path = tmp_path / "bin" / "dbt"
    path.parent.mkdir()
    path.write_text(STAND_IN.format(python=sys.executable, code=code))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_in_process_by_default_when_dbt_core_is_importable(tmp_path):
    assert project(tmp_path, {}).dbt_executable() is None
    assert project(tmp_path, {"FEATURESTORE_DBT": "inprocess"}).dbt_executable() is None
    assert project(tmp_path, {"FEATURESTORE_DBT": "auto"}).dbt_executable() is None


def test_a_forced_executable_must_exist(tmp_path):
    with pytest.raises(ManifestError, match="FEATURESTORE_DBT=/no/such/dbt is not an executable"):
        project(tmp_path, {"FEATURESTORE_DBT": "/no/such/dbt"}).dbt_executable()


def test_a_command_run_reports_its_failing_node(tmp_path):
    dbt = project(tmp_path, {"FEATURESTORE_DBT": stand_in(tmp_path, 1)})
    result = dbt.run("run", "--select", "bad_view", raise_on_failure=False)
    assert not result.success and result.invocation.endswith("bin/dbt")
    assert [(node.name, node.status) for node in result.results] == [("good_view", "success"), ("bad_view", "error")]
    called = json.loads((tmp_path / "args.json").read_text())
    assert called["args"][:3] == ["run", "--project-dir", str(tmp_path)]
    assert called["args"][-2:] == ["--select", "bad_view"] and "--profiles-dir" in called["args"]
    assert called["target"] == "dev" and called["cwd"] == str(tmp_path)
    with pytest.raises(ManifestError, match=r"`dbt run` failed in .*: bad_view error: Binder Error: column x not found"):
        dbt.run("run")


def test_a_command_run_that_succeeds(tmp_path):
    result = project(tmp_path, {"FEATURESTORE_DBT": stand_in(tmp_path, 0)}).run("run")
    assert result.success and len(result.results) == 2


def test_results_of_an_earlier_run_are_not_taken_for_this_one(tmp_path):
    (tmp_path / "target").mkdir()
    old = tmp_path / "target" / "run_results.json"
    old.write_text(json.dumps({"results": [{"unique_id": "model.p.old", "status": "error"}]}))
    import os
    os.utime(old, (1_000_000, 1_000_000))
    script = tmp_path / "dbt-quiet"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(2)\n")
    script.chmod(0o755)
    dbt = project(tmp_path, {"FEATURESTORE_DBT": str(script)})
    result = dbt.run("parse", raise_on_failure=False)
    assert not result.success and result.results == ()
    with pytest.raises(ManifestError, match=r"dbt-quiet exited with 2\); see the dbt output above"):
        dbt.run("parse")


def test_without_dbt_cores_python_api_the_dbt_on_path_runs(tmp_path, monkeypatch):
    import featurestore.dbt as dbt_module

    monkeypatch.setattr(dbt_module, "_python_api_available", lambda: False)  # a dbt without a Python API
    executable = stand_in(tmp_path, 0)
    monkeypatch.setenv("PATH", str(Path(executable).parent))
    assert project(tmp_path, {}).dbt_executable() == executable
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ManifestError, match="no `dbt` command is on PATH"):
        project(tmp_path, {}).dbt_executable()
    with pytest.raises(ManifestError, match="cannot be imported here"):
        project(tmp_path, {"FEATURESTORE_DBT": "inprocess"}).dbt_executable()


TRAPPING = """#!{python}
import signal, sys, time
from pathlib import Path
got = []
def interrupted(signum, frame):
    got.append(signum)
    Path("interrupts").write_text(str(len(got)))
    time.sleep(0.5)  # dbt cancelling its queries: a second interrupt here would break into it
    sys.exit(130)
signal.signal(signal.SIGINT, interrupted)
Path("ready").write_text("ready")
while True:
    time.sleep(0.05)
"""

DRIVER = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
import featurestore.dbt as dbt
dbt._INTERRUPT_GRACE = float(sys.argv[3])
project = dbt.DbtProject.at(sys.argv[1], "dev", {{"FEATURESTORE_DBT": sys.argv[2]}})
try:
    project.run("build")
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("whole_group", [True, False], ids=["ctrl-c in a terminal", "only featurestore signalled"])
def test_an_interrupt_reaches_dbt_once_and_is_waited_for(tmp_path, whole_group):
    import os
    import signal
    import subprocess
    import time

    project(tmp_path, {})
    executable = tmp_path / "dbt-trapping"
    executable.write_text(TRAPPING.format(python=sys.executable))
    executable.chmod(0o755)
    # Ctrl-C: a long grace, so a slow machine's dbt is never taken for one that ignored it; only
    # featurestore signalled: dbt never stops by itself, so a short grace decides nothing.
    grace = "30" if whole_group else "0.5"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER.format(), str(tmp_path), str(executable), grace],
                              start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():  # the stand-in dbt is running and trapping
        assert driver.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    if whole_group:
        os.killpg(driver.pid, signal.SIGINT)
    else:
        driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=60) == 130
    assert (tmp_path / "interrupts").read_text() == "1"  # dbt got exactly one, and was waited for


def test_project_files_are_read_again_after_every_edit(tmp_path):
    # dbt_project.yml and profiles.yml are parsed once per text in a process: an edit that keeps the
    # size and lands within the file system's timestamp granularity must still be seen
    dbt = project(tmp_path, {})
    assert dbt.project_config()["name"] == "p" and dbt.manifest_path == tmp_path / "target" / "manifest.json"
    (tmp_path / "dbt_project.yml").write_text("name: q\nprofile: p\ntarget-path: out\n")
    assert dbt.project_config()["name"] == "q" and dbt.manifest_path == tmp_path / "out" / "manifest.json"
    assert load_target(dbt)["path"] == "x.duckdb"
    (tmp_path / "profiles.yml").write_text(PROFILE.replace("x.duckdb", "y.duckdb"))
    assert load_target(dbt)["path"] == "y.duckdb"
    dbt.project_config()["name"] = "changed by a caller"  # each caller gets its own copy
    assert dbt.project_config()["name"] == "q"
    (tmp_path / "dbt_project.yml").write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match="Cannot read .*dbt_project.yml"):
        dbt.project_config()
