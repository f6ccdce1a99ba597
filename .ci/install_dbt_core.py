"""Install a dbt-core release into the running Python: `python .ci/install_dbt_core.py 1.12`.

dbt-core 1.12 requires `dbt-core-experimental-parser`, whose build downloads a binary from outside
the package registry (it fails where only the registry is reachable). dbt-core 1.12's own Python
code does not import it, so this installs dbt-core's other requirements, read from the wheel's
metadata (no hand-kept list), then dbt-core itself without dependencies. Any other release line
(1.11) installs the ordinary way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SKIPPED = {"dbt-core-experimental-parser"}


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    wanted = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            requirement = line.split(":", 1)[1].strip()
            name = re.match(r"\s*([A-Za-z0-9._-]+)", requirement).group(1)  # PEP 508: the name comes first
            if name.lower() not in SKIPPED and "extra ==" not in requirement:
                wanted.append(requirement)
    return wanted


def main(line: str) -> None:
    spec = f"dbt-core=={line}" if line.count(".") >= 2 else f"dbt-core=={line}.*"
    if line.startswith("1.11"):
        pip("install", "--quiet", spec)
        return
    with tempfile.TemporaryDirectory() as folder:
        pip("download", "--quiet", "--no-deps", "--dest", folder, spec)
        wheel = next(Path(folder).glob("dbt_core-*.whl"))
        pip("install", "--quiet", *requirements(wheel))
        pip("install", "--quiet", "--no-deps", str(wheel))
    from importlib.metadata import version

    print(f"dbt-core {version('dbt-core')} installed (without {', '.join(sorted(SKIPPED))}, which dbt-core does not import)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "1.12")
