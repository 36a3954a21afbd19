"""Reading a YAML settings file with one-line errors (what is wrong, and where)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rts_ros.errors import ConfigError


def read_yaml(path: Path, what: str) -> Any:
    """The parsed content of ``path`` (None for an empty file); ConfigError naming ``what`` and the file when it
    cannot be read or is not valid YAML (with the 1-based line and column, instead of yaml's excerpt)."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or " ".join(str(e).split())
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{what} {path} is not valid YAML: {problem}{where}") from None
