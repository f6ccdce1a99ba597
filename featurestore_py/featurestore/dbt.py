"""The only place that invokes dbt and knows where a project keeps its files.

dbt runs from the project's directory (so relative paths in profiles.yml and sources resolve as
they do when a user runs dbt there), with the profiles directory found the way dbt finds it:
`--profiles-dir`, then `DBT_PROFILES_DIR`, then the project directory, then the current
directory, then `~/.dbt/`.

How dbt is invoked (`FEATURESTORE_DBT`): in-process through dbt-core's `dbtRunner` when that
Python API is importable, else as a command (`dbt` on PATH) — the only way to drive a dbt without
a Python API, such as dbt's next engine. `FEATURESTORE_DBT=inprocess` forces the first;
`FEATURESTORE_DBT=/path/to/dbt` (or a command name) forces the second with that executable. Both
give the same `DbtResult`: success, and each node's status and message (read from dbt's
`run_results.json` when dbt ran as a command).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

from .errors import ManifestError
from .interrupts import noticing_interrupts
from .profiles import load_target, read_yaml

# Files whose change makes a parsed manifest stale.
_PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml")
_SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")
_IN_PROCESS = ("inprocess", "in-process", "python")
_INTERRUPT_GRACE = 3.0  # seconds dbt has to stop on the interrupt it got with us, before we pass one on


@dataclass(frozen=True)
class NodeResult:
    """One node of a dbt command's results: `status` is dbt's (success, error, pass, fail, warn, skipped)."""

    name: str
    unique_id: str
    status: str
    message: str | None = None


@dataclass(frozen=True)
class DbtResult:
    """What a dbt command gave, however dbt was invoked."""

    success: bool
    results: tuple[NodeResult, ...] = ()
    exception: BaseException | None = None
    invocation: str = "inprocess"  # or the executable that ran
    exit_code: int | None = None  # dbt's, when it ran as a command

    def failures(self) -> list[NodeResult]:
        return [node for node in self.results if node.status in ("error", "fail")]

    def describe_failure(self) -> str:
        """The first failing node and its message, or where to look."""
        if self.exception is not None:
            return f": {self.exception}"
        failed = self.failures()
        if failed:
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            return f": {first.name} {first.status}{more}: {first.message or 'see the dbt output above'}"
        exited = f" ({self.invocation} exited with {self.exit_code})" if self.exit_code is not None else ""
        return f"{exited}; see the dbt output above"


@dataclass(frozen=True)
class DbtProject:
    """Paths of one dbt project, its profiles directory and the environment its profile reads."""

    project_dir: Path
    target: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    profiles_dir_option: Path | None = None  # --profiles-dir, when given

    @classmethod
    def at(cls, project_dir: str | os.PathLike = ".", target: str | None = None,
           env: Mapping[str, str] | None = None, profiles_dir: str | os.PathLike | None = None) -> "DbtProject":
        """A project; `env` overrides environment variables for this project only (tests use it)."""
        path = Path(project_dir).expanduser().resolve()
        if not path.is_dir():
            raise ManifestError(f"{path} is not a directory; pass the dbt project with --project-dir/-p.")
        if not (path / "dbt_project.yml").is_file():
            raise ManifestError(f"{path} is not a dbt project: it has no dbt_project.yml.")
        option = Path(profiles_dir).expanduser().resolve() if profiles_dir else None
        return cls(path, target, MappingProxyType(dict(env or {})), option)

    # -- where things are ------------------------------------------------------------------------
    def profiles_candidates(self) -> list[tuple[str, Path]]:
        """Where dbt looks for profiles.yml, in order: (why, folder)."""
        candidates = []
        if self.profiles_dir_option is not None:
            return [("--profiles-dir", self.profiles_dir_option)]
        env = self.getenv("DBT_PROFILES_DIR")
        if env:
            return [("DBT_PROFILES_DIR", Path(env).expanduser().resolve())]
        candidates.append(("the project directory", self.project_dir))
        candidates.append(("the current directory", Path.cwd()))
        candidates.append(("~/.dbt/", Path.home() / ".dbt"))
        return candidates

    @property
    def profiles_dir(self) -> Path:
        """The folder whose profiles.yml is used; ManifestError naming every place looked at."""
        candidates = self.profiles_candidates()
        for _, folder in candidates:
            if (folder / "profiles.yml").is_file():
                return folder
        looked = "; ".join(f"{folder / 'profiles.yml'} ({why})" for why, folder in candidates)
        raise ManifestError(f"No profiles.yml found for the dbt project {self.project_dir}. Looked in: {looked}. "
                            "Pass --profiles-dir or set DBT_PROFILES_DIR.")

    @property
    def manifest_path(self) -> Path:
        return self.project_dir / self._target_path / "manifest.json"

    @property
    def _target_path(self) -> str:
        return str(self.project_config().get("target-path") or "target")

    def project_config(self) -> dict:
        try:
            return read_yaml(self.project_dir / "dbt_project.yml") or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ManifestError(f"Cannot read {self.project_dir / 'dbt_project.yml'}: {exc}") from None

    def resolve_path(self, path: str | os.PathLike) -> Path:
        """A path from the profile or project, relative to the project directory as dbt sees it."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.project_dir / candidate

    def getenv(self, name: str, default: str | None = None) -> str | None:
        """The environment as this project sees it: the overrides, then the process."""
        if name in self.env:
            return self.env[name]
        return os.environ.get(name, default)

    def variables(self) -> dict[str, str]:
        """The overrides this project applies to os.environ while dbt runs."""
        values = dict(self.env)
        if self.target:
            values["FEATURESTORE_TARGET"] = self.target
        if self.getenv("DBT_USE_COLORS") is None and not _is_terminal(sys.stdout):
            values["DBT_USE_COLORS"] = "false"  # dbt colours even a pipe or a CI log
        return values

    @contextmanager
    def environment(self):
        """Run dbt as a user would from the project: its directory, its environment overrides."""
        wanted = self.variables()
        saved = {name: os.environ.get(name) for name in wanted}
        cwd = os.getcwd()
        os.environ.update(wanted)
        os.chdir(self.project_dir)
        try:
            yield wanted
        finally:
            os.chdir(cwd)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # -- manifest ----------------------------------------------------------------------------
    def _source_folders(self) -> list[Path]:
        config = self.project_config()
        folders = []
        for key, default in (("model-paths", ["models"]), ("macro-paths", ["macros"]), ("test-paths", ["tests"]),
                             ("seed-paths", ["seeds"]), ("snapshot-paths", ["snapshots"])):
            folders += [self.project_dir / name for name in (config.get(key) or default)]
        return folders + [self.project_dir / "dbt_packages"]

    def manifest_is_stale(self) -> bool:
        manifest = self.manifest_path
        if not manifest.is_file():
            return True
        built = manifest.stat().st_mtime
        for name in _PROJECT_FILES:
            path = self.project_dir / name
            if path.is_file() and path.stat().st_mtime > built:
                return True
        for root in self._source_folders():
            if root.is_dir():
                for path in root.rglob("*"):
                    if path.suffix in _SOURCE_SUFFIXES and path.is_file() and path.stat().st_mtime > built:
                        return True
        return False

    @property
    def _parsed_for_path(self) -> Path:
        return self.manifest_path.parent / "featurestore_parsed_for.txt"

    def target_fingerprint(self) -> str:
        """What the manifest's relation names depend on: the rendered target, secrets left out."""
        target = {key: value for key, value in load_target(self).items() if "pass" not in key and "token" not in key}
        return json.dumps(target, sort_keys=True, default=str)

    def needs_deps(self) -> bool:
        """packages.yml names packages and dbt_packages/ has not been filled."""
        for name in ("packages.yml", "dependencies.yml"):
            path = self.project_dir / name
            if path.is_file():
                document = read_yaml(path) or {}
                if document.get("packages") and not (self.project_dir / "dbt_packages").is_dir():
                    return True
        return False

    def ensure_manifest(self) -> Path:
        """The manifest path, running `dbt deps` when packages are missing and `dbt parse` when the
        manifest is missing, older than the project, or written for another target (relation names
        depend on the target's database and schema)."""
        if self.needs_deps():
            self.run("deps", "--quiet")
        marker = self._parsed_for_path
        same_target = (marker.is_file() and self.manifest_path.is_file()
                       and self.manifest_path.stat().st_mtime <= marker.stat().st_mtime
                       and marker.read_text() == self.target_fingerprint())
        if self.manifest_is_stale():
            self.run("parse", "--quiet")
        elif not same_target:
            if self._manifest_matches_target():  # e.g. the user's own `dbt run` rewrote it
                marker.write_text(self.target_fingerprint())
            else:
                self.run("parse", "--quiet")
        return self.manifest_path

    def _manifest_matches_target(self) -> bool:
        """Whether a manifest written by another dbt command (not ours, so without our marker)
        names relations of this target: its adapter, and the database and schema of every model
        that does not set its own. Saves a `dbt parse` (seconds) after a plain `dbt run`."""
        target = load_target(self)
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if manifest.get("metadata", {}).get("adapter_type") != target.get("type"):
            return False
        if target.get("type") == "duckdb":
            path = str(target.get("path", ":memory:"))
            database = target.get("database") or ("memory" if path == ":memory:" else Path(path).stem)
        else:
            database = target.get("database") or target.get("dbname")
        models = [node for node in manifest.get("nodes", {}).values() if node.get("resource_type") == "model"
                  and not (node.get("config") or {}).get("schema") and not (node.get("config") or {}).get("database")]
        return bool(models) and all(node.get("schema") == target.get("schema")
                                    and (database is None or node.get("database") == database) for node in models)

    # -- running dbt -------------------------------------------------------------------------
    def command_args(self, command: str, *args: str) -> list[str]:
        full = [*command.split(), "--project-dir", str(self.project_dir)]
        if command not in ("deps", "clean"):
            full += ["--profiles-dir", str(self.profiles_dir)]
        if self.target and "--target" not in args and command not in ("deps", "clean"):
            full += ["--target", self.target]
        return full + list(args)

    def dbt_executable(self) -> str | None:
        """The dbt command to run as a subprocess, or None to run dbt in-process (module docstring)."""
        choice = (self.getenv("FEATURESTORE_DBT") or "").strip()
        if choice.lower() in _IN_PROCESS:
            if not _python_api_available():
                raise ManifestError(f"FEATURESTORE_DBT={choice} asks for dbt in-process, but dbt-core's Python API "
                                    "(dbt.cli.main) cannot be imported here; install dbt-core, or set "
                                    "FEATURESTORE_DBT to a dbt executable.")
            return None
        if choice and choice.lower() != "auto":
            found = shutil.which(choice)
            if found is None:
                raise ManifestError(f"FEATURESTORE_DBT={choice} is not an executable dbt command; give the path "
                                    "of dbt (or `inprocess`, or leave it unset).")
            return found
        if _python_api_available():
            return None
        found = shutil.which("dbt")
        if found is None:
            raise ManifestError("dbt cannot be run: dbt-core's Python API is not importable and no `dbt` command "
                                "is on PATH. Install dbt-core with an adapter, or set FEATURESTORE_DBT to dbt's path.")
        return found

    def run(self, command: str, *args: str, raise_on_failure: bool = True) -> DbtResult:
        """Run one dbt command (in-process or as a command: `dbt_executable`) and return its result."""
        if command not in ("deps", "clean", "debug"):
            from .profiles import load_target

            load_target(self)  # a missing profile or target said in our one line, before dbt says it in eight
        if command not in ("deps", "clean", "parse") and self.needs_deps():
            self.run("deps", "--quiet")
        arguments = self.command_args(command, *args)
        executable = self.dbt_executable()
        result = self._run_in_process(arguments) if executable is None else self._run_command(executable, arguments)
        if self.manifest_path.is_file() and command not in ("deps", "clean", "debug"):
            # remember which target wrote the manifest (dbt rewrites it on most commands)
            self._parsed_for_path.write_text(self.target_fingerprint())
        if raise_on_failure and not result.success:
            raise ManifestError(f"`dbt {command}` failed in {self.project_dir}{result.describe_failure()}")
        return result

    def _run_in_process(self, arguments: list[str]) -> DbtResult:
        dbtRunner = _dbt_runner()

        with self.environment(), noticing_interrupts() as interrupted:
            try:
                outcome = dbtRunner().invoke(arguments)
            finally:
                _release_duckdb()
        if interrupted() or isinstance(outcome.exception, KeyboardInterrupt):
            # dbtRunner returns Ctrl-C as a failed result, and one landing while dbt parses comes back
            # as whatever error it broke (a half-read macro config): it is the user's interrupt, not dbt's failure
            raise KeyboardInterrupt
        nodes = getattr(outcome.result, "results", None) or ()
        results = tuple(NodeResult(node.node.name, node.node.unique_id, str(node.status), node.message)
                        for node in nodes if getattr(node, "node", None) is not None)
        return DbtResult(bool(outcome.success), results, outcome.exception)

    def _run_command(self, executable: str, arguments: list[str]) -> DbtResult:
        """dbt as a child process, from the project directory with this project's environment. An
        interrupt is passed on as dbt's own Ctrl-C (it stops after the running statement) and
        waited for, so nothing is left half-written by us."""
        run_results = self.project_dir / self._target_path / "run_results.json"
        before = run_results.stat().st_mtime_ns if run_results.is_file() else None
        environment = {**os.environ, **self.variables()}
        with subprocess.Popen([executable, *arguments], cwd=self.project_dir, env=environment) as process:
            try:
                code = process.wait()
            except KeyboardInterrupt:
                # Ctrl-C in a terminal reaches dbt too (one process group): a second SIGINT would
                # break into dbt's own cancelling. Only a dbt still running after a moment (we
                # alone were signalled) is sent one.
                try:
                    process.wait(timeout=_INTERRUPT_GRACE)
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGINT)
                    process.wait()
                raise
        results = ()
        if run_results.is_file() and run_results.stat().st_mtime_ns != before:  # written by this run
            results = _node_results(run_results, self.manifest_path)
        return DbtResult(code == 0, results, None, executable, code)


def _dbt_runner():
    """dbt-core's `dbtRunner`, imported on first use (dbt takes 1-2 s to import) with the cyclic
    garbage collector paused meanwhile: the import makes some hundred thousand objects that live as
    long as the process (modules, classes, mashumaro's generated code), and the collections they
    would trigger on the way find no garbage (15 % of the import's CPU time here)."""
    if "dbt.cli.main" not in sys.modules:
        import gc

        collecting = gc.isenabled()
        gc.disable()
        try:
            import dbt.cli.main  # noqa: F401
        finally:
            if collecting:
                gc.enable()
    from dbt.cli.main import dbtRunner

    return dbtRunner


def _python_api_available() -> bool:
    """Whether dbt-core's Python API can be imported (without importing dbt: it is slow)."""
    import importlib.util

    try:
        package = importlib.util.find_spec("dbt.cli")  # not dbt.cli.main: finding it would import dbt.cli (3 s)
    except (ImportError, ValueError):
        return False
    return package is not None and any((Path(folder) / "main.py").is_file()
                                       for folder in package.submodule_search_locations or ())


def _node_results(path: Path, manifest_path: Path) -> tuple[NodeResult, ...]:
    """The nodes of dbt's run_results.json (dbt run as a command), named as in the manifest."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    try:
        names = {key: node.get("name") for key, node in json.loads(manifest_path.read_text(encoding="utf-8"))
                 .get("nodes", {}).items()}
    except (OSError, ValueError):
        names = {}
    nodes = []
    for entry in document.get("results") or []:
        unique_id = str(entry.get("unique_id", ""))
        name = names.get(unique_id) or (unique_id.split(".") + ["", "", ""])[2]
        nodes.append(NodeResult(name, unique_id, str(entry.get("status", "")), entry.get("message")))
    return tuple(nodes)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a command.

    Otherwise the file stays open (and locked) with dbt-duckdb's settings and the same process
    cannot open it again with others (the SDK, the tests). dbt-duckdb reopens it on its next command.
    """
    # only if dbt loaded it: importing it here could re-run DuckDB's native initialisation after
    # Ctrl-C broke into the first one, which aborts the process
    connections = sys.modules.get("dbt.adapters.duckdb.connections")
    DuckDBConnectionManager = getattr(connections, "DuckDBConnectionManager", None)
    if DuckDBConnectionManager is None:
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        try:
            environment.close()
        finally:
            DuckDBConnectionManager._ENV = None
