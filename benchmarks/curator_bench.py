"""Curator first page on a 100,000-image project, against listing 100 image ids from SQLite directly.

The project (cached under /tmp; rebuilt if missing) holds `--distinct` different small JPEGs added
over and over through the engine's bulk path (`BulkWriter`), in no group, unlabeled. "First page
ready" is constructing the Curator panel (counts, label list, one page of rows, that page's
thumbnails decoded and encoded) with an empty thumbnail cache. The baseline is
``SELECT id FROM images ORDER BY id LIMIT 100`` on a plain sqlite3 connection. Goal (issue 8): first
page <= 0.5 s. Also printed: the same with warm thumbnails, the next page, the last page, and an
"unlabeled" filter page.

    python benchmarks/curator_bench.py [--images 100000] [--distinct 200] [--size 160x120] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sqlite3
import statistics
import time
from pathlib import Path

CACHE_DIR = Path("/tmp/eiq_curator_bench")


def distinct_jpegs(count: int, width: int, height: int) -> list[bytes]:
    """`count` different JPEGs: smooth colour gradients with a little noise (photo-like compression)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for _ in range(count):
        a, b, c = rng.uniform(0, 255, 3)
        pixels = np.stack(
            [(a + xx * 0.8) % 256, (b + yy * 1.1) % 256, (c + (xx + yy) * 0.5) % 256], axis=-1
        ) + rng.normal(0, 6, (height, width, 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def build(path: Path, images: int, distinct: int, width: int, height: int) -> float:
    """Create the project through the engine's bulk path; returns the seconds it took."""
    from eiq_lab.project import create_project, open_project
    from eiq_lab.project.imagefile import check_image
    from eiq_lab.project.store import BulkWriter

    if path.exists():
        with open_project(path) as project:
            if project.count_images() == images:
                return 0.0
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    encoded = [check_image(data) for data in distinct_jpegs(distinct, width, height)]
    hashes = [hashlib.sha256(c.data).hexdigest() for c in encoded]
    with create_project(path) as project, project.transaction():
        writer = BulkWriter(project, batch=2000)
        for i in range(images):
            k = i % distinct
            writer.add_image(encoded[k], hashes[k], None, f"img{i:06d}.jpg", False)
        writer.flush()
    return time.perf_counter() - started


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    path = CACHE_DIR / f"curator_{args.images}_{args.distinct}_{width}x{height}.eiqp"

    seconds = build(path, args.images, args.distinct, width, height)
    print(f"project: {path} ({args.images:,} images, {args.distinct} distinct {width}x{height} JPEGs)")
    print(f"  built in {seconds:.1f} s" if seconds else "  reused the cached project")

    # imports are paid once per kernel, not per page: load them before timing
    import ipywidgets  # noqa: F401

    from eiq_lab.project import open_project
    from eiq_lab.project.thumbnails import ThumbnailCache
    from eiq_lab.widgets.curator import PAGE_SIZE, Curator

    def baseline() -> list:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT id FROM images ORDER BY id LIMIT 100").fetchall()
        finally:
            conn.close()

    base, rows = timed(baseline, args.repeat * 4)
    assert len(rows) == 100

    project = open_project(path)
    Curator(project, cache=ThumbnailCache()).close()  # first use of widget classes, ipyevents and Pillow's codecs

    def first_page_cold() -> Curator:
        return Curator(project, cache=ThumbnailCache())

    cold, panel = timed(first_page_cold, args.repeat)
    assert len(panel.page_images) == PAGE_SIZE and all("image/jpeg;base64" in t.value for t in panel._tiles)
    first_rows = project.images(limit=PAGE_SIZE)
    thumbs_only, _ = timed(lambda: ThumbnailCache().for_images(project, first_rows), args.repeat)
    warm_cache = ThumbnailCache()
    Curator(project, cache=warm_cache)
    warm, _ = timed(lambda: Curator(project, cache=warm_cache), args.repeat)
    next_page, _ = timed(lambda: (panel.cache.clear(), panel.show_page(1)), args.repeat)
    last_page, _ = timed(lambda: (panel.cache.clear(), panel.show_page(10**9)), args.repeat)
    panel.show_filter.value = "unlabeled"
    unlabeled, _ = timed(lambda: (panel.cache.clear(), panel.show_page(0)), args.repeat)
    project.close()

    print(f"baseline: SELECT 100 ids from SQLite        {base * 1e3:8.2f} ms")
    print(f"Curator first page ({PAGE_SIZE} thumbnails, cold) {cold * 1e3:8.2f} ms   ratio {cold / base:,.0f}x")
    print(f"  of which {PAGE_SIZE} thumbnails read + decoded + encoded {thumbs_only * 1e3:8.2f} ms")
    print(f"Curator first page (warm thumbnails)        {warm * 1e3:8.2f} ms")
    print(f"next page (cold thumbnails)                 {next_page * 1e3:8.2f} ms")
    print(f"last page (offset {args.images - PAGE_SIZE:,}, cold)       {last_page * 1e3:8.2f} ms")
    print(f"'unlabeled' filter, first page (cold)       {unlabeled * 1e3:8.2f} ms")
    verdict = "meets" if cold <= 0.5 else "MISSES"
    print(f"goal: first page <= 500 ms -> {cold * 1e3:.0f} ms ({verdict} the goal)")


if __name__ == "__main__":
    main()
