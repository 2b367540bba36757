"""Import speed and memory: eiq-lab's VOC-tar and structured-folders importers against a baseline.

The baseline, measured in the same run on the same files, reads each image file and inserts its raw
bytes into SQLite in one transaction (no checks, no labels). Each measurement runs in a fresh
process so its peak RSS (plus that of the reader process our importer may start) is its own.
Goals (issue 3): ours >= 0.8x the baseline's images/s, and peak RSS for 10,000 images <= 1.2x that
for 1,000.

    python benchmarks/import_bench.py [--images 10000] [--small 1000] [--size 320x240] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path


def generate(workdir: Path, count: int, width: int, height: int) -> tuple[Path, Path]:
    """A VOC tar and the same JPEGs as structured folders (train/<shape>/...)."""
    from eiq_lab.datasets.samples import write_shapes_voc

    tar = workdir / f"voc_{count}.tar"
    folders = workdir / f"folders_{count}"
    shutil.rmtree(folders, ignore_errors=True)
    write_shapes_voc(tar, count, width=width, height=height)
    with tarfile.open(tar) as archive:
        for member in archive:
            if "/JPEGImages/" in member.name:
                target = folders / "train" / f"group{zlib.crc32(member.name.encode()) % 5}" / Path(member.name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    return tar, folders


def baseline(kind: str, source: Path, db: Path, mode: str = "auto") -> int:
    """Read every image file and insert its bytes into SQLite, one transaction."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
    conn.execute("BEGIN")
    n = 0
    if kind == "voc":
        with tarfile.open(source, "r|*") as archive:
            for member in archive:
                if member.isfile() and member.name.endswith(".jpg"):
                    conn.execute(
                        "INSERT INTO images (name, data) VALUES (?, ?)",
                        (member.name, archive.extractfile(member).read()),
                    )
                    n += 1
    else:
        for dirpath, _, files in os.walk(source):
            for name in files:
                path = Path(dirpath) / name
                conn.execute("INSERT INTO images (name, data) VALUES (?, ?)", (str(path), path.read_bytes()))
                n += 1
    conn.execute("COMMIT")
    conn.close()
    return n


MODES = {"auto": None, "serial": False, "parallel": True}


def ours(kind: str, source: Path, db: Path, mode: str = "auto") -> int:
    from eiq_lab.datasets.folders import import_folders
    from eiq_lab.datasets.voc import import_voc

    report = (import_voc if kind == "voc" else import_folders)(source, db, parallel=MODES[mode])
    if report.errors:
        raise SystemExit(f"import reported problems: {report.errors[:3]}")
    return report.images


def child(which: str, kind: str, source: str, db: str, mode: str) -> None:
    """One measurement, in its own process; prints JSON."""
    import eiq_lab.datasets.folders
    import eiq_lab.datasets.voc  # noqa: F401  (imports are not part of the measurement)

    started = time.perf_counter()
    n = (baseline if which == "baseline" else ours)(kind, Path(source), Path(db), mode)
    seconds = time.perf_counter() - started
    # peak of this process plus that of its reader process, if the import started one
    peaks = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    rss_mb = sum(peaks) / 1024
    print(json.dumps({"images": n, "seconds": seconds, "rss_mb": rss_mb}))


def measure(which: str, kind: str, source: Path, workdir: Path, mode: str = "auto") -> dict:
    db = workdir / f"{which}_{kind}.eiqp"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, kind, str(source), str(db), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    db.unlink(missing_ok=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--repeat", type=int, default=3, help="paired runs per source (median reported)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    width, height = (int(v) for v in args.size.lower().split("x"))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="eiq-import-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"generating {args.images} and {args.small} JPEGs of {width}x{height} in {workdir} ...", flush=True)
        big = generate(workdir, args.images, width, height)
        small = generate(workdir, args.small, width, height)
        rows, memory = [], []
        for kind, index in (("voc", 0), ("folders", 1)):
            # baseline and ours alternate, so drift in the machine's speed hits both alike;
            # each pair gives a ratio, and the median pair is reported
            pairs = []
            for _ in range(args.repeat):
                base, mine = (measure(which, kind, big[index], workdir) for which in ("baseline", "ours"))
                pairs.append((base["images"] / base["seconds"], mine["images"] / mine["seconds"]))
            ratios = sorted(mine / base for base, mine in pairs)
            base, mine = sorted(pairs, key=lambda pair: pair[1] / pair[0])[len(pairs) // 2]
            rows.append((kind, base, mine, ratios[len(ratios) // 2], ratios[0], ratios[-1]))
            # memory growth with size, each reading mode on its own (a reader process is a constant)
            for mode in ("serial", "parallel"):
                peak = [measure("ours", kind, data[index], workdir, mode)["rss_mb"] for data in (small, big)]
                memory.append((kind, mode, peak[0], peak[1], peak[1] / peak[0]))
        print(f"\nspeed, {args.images} images (reader process chosen by size, as by default)")
        print(
            f"{'source':<8} {'baseline img/s':>15} {'ours img/s':>11} {'ratio':>6} {'(min-max)':>11}   (goal >= 0.80)"
        )
        for kind, base, mine, ratio, low, high in rows:
            print(f"{kind:<8} {base:>15.0f} {mine:>11.0f} {ratio:>6.2f} ({low:.2f}-{high:.2f})")
        print(f"\npeak RSS of the import (its reader process included), {args.small} vs {args.images} images")
        print(
            f"{'source':<8} {'reading':<9} {'RSS ' + str(args.small):>10} {'RSS ' + str(args.images):>11} {'ratio':>6}"
            "   (goal <= 1.20)"
        )
        for kind, mode, small_mb, big_mb, ratio in memory:
            print(f"{kind:<8} {mode:<9} {small_mb:>8.0f}MB {big_mb:>9.0f}MB {ratio:>6.2f}")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
