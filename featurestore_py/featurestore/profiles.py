"""Read the dbt target the project runs on, with `env_var()` rendered the way dbt renders it.

Credentials come only from profiles.yml and the environment; nothing here stores them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from .errors import ManifestError

if TYPE_CHECKING:  # profiles is read by dbt.py: only the type is needed here
    from .dbt import DbtProject

_MISSING = object()
# libyaml's parser when PyYAML was built with it: the same documents, ten times faster
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_READ: dict[str, tuple[str, Any]] = {}  # path -> (text, document)


def read_yaml(path: Path) -> Any:
    """A YAML file's document (None when empty); OSError and yaml.YAMLError as reading and parsing
    raise them. A command reads dbt_project.yml and profiles.yml at most of its steps: a text
    parsed before in this process is not parsed again (the file is read each time, so an edit
    is always seen), and each caller gets its own copy."""
    text = path.read_text(encoding="utf-8")
    known = _YAML_READ.get(str(path))
    if known is None or known[0] != text:
        known = _YAML_READ[str(path)] = (text, yaml.load(text, Loader=_YAML_LOADER))
    return copy.deepcopy(known[1])


def _renderer(project: DbtProject) -> jinja2.Environment:
    def env_var(name: str, default: Any = _MISSING) -> str:
        value = project.getenv(name)
        if value is not None:
            return value
        if default is _MISSING:
            raise ManifestError(f"profiles.yml needs the environment variable {name}, which is not set.")
        return default

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.globals["env_var"] = env_var
    environment.filters["as_number"] = lambda value: float(value) if "." in str(value) else int(value)
    environment.filters["as_bool"] = lambda value: str(value).lower() in ("true", "1", "yes")
    return environment


def _render(value: Any, environment: jinja2.Environment) -> Any:
    if isinstance(value, str) and "{{" in value:
        text = environment.from_string(value).render()
        return int(text) if text.isdigit() else text
    if isinstance(value, dict):
        return {key: _render(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, environment) for item in value]
    return value


def load_target(project: DbtProject) -> dict[str, Any]:
    """The rendered output of the project's profile for its target (dbt's own precedence)."""
    profile_name = project.project_config().get("profile")
    if not profile_name:
        raise ManifestError(f"{project.project_dir / 'dbt_project.yml'} names no `profile:`; dbt needs one to connect.")
    path = project.profiles_dir / "profiles.yml"
    try:
        profiles = read_yaml(path) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"Cannot read {path}: {exc}") from None
    if not isinstance(profiles, dict):
        raise ManifestError(f"{path} is not a mapping of profile names to profiles.")
    if profile_name not in profiles:
        raise ManifestError(f"{path} has no profile '{profile_name}' (named in dbt_project.yml).")
    environment = _renderer(project)
    profile = profiles[profile_name] or {}
    target = project.target or _render(profile.get("target", "default"), environment)
    outputs = profile.get("outputs") or {}
    if target not in outputs:
        raise ManifestError(f"Profile '{profile_name}' in {path} has no target '{target}'; it has: {', '.join(outputs)}.")
    try:
        rendered = _render(outputs[target], environment)
    except jinja2.TemplateError as exc:
        raise ManifestError(f"Cannot render target '{target}' of profile '{profile_name}' in {path}: {exc}") from None
    rendered["target_name"] = target
    return rendered
