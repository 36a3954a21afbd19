"""Rebuild the real evaluation sets of docs/evaluation.md from public git repositories, pinned to commits.

The sequences are benchmark data that tracker and VOS repositories ship as demos. They may not be redistributed
with this project, so a manifest (config/eval_sets/*.yaml) records where each one lives: repository, commit,
paths and frame ranges. A commit hash pins the content, so a rebuilt set is the one the documented numbers come
from. Nothing here runs at tracking time; `rts-eval-sets` calls git only when a user asks for a set.

Box sets are written as `<Name>/img/000001.<ext>` + `groundtruth.txt` (x,y,w,h per line), mask sets in the DAVIS
layout (`JPEGImages/480p/<video>/`, `Annotations/480p/<video>/`); both are what `rts-eval` reads.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from rts_ros.data.image_files import image_files
from rts_ros.errors import ConfigError, RTSError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")     # becomes a folder name: no separators, no ".."


class SourceError(RTSError):
    """A repository, commit or path of a manifest could not be read, or its data does not fit together."""


@dataclass(frozen=True)
class BoxSequence:
    """One box-annotated sequence: the image files of a folder (sorted by name) and a box file."""
    name: str
    repo: str
    commit: str
    frames: str                              # folder in the repository
    boxes: str                               # text file, or a zip file when boxes_member is set
    frame_range: tuple[int, int] | None = None   # 1-based, inclusive, over the sorted images
    box_range: tuple[int, int] | None = None     # 1-based, inclusive, over the box lines
    box_format: str = "xywh"                 # xywh: the first 4 values; polygon: 8 values -> enclosing box
    boxes_member: str | None = None          # member of the zip file `boxes` that holds the lines
    box_decimals: int = 4                    # decimals of the boxes made from polygons


@dataclass(frozen=True)
class MaskVideo:
    """One mask-annotated video: frames (a folder of images, or a video file) and a folder of PNG masks."""
    name: str
    repo: str
    commit: str
    frames: str                              # folder of images, or a video file (decoded to JPEG, quality 95)
    masks: str                               # folder of PNG masks whose stems match the frames'


@dataclass(frozen=True)
class EvalSetManifest:
    name: str
    layout: str                              # "boxes" or "davis"
    sequences: tuple[BoxSequence, ...] | tuple[MaskVideo, ...]
    note: str = ""


# ---------------------------------------------------------------------------------------------- manifests
def _range(value, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and v >= 1 for v in value) or value[0] > value[1]):
        raise ConfigError(f"{where}: a range is [first, last], 1-based integers with first <= last; got {value!r}")
    return int(value[0]), int(value[1])


def load_manifest(path: str | Path) -> EvalSetManifest:
    """Read and validate one manifest. Set-level keys are defaults for every sequence; `{name}` in a path
    stands for the sequence's name, so a list of plain names is enough for videos of one repository."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{p}: cannot read the manifest: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("sequences"), list) or not data["sequences"]:
        raise ConfigError(f"{p}: a manifest needs a non-empty `sequences:` list")
    layout = data.get("layout")
    if layout not in ("boxes", "davis"):
        raise ConfigError(f"{p}: layout must be `boxes` or `davis`, got {layout!r}")
    fields = (("repo", "commit", "frames", "boxes", "frame_range", "box_range", "box_format", "boxes_member",
               "box_decimals")
              if layout == "boxes" else ("repo", "commit", "frames", "masks"))
    unknown = set(data) - set(fields) - {"name", "layout", "note", "sequences"}
    if unknown:
        raise ConfigError(f"{p}: unknown keys {sorted(unknown)}; allowed: name, layout, note, sequences, "
                          f"{', '.join(fields)}")
    set_name = str(data.get("name") or p.stem)
    if not _NAME.match(set_name):
        raise ConfigError(f"{p}: the set name {set_name!r} must be a plain folder name")
    defaults = {k: data[k] for k in fields if k in data}
    items = []
    for i, entry in enumerate(data["sequences"]):
        where = f"{p}: sequences[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not _NAME.match(entry["name"]):
            raise ConfigError(f"{where}: each sequence is a name or a mapping with `name:`, and a name is a plain "
                              f"folder name (letters, digits, _ . -)")
        unknown = set(entry) - set(fields) - {"name"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: name, {', '.join(fields)}")
        spec = {**defaults, **entry}
        if isinstance(spec.get("commit"), (int, float)):
            raise ConfigError(f"{where}: YAML read the commit as a number; write it in quotes")
        for key in ("repo", "commit", "frames", "boxes" if layout == "boxes" else "masks"):
            if not isinstance(spec.get(key), str):
                raise ConfigError(f"{where} ({entry['name']}): `{key}` is missing")
        if not _REPO.match(spec["repo"]):
            raise ConfigError(f"{where}: repo must be owner/name, got {spec['repo']!r}")
        if not _COMMIT.match(spec["commit"]):
            raise ConfigError(f"{where}: commit must be a full 40-hex hash (it pins the data), got {spec['commit']!r}")
        for key in ("frames", "boxes", "masks"):
            if isinstance(spec.get(key), str):
                spec[key] = spec[key].replace("{name}", spec["name"])
        if layout == "boxes":
            fmt = spec.get("box_format", "xywh")
            if fmt not in ("xywh", "polygon"):
                raise ConfigError(f"{where}: box_format must be xywh or polygon, got {fmt!r}")
            decimals = spec.get("box_decimals", 4)
            if not isinstance(decimals, int) or not 0 <= decimals <= 8:
                raise ConfigError(f"{where}: box_decimals must be an integer 0-8, got {decimals!r}")
            items.append(BoxSequence(
                name=spec["name"], repo=spec["repo"], commit=spec["commit"], frames=spec["frames"],
                boxes=spec["boxes"], frame_range=_range(spec.get("frame_range"), where),
                box_range=_range(spec.get("box_range"), where), box_format=fmt,
                boxes_member=spec.get("boxes_member"), box_decimals=decimals))
        else:
            items.append(MaskVideo(name=spec["name"], repo=spec["repo"], commit=spec["commit"],
                                   frames=spec["frames"], masks=spec["masks"]))
    names = [s.name for s in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"{p}: sequence names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    return EvalSetManifest(name=set_name, layout=layout, sequences=tuple(items),
                           note=str(data.get("note", "")))


# ---------------------------------------------------------------------------------------------- git access
class GitRepos:
    """Reads files of pinned commits. With `mirror`, repositories are local git directories
    (`<mirror>/<owner>+<name>[/repo]`, bare or with a `.git` folder); otherwise each commit is fetched shallowly
    from `https://github.com/<owner>/<name>` into `cache`."""

    def __init__(self, cache: str | Path, mirror: str | Path | None = None, url: str = "https://github.com/{repo}",
                 log: Callable[[str], None] | None = None):
        self.cache = Path(cache)
        self.mirror = Path(mirror) if mirror else None
        self.url = url
        self.log = log or (lambda message: None)
        self._ready: dict[tuple[str, str], Path] = {}

    def _git(self, *args: str, git_dir: Path | None = None) -> bytes:
        cmd = ["git"] + ([f"--git-dir={git_dir}"] if git_dir else []) + list(args)
        try:
            done = subprocess.run(cmd, capture_output=True, check=False)
        except FileNotFoundError as err:
            raise SourceError("git is not installed; it is needed to fetch the evaluation sets") from err
        if done.returncode != 0:
            raise SourceError(f"`{' '.join(cmd)}` failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout

    def git_dir(self, repo: str, commit: str) -> Path:
        key = (repo, commit)
        if key in self._ready:
            return self._ready[key]
        local = repo.replace("/", "+")
        if self.mirror is not None:
            candidates = [self.mirror / local / "repo", self.mirror / local / "repo" / ".git", self.mirror / local,
                          self.mirror / local / ".git"]
            gd = next((c for c in candidates if (c / "HEAD").exists()), None)
            if gd is None:
                raise SourceError(f"{repo}: no local git directory under {self.mirror} ({local}[/repo][/.git])")
        else:
            gd = self.cache / f"{local}.git"
            if not (gd / "HEAD").exists():
                gd.mkdir(parents=True, exist_ok=True)
                self._git("init", "--bare", "--quiet", str(gd))
            if not self._has_commit(gd, commit):
                url = self.url.format(repo=repo)
                self.log(f"fetching {repo} @ {commit[:12]} from {url}")
                try:   # GitHub serves a single commit by hash; that avoids cloning the whole history
                    self._git("fetch", "--quiet", "--depth", "1", url, commit, git_dir=gd)
                except SourceError:
                    self.log(f"{url} does not serve single commits: fetching its whole history (may be large)")
                    self._git("fetch", "--quiet", url, "+refs/heads/*:refs/heads/*", git_dir=gd)
        if not self._has_commit(gd, commit):
            raise SourceError(f"{repo}: commit {commit} is not in {gd}")
        self._ready[key] = gd
        return gd

    def _has_commit(self, gd: Path, commit: str) -> bool:
        try:
            self._git("cat-file", "-e", f"{commit}^{{commit}}", git_dir=gd)
            return True
        except SourceError:
            return False

    def read(self, repo: str, commit: str, path: str) -> bytes:
        return self._git("show", f"{commit}:{path}", git_dir=self.git_dir(repo, commit))

    def extract(self, repo: str, commit: str, path: str, dest: Path) -> Path:
        """Write the tree `path` of the commit under `dest`; returns dest/path."""
        data = self._git("archive", "--format=tar", commit, "--", path, git_dir=self.git_dir(repo, commit))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        return dest / path


# ---------------------------------------------------------------------------------------------- building
def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SourceError(f"{folder.name}: not a folder in the repository")
    files = image_files(folder)
    if not files:
        raise SourceError(f"{folder}: no images")
    return files


def _select(items: list, rng: tuple[int, int] | None, what: str, name: str) -> list:
    if rng is None:
        return items
    first, last = rng
    if last > len(items):
        raise SourceError(f"{name}: {what} range {first}-{last} but only {len(items)} {what} in the source")
    return items[first - 1:last]


def parse_box_lines(text: str, box_format: str, decimals: int = 4) -> list[str]:
    """Benchmark box lines (comma, tab or space separated) as `x,y,w,h` lines. Plain boxes keep their values as
    written; a VOT polygon (x1,y1,...,x4,y4) becomes its enclosing axis-aligned box, rounded to `decimals`
    (trailing zeros dropped); NaN rows stay NaN rows."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        vals = [v for v in re.split(r"[,\s]+", line.strip()) if v]
        if box_format == "polygon":
            if len(vals) == 4:       # VOT files mix axis-aligned rows in
                out.append(",".join(vals))
                continue
            if len(vals) != 8:
                raise SourceError(f"box line {n}: a polygon needs 8 values, got {len(vals)}: {line!r}")
            xs, ys = [float(v) for v in vals[0::2]], [float(v) for v in vals[1::2]]
            x0, y0 = min(xs), min(ys)
            out.append(",".join(_number(v, decimals) for v in (x0, y0, max(xs) - x0, max(ys) - y0)))
        else:
            if len(vals) < 4:
                raise SourceError(f"box line {n}: needs x,y,w,h, got {line!r}")
            out.append(",".join(vals[:4]))
    return out


def _number(v: float, decimals: int) -> str:
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _first_box_ok(line: str) -> bool:
    try:
        x, y, w, h = (float(v) for v in line.split(","))
    except ValueError:
        return False
    return w > 0 and h > 0


def build_box_sequence(seq: BoxSequence, repos: GitRepos, out_dir: Path, scratch: Path) -> int:
    src = repos.extract(seq.repo, seq.commit, seq.frames, scratch)
    frames = _select(_images(src), seq.frame_range, "frames", seq.name)
    raw = repos.read(seq.repo, seq.commit, seq.boxes)
    if seq.boxes_member:
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                raw = zf.read(seq.boxes_member)
        except (zipfile.BadZipFile, KeyError) as err:
            raise SourceError(f"{seq.name}: {seq.boxes} has no member {seq.boxes_member!r}: {err}") from err
    boxes = _select(parse_box_lines(raw.decode("utf-8", errors="replace"), seq.box_format, seq.box_decimals),
                    seq.box_range, "box lines", seq.name)
    if len(boxes) != len(frames):
        raise SourceError(f"{seq.name}: {len(frames)} frames but {len(boxes)} boxes; check frame_range/box_range")
    if not _first_box_ok(boxes[0]):
        raise SourceError(f"{seq.name}: the first box {boxes[0]!r} has no positive size")
    target = out_dir / seq.name
    if target.exists():
        shutil.rmtree(target)
    (target / "img").mkdir(parents=True)
    for i, f in enumerate(frames, 1):
        shutil.copyfile(f, target / "img" / f"{i:06d}{f.suffix.lower()}")
    (target / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
    return len(frames)


def _decode_video(data: bytes, suffix: str, dest: Path) -> int:
    import cv2

    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        cap = cv2.VideoCapture(tmp.name)
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            cv2.imwrite(str(dest / f"{n:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            n += 1
        cap.release()
    if n == 0:
        raise SourceError(f"{dest.name}: OpenCV decoded no frames from the video file")
    return n


def build_mask_video(video: MaskVideo, repos: GitRepos, out_dir: Path, scratch: Path) -> int:
    jpg_dir = out_dir / "JPEGImages" / "480p" / video.name
    ann_dir = out_dir / "Annotations" / "480p" / video.name
    for d in (jpg_dir, ann_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    masks = [m for m in _images(repos.extract(video.repo, video.commit, video.masks, scratch))
             if m.suffix.lower() == ".png"]
    if not masks:
        raise SourceError(f"{video.name}: no PNG masks in {video.masks}")
    for m in masks:
        shutil.copyfile(m, ann_dir / m.name)
    if Path(video.frames).suffix.lower() not in VIDEO_SUFFIXES:
        frames = _images(repos.extract(video.repo, video.commit, video.frames, scratch))
        for f in frames:
            shutil.copyfile(f, jpg_dir / f.name)
        n = len(frames)
    else:
        n = _decode_video(repos.read(video.repo, video.commit, video.frames), Path(video.frames).suffix, jpg_dir)
    stems = {p.stem for p in jpg_dir.iterdir()}
    missing = [m.stem for m in masks if m.stem not in stems]
    if missing:
        raise SourceError(f"{video.name}: masks without a frame: {missing[:5]}")
    return n


def build_set(manifest: EvalSetManifest, repos: GitRepos, out_dir: str | Path,
              only: list[str] | None = None,
              progress: Callable[[int, int, str, int], None] | None = None) -> dict[str, int]:
    """Write the set's sequences under out_dir; returns frames per sequence."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in manifest.sequences if not only or s.name in only]
    if only and len(chosen) != len(set(only)):
        known = {s.name for s in manifest.sequences}
        raise ConfigError(f"{manifest.name}: no sequence named {sorted(set(only) - known)}")
    counts: dict[str, int] = {}
    for i, seq in enumerate(chosen, 1):
        with tempfile.TemporaryDirectory(prefix="rts_evalset_") as scratch:
            if isinstance(seq, BoxSequence):
                n = build_box_sequence(seq, repos, out, Path(scratch))
            else:
                n = build_mask_video(seq, repos, out, Path(scratch))
        counts[seq.name] = n
        if progress:
            progress(i, len(chosen), seq.name, n)
    return counts


def manifests_in(folder: str | Path) -> Iterator[Path]:
    yield from sorted(Path(folder).glob("*.yaml"))
