"""rts-eval-sets: rebuild the real evaluation sets of docs/evaluation.md from public repositories, pinned to commits."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rts_ros.errors import RTSError


def _manifest_folders() -> list[Path]:
    here = Path(__file__).resolve().parents[2] / "config" / "eval_sets"
    return [here, Path(sys.prefix) / "share" / "rts_ros" / "config" / "eval_sets"]


def _resolve(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    for folder in _manifest_folders():
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    raise FileNotFoundError(f"no manifest {name!r}: pass a YAML path or one of the names that --list shows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rts-eval-sets",
        description="Fetch the human-annotated sequences that docs/evaluation.md reports numbers on, from the public "
                    "repositories and commits its manifests (config/eval_sets/*.yaml) name, and arrange them for "
                    "rts-eval. Evaluation only: these are benchmark data; never commit them.")
    parser.add_argument("sets", nargs="*", metavar="SET", help="manifest names (see --list) or YAML paths")
    parser.add_argument("--out", default="data_eval", help="folder that receives one sub-folder per set "
                        "(default: data_eval)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these sequences of the set")
    parser.add_argument("--cache", default=None, help="where fetched git data is kept (default: <out>/.git_cache)")
    parser.add_argument("--mirror", default=None, help="read repositories from local git directories "
                        "<mirror>/<owner>+<name>[/repo] instead of fetching them")
    parser.add_argument("--list", action="store_true", help="list the manifests and their sequences, then exit")
    args = parser.parse_args(argv)
    from rts_ros.eval.public_sets import GitRepos, build_set, load_manifest, manifests_in

    try:
        if args.list:
            seen = set()
            for folder in _manifest_folders():
                for path in manifests_in(folder):
                    if path.name in seen:
                        continue
                    seen.add(path.name)
                    m = load_manifest(path)
                    print(f"{path.stem}: {len(m.sequences)} {m.layout} sequences ({path})")
                    print("    " + " ".join(s.name for s in m.sequences))
                    if m.note:
                        print("    note: " + m.note)
            return 0
        if not args.sets:
            parser.error("name at least one set, or --list")
        out = Path(args.out)
        repos = GitRepos(cache=args.cache or out / ".git_cache", mirror=args.mirror,
                         log=lambda message: print(message, flush=True))
        for name in args.sets:
            manifest = load_manifest(_resolve(name))
            target = out / manifest.name

            def report(i: int, n: int, seq: str, frames: int) -> None:
                print(f"[{manifest.name} {i}/{n}] {seq}: {frames} frames", flush=True)

            counts = build_set(manifest, repos, target, only=args.only, progress=report)
            print(f"rts-eval-sets: {manifest.name}: {len(counts)} sequences, {sum(counts.values())} frames -> "
                  f"{target}  (then: rts-eval {target} --trackers rts,csrt --start-shifts 2)")
    except (RTSError, FileNotFoundError) as err:
        print(f"rts-eval-sets: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
