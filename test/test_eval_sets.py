"""rts-eval-sets: evaluation sets rebuilt from pinned commits of git repositories (here: a local repository)."""
from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rts_ros.cli.eval_sets import main as eval_sets_main
from rts_ros.data.synthetic_assets import OPENCV_DOC_DATA
from rts_ros.errors import ConfigError
from rts_ros.eval.public_sets import GitRepos, SourceError, build_set, load_manifest, manifests_in, parse_box_lines

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = OPENCV_DOC_DATA / "fruits.jpg"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def _frames(folder: Path, n: int, names: str = "{:04d}.jpg") -> list[bytes]:
    """n distinct JPEG frames (crops of a real photo where the docs package has it)."""
    folder.mkdir(parents=True)
    photo = cv2.imread(str(SAMPLE)) if SAMPLE.exists() else None
    if photo is None:
        photo = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (200, 2, 3))
    out = []
    for i in range(n):
        ok, buf = cv2.imencode(".jpg", photo[i * 3:i * 3 + 48, i * 5:i * 5 + 64])
        assert ok
        (folder / names.format(i + 1)).write_bytes(buf.tobytes())
        out.append(buf.tobytes())
    return out


@pytest.fixture()
def source(tmp_path):
    """A repository laid out like tracker demos, committed, under mirror/<owner>+<name>/repo."""
    repo = tmp_path / "mirror" / "someone+demo-tracker" / "repo"
    data = {}
    data["A"] = _frames(repo / "seqs/A/img", 5)
    (repo / "seqs/A/groundtruth_rect.txt").write_text("".join(f"{10 + i}\t20\t30\t40\r\n" for i in range(5)))
    data["B"] = _frames(repo / "seqs/B/imgs", 6, "{:08d}.jpg")
    poly = "10,20,30,22,28,40,8,38\n"                      # enclosing box: x 8, y 20, w 22, h 20
    (repo / "seqs/B/groundtruth.txt").write_text(poly * 4)
    data["C"] = _frames(repo / "seqs/C", 3)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("rectangles", "".join(f"{i},2,3,4,5,6\n" for i in range(3)))
    (repo / "seqs/C/C.avt").write_bytes(zbuf.getvalue())
    data["v"] = _frames(repo / "DAVIS/JPEGImages/480p/v", 2, "{:05d}.jpg")
    (repo / "DAVIS/Annotations/480p/v").mkdir(parents=True)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 10:30] = 1
    for i in range(2):
        cv2.imwrite(str(repo / f"DAVIS/Annotations/480p/v/{i + 1:05d}.png"), mask)
    writer = cv2.VideoWriter(str(repo / "DAVIS/clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(3):
        writer.write(cv2.imdecode(np.frombuffer(data["v"][i % 2], np.uint8), cv2.IMREAD_COLOR))
    writer.release()
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "demo")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "seqs/A/groundtruth_rect.txt").write_text("garbage\n")   # later commits must not matter
    _git(repo, "commit", "-q", "-am", "later")
    return tmp_path / "mirror", commit, data


def _manifest(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return p


BOXES = """name: demo_boxes
layout: boxes
repo: someone/demo-tracker
commit: {commit}
sequences:
  - {{name: A, frames: seqs/A/img, boxes: seqs/A/groundtruth_rect.txt}}
  - {{name: B, frames: seqs/B/imgs, boxes: seqs/B/groundtruth.txt, frame_range: [2, 5], box_format: polygon}}
  - {{name: C, frames: seqs/C, boxes: seqs/C/C.avt, boxes_member: rectangles}}
"""


def test_box_set_is_rebuilt_from_the_pinned_commit(tmp_path, source):
    mirror, commit, data = source
    m = load_manifest(_manifest(tmp_path, BOXES.format(commit=commit)))
    counts = build_set(m, GitRepos(tmp_path / "cache", mirror=mirror), tmp_path / "out")
    assert counts == {"A": 5, "B": 4, "C": 3}
    out = tmp_path / "out"
    # frames: the source bytes, renumbered from 000001, in name order; B keeps frames 2..5 only
    assert [f.read_bytes() for f in sorted((out / "A/img").iterdir())] == data["A"]
    assert [f.name for f in sorted((out / "B/img").iterdir())] == [f"{i:06d}.jpg" for i in range(1, 5)]
    assert [f.read_bytes() for f in sorted((out / "B/img").iterdir())] == data["B"][1:5]
    # boxes: tabs and CRLF become commas, the commit's version (not the later "garbage") is read
    assert (out / "A/groundtruth.txt").read_text().splitlines() == [f"{10 + i},20,30,40" for i in range(5)]
    assert (out / "B/groundtruth.txt").read_text().splitlines() == ["8,20,22,20"] * 4
    assert (out / "C/groundtruth.txt").read_text().splitlines() == [f"{i},2,3,4" for i in range(3)]


def test_davis_set_keeps_names_and_masks(tmp_path, source):
    mirror, commit, data = source
    m = load_manifest(_manifest(tmp_path, f"""layout: davis
name: demo_davis
repo: someone/demo-tracker
commit: {commit}
frames: DAVIS/JPEGImages/480p/{{name}}
masks: DAVIS/Annotations/480p/{{name}}
sequences: [v]
"""))
    build_set(m, GitRepos(tmp_path / "cache", mirror=mirror), tmp_path / "out")
    jpg = sorted((tmp_path / "out/JPEGImages/480p/v").iterdir())
    assert [f.name for f in jpg] == ["00001.jpg", "00002.jpg"] and [f.read_bytes() for f in jpg] == data["v"]
    ann = cv2.imread(str(tmp_path / "out/Annotations/480p/v/00002.png"), cv2.IMREAD_UNCHANGED)
    assert ann.shape == (48, 64) and int(ann.sum()) == 200


def test_davis_frames_from_a_video_file_are_decoded_and_paired(tmp_path, source):
    """Frames stored as an mp4 become 00000.jpg... so that masks named 00000.png... pair with them."""
    mirror, commit, _ = source
    m = load_manifest(_manifest(tmp_path, f"""layout: davis
repo: someone/demo-tracker
commit: {commit}
sequences: [{{name: v, frames: DAVIS/clip.mp4, masks: DAVIS/Annotations/480p/v}}]
"""))
    repos = GitRepos(tmp_path / "cache", mirror=mirror)
    assert build_set(m, repos, tmp_path / "out") == {"v": 3}
    assert sorted(p.name for p in (tmp_path / "out/Annotations/480p/v").iterdir()) == ["00001.png", "00002.png"]
    jpg = sorted((tmp_path / "out/JPEGImages/480p/v").iterdir())
    assert [f.name for f in jpg] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert cv2.imread(str(jpg[2])).shape == (48, 64, 3)


def test_fetching_a_commit_from_a_remote(tmp_path, source):
    """Without a mirror the commit is fetched (by hash, else the whole history) into the cache."""
    mirror, commit, data = source
    messages: list[str] = []
    repos = GitRepos(tmp_path / "cache", url=f"file://{mirror}/someone+demo-tracker/repo", log=messages.append)
    m = load_manifest(_manifest(tmp_path, BOXES.format(commit=commit)))
    assert build_set(m, repos, tmp_path / "out", only=["A"]) == {"A": 5}
    assert (tmp_path / "cache/someone+demo-tracker.git/HEAD").exists()
    assert (tmp_path / "out/A/groundtruth.txt").read_text().startswith("10,20,30,40")
    assert messages and messages[0].startswith(f"fetching someone/demo-tracker @ {commit[:12]}")


def test_frames_and_boxes_that_do_not_pair_are_refused(tmp_path, source):
    mirror, commit, _ = source
    text = BOXES.format(commit=commit).replace("frame_range: [2, 5]", "frame_range: [1, 6]")
    m = load_manifest(_manifest(tmp_path, text))
    with pytest.raises(SourceError, match="B: 6 frames but 4 boxes"):
        build_set(m, GitRepos(tmp_path / "cache", mirror=mirror), tmp_path / "out", only=["B"])
    with pytest.raises(SourceError, match="not in"):
        bad = load_manifest(_manifest(tmp_path, BOXES.format(commit="f" * 40)))
        build_set(bad, GitRepos(tmp_path / "cache", mirror=mirror), tmp_path / "out", only=["A"])


@pytest.mark.parametrize("edit, message", [
    (("commit: " + "a" * 40, "commit: abc123"), "full 40-hex"),
    (("layout: boxes", "layout: vot"), "layout must be"),
    (("box_format: polygon", "box_format: rotated"), "box_format must be"),
    (("frame_range: [2, 5]", "frame_range: [5, 2]"), "first <= last"),
    (("name: C,", "name: A,"), "names repeat"),
    (("boxes_member: rectangles", "member: rectangles"), "unknown keys"),
    (("commit: " + "a" * 40, "commit: " + "1" * 40), "in quotes"),
    (("name: A,", "name: ../A,"), "plain folder name"),
    (("name: demo_boxes", "name: demo_boxes\nmask: x"), "unknown keys"),
])
def test_manifest_errors_are_clear(tmp_path, edit, message):
    text = BOXES.format(commit="a" * 40).replace(*edit)
    with pytest.raises(ConfigError, match=message):
        load_manifest(_manifest(tmp_path, text))


def test_polygon_rows_and_nan_rows():
    assert parse_box_lines("1,1,5,1,5,4,1,4\nNaN,NaN,NaN,NaN\n", "polygon") == ["1,1,4,3", "NaN,NaN,NaN,NaN"]
    assert parse_box_lines("0.125,1,5,1,5,4.5,1,4\n", "polygon", decimals=2) == ["0.12,1,4.88,3.5"]
    with pytest.raises(SourceError, match="8 values"):
        parse_box_lines("1,2,3,4,5,6\n", "polygon")


def test_shipped_manifests_are_valid_and_do_not_overlap():
    paths = list(manifests_in(REPO_ROOT / "config" / "eval_sets"))
    assert paths, "config/eval_sets/ has no manifests"
    seen: dict[str, str] = {}
    for p in paths:
        m = load_manifest(p)
        assert m.name == p.stem
        for s in m.sequences:
            key = f"{s.repo}:{s.frames}" + (f"@{s.frame_range}" if getattr(s, "frame_range", None) else "")
            assert key not in seen, f"{s.name} of {p.name} repeats {seen.get(key)}"
            seen[key] = f"{m.name}/{s.name}"


def test_cli_builds_lists_and_reports_errors(tmp_path, source, capsys):
    mirror, commit, _ = source
    manifest = _manifest(tmp_path, BOXES.format(commit=commit))
    assert eval_sets_main([str(manifest), "--out", str(tmp_path / "out"), "--mirror", str(mirror)]) == 0
    printed = capsys.readouterr().out
    assert "[demo_boxes 3/3] C: 3 frames" in printed and "3 sequences, 12 frames" in printed
    assert sorted(p.name for p in (tmp_path / "out/demo_boxes").iterdir()) == ["A", "B", "C"]
    assert eval_sets_main(["--list"]) == 0
    assert "ground12: 12 boxes sequences" in capsys.readouterr().out
    assert eval_sets_main([str(manifest), "--out", str(tmp_path / "o2"), "--mirror", str(tmp_path)]) == 2
    assert "no local git directory" in capsys.readouterr().err
