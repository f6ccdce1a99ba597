"""Read the dbt target the project runs on, with `env_var()` rendered the way dbt renders it.

Credentials come only from profiles.yml and the environment; nothing here stores them.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jinja2
import yaml

from .dbt import DbtProject
from .errors import ManifestError

_MISSING = object()


def _renderer(variables: Mapping[str, str]) -> jinja2.Environment:
    def env_var(name: str, default: Any = _MISSING) -> str:
        if name in variables:
            return variables[name]
        if name in os.environ:
            return os.environ[name]
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
    profile_name = yaml.safe_load((project.project_dir / "dbt_project.yml").read_text())["profile"]
    path = project.profiles_dir / "profiles.yml"
    try:
        profiles = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ManifestError(f"Cannot read {path}: {exc}") from None
    if profile_name not in profiles:
        raise ManifestError(f"{path} has no profile '{profile_name}' (named in dbt_project.yml).")
    environment = _renderer(project.variables())
    profile = profiles[profile_name]
    target = project.target or _render(profile.get("target", "default"), environment)
    outputs = profile.get("outputs") or {}
    if target not in outputs:
        raise ManifestError(f"Profile '{profile_name}' in {path} has no target '{target}'; it has: {', '.join(outputs)}.")
    rendered = _render(outputs[target], environment)
    rendered["target_name"] = target
    return rendered
