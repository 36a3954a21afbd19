"""The node's parameters as one declarative table: declaration, validation, config/tracker.yaml and the
README table all come from here (generate_parameter_library's idea, in plain Python).

`tracker.<field>` parameters are generated from the fields of TrackerConfig: tuples become flat arrays
(pairs of pairs flattened row by row), an unset optional number is `.nan`, an unset optional pair `[]`
(or NaNs). `python -m rts_ros.ros.params --yaml` / `--markdown` prints the YAML file / the docs table.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from rts_ros.errors import ConfigError

# ROS parameter types by name (rcl_interfaces/ParameterType values).
PTYPES = {"bool": 1, "int": 2, "double": 3, "string": 4, "int[]": 7, "double[]": 8}


@dataclass(frozen=True)
class ParamSpec:
    name: str                 # ROS name (dots = namespaces)
    ptype: str                # key of PTYPES
    default: Any
    description: str
    check: Callable[[Any], str | None] | None = None   # error text for a bad value, None when fine
    field: str | None = None  # TrackerConfig field for tracker.* parameters
    kind: str = ""            # how a tracker field maps: "", "opt" (nan = null), "pairs", "opt_arr"


def _one_of(*values: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in values else f"must be one of {', '.join(values)}"


def _int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be an integer in [{lo}, {hi}]"


def _device(v: str) -> str | None:
    return None if re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) else "must be auto, cpu, cuda or cuda:N"


def _positive(v: float) -> str | None:
    return None if math.isfinite(v) and v > 0 else "must be a positive number"


NODE_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("weights", "string", "",
              "weights folder (rts.safetensors + rts.json, optional sta.*); empty = the shipped default model"),
    ParamSpec("device", "string", "auto", "auto (CUDA when available, else CPU), cpu, cuda or cuda:N", _device),
    ParamSpec("cpu_threads", "int", -1,
              "threads per CPU operation of the network: -1 = auto (2 or 1, whichever gives faster frames now; "
              "re-checked while tracking, as other processes load the CPU or stop), 0 = torch's default (one per "
              "core), N = fixed",
              _int_range(-1, 256)),
    ParamSpec("fp16", "bool", False,
              "half-precision inference on CUDA if the tracker library supports it (else fp32, with a warning)"),
    ParamSpec("autostart", "bool", True,
              "configure and activate at start; false = wait for lifecycle transitions"),
    ParamSpec("warmup", "bool", True, "run the networks once at configure so the first frame is not slow"),
    ParamSpec("model_tracker_settings", "bool", True,
              "true: a tracker.* value left at the rts50 default takes the model's recommended setting (rts.json "
              "`tracker`); false: the tracker.* parameters apply exactly as given (untouched = the reference)"),
    ParamSpec("image_transport", "string", "raw",
              "raw: sensor_msgs/Image on `image`; compressed: sensor_msgs/CompressedImage (JPEG/PNG, e.g. "
              "image_transport's compressed transport) on `image` + /compressed", _one_of("raw", "compressed")),
    ParamSpec("image_qos.reliability", "string", "best_effort",
              "image subscription reliability: best_effort (sensor data) or reliable",
              _one_of("best_effort", "reliable")),
    ParamSpec("image_qos.depth", "int", 1, "image subscription queue depth (1 = newest only)", _int_range(1, 100)),
    ParamSpec("frame_buffer", "int", 30,
              "images kept for stamped init (an init naming an older stamp falls back to the newest image)",
              _int_range(1, 1000)),
    ParamSpec("publish_idle", "bool", True, "publish a Track with state IDLE for each image while no target is set"),
    ParamSpec("diagnostics_period", "double", 1.0, "seconds between /diagnostics messages", _positive),
)


# --- tracker.* parameters from TrackerConfig -------------------------------------------------------------
def _field_comments(cls) -> dict[str, str]:
    """`name: type = default  # comment` lines of the dataclass source: the comments document the fields."""
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out = {}
    for m in re.finditer(r"^\s+(\w+):[^=\n]+=[^#\n]*#\s*(.+)$", src, re.M):
        out[m.group(1)] = m.group(2).strip()
    return out


def tracker_param_specs() -> tuple[ParamSpec, ...]:
    from rts_ros.tracker.config import TrackerConfig  # numpy/torch-free module

    defaults, comments = TrackerConfig(), _field_comments(TrackerConfig)
    specs = []
    for f in dataclasses.fields(TrackerConfig):
        t, v = str(f.type), getattr(defaults, f.name)
        doc = comments.get(f.name, "RTS setting (see the library's TrackerConfig)")
        optional = "None" in t
        if "tuple[tuple" in t:
            spec = ParamSpec(f"tracker.{f.name}", "double[]", [float(x) for p in v for x in p],
                             doc + " (pairs flattened)", field=f.name, kind="pairs")
        elif t.startswith("tuple[int"):
            spec = ParamSpec(f"tracker.{f.name}", "int[]", [int(x) for x in v], doc, field=f.name)
        elif t.startswith("tuple[float"):
            spec = ParamSpec(f"tracker.{f.name}", "double[]", [] if v is None else [float(x) for x in v],
                             doc + (" ([] = unset)" if optional else ""), field=f.name,
                             kind="opt_arr" if optional else "")
        elif t.startswith("bool"):
            spec = ParamSpec(f"tracker.{f.name}", "bool", bool(v), doc, field=f.name)
        elif t.startswith("int"):
            spec = ParamSpec(f"tracker.{f.name}", "int", int(v), doc, field=f.name)
        elif t.startswith("float"):
            spec = ParamSpec(f"tracker.{f.name}", "double", math.nan if v is None else float(v),
                             doc + (" (.nan = unset)" if optional else ""), field=f.name,
                             kind="opt" if optional else "")
        elif t.startswith("str"):
            spec = ParamSpec(f"tracker.{f.name}", "string", str(v), doc, field=f.name)
        else:  # a new field type: fail loudly in the tests rather than silently not exposing it
            raise TypeError(f"TrackerConfig.{f.name} has type {t}, which has no ROS parameter mapping")
        specs.append(spec)
    return tuple(specs)


def all_param_specs() -> tuple[ParamSpec, ...]:
    return NODE_PARAMS + tracker_param_specs()


def tracker_value(spec: ParamSpec, value: Any) -> Any:
    """ROS parameter value -> TrackerConfig.from_dict value."""
    if spec.kind == "opt":
        return None if isinstance(value, float) and math.isnan(value) else value
    if spec.kind == "opt_arr":
        vals = list(value)
        return None if not vals or any(math.isnan(x) for x in vals) else vals
    if spec.kind == "pairs":
        vals = list(value)
        if len(vals) % 2:
            raise ConfigError(f"parameter {spec.name}: needs an even number of values (pairs), got {vals}")
        return [vals[i:i + 2] for i in range(0, len(vals), 2)]
    return list(value) if spec.ptype.endswith("[]") else value


@dataclass(frozen=True)
class NodeSettings:
    """The validated parameters, as the node uses them."""
    weights: str
    device: str
    cpu_threads: int
    fp16: bool
    autostart: bool
    warmup: bool
    model_tracker_settings: bool
    image_compressed: bool
    image_reliable: bool
    image_depth: int
    frame_buffer: int
    publish_idle: bool
    diagnostics_period: float
    tracker: Any  # TrackerConfig


def validate(values: dict[str, Any]) -> NodeSettings:
    """All parameter values by ROS name -> NodeSettings; ConfigError naming the parameter and the fix."""
    errors = []
    for spec in NODE_PARAMS:
        err = spec.check(values[spec.name]) if spec.check else None
        if err:
            errors.append(f"parameter {spec.name} = {values[spec.name]!r}: {err}")
    if errors:
        raise ConfigError("; ".join(errors))
    from rts_ros.tracker.config import TrackerConfig

    cfg_dict = {s.field: tracker_value(s, values[s.name]) for s in tracker_param_specs()}
    try:
        cfg = TrackerConfig.from_dict(cfg_dict)
    except ConfigError as e:
        raise ConfigError(f"{e} (ROS parameters use the prefix 'tracker.', e.g. tracker.search_area_scale)") from e
    return NodeSettings(
        weights=values["weights"], device=values["device"], cpu_threads=values["cpu_threads"], fp16=values["fp16"],
        autostart=values["autostart"],
        warmup=values["warmup"], model_tracker_settings=values["model_tracker_settings"],
        image_compressed=values["image_transport"] == "compressed",
        image_reliable=values["image_qos.reliability"] == "reliable",
        image_depth=values["image_qos.depth"], frame_buffer=values["frame_buffer"],
        publish_idle=values["publish_idle"], diagnostics_period=values["diagnostics_period"], tracker=cfg)


# --- generated documentation ---------------------------------------------------------------------------
def _yaml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return ".nan" if math.isnan(v) else (".inf" if v == math.inf else "-.inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return '""' if v == "" else v
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return str(v)


def render_yaml() -> str:
    """config/tracker.yaml: every parameter with its default and its description, nested by prefix."""
    lines = ["# Parameters of the rts_tracker node. Generated by `python -m rts_ros.ros.params --yaml`;",
             "# edit values freely, keep the keys (the node validates everything at configure).",
             "/**:", "  ros__parameters:"]
    opened: list[str] = []
    for spec in all_param_specs():
        *groups, leaf = spec.name.split(".")
        while opened and opened != groups[: len(opened)]:
            opened.pop()
        for g in groups[len(opened):]:
            lines.append("    " + "  " * len(opened) + f"{g}:")
            opened.append(g)
        pad = "    " + "  " * len(opened)
        lines.append(f"{pad}# {spec.description}")
        lines.append(f"{pad}{leaf}: {_yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    rows = ["| parameter | type | default | meaning |", "| --- | --- | --- | --- |"]
    for spec in all_param_specs():
        rows.append(f"| `{spec.name}` | {spec.ptype} | `{_yaml_value(spec.default)}` | {spec.description} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--yaml", action="store_true", help="print config/tracker.yaml")
    ap.add_argument("--markdown", action="store_true", help="print the README parameter table")
    args = ap.parse_args(argv)
    print(render_markdown() if args.markdown else render_yaml(), end="")


if __name__ == "__main__":
    main()
