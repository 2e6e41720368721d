"""Measure the review page (issue 16): page size and load time in Debian's Chromium for N photos.

    .venv/bin/python -m iqc_dagster.bench.review_page 1000 2000

Photos are copies of four scikit-image sample photographs (512 px and smaller), so the thumbnails have a
photograph's size; the ranked table is synthetic. Prints, per N: index.html size, thumbnail folder size,
large-view folder size, time to write the report, and in Chromium the time to the first screen (the
page's script has built the grid) and until its visible thumbnails have loaded, plus how many
thumbnails were loaded then (lazy loading).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _album(folder: Path, n: int) -> pd.DataFrame:
    import io

    import skimage.data
    from PIL import Image

    blobs = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        buf = io.BytesIO()
        Image.fromarray(getattr(skimage.data, name)()).save(buf, format="JPEG", quality=90)
        blobs.append(buf.getvalue())
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"IMG_{i:05d}.jpg" for i in range(n)]
    for i, nm in enumerate(names):
        (folder / nm).write_bytes(blobs[i % 4])
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"file": names, "path": [str(folder / x) for x in names],
                       "final_score": np.sort(rng.random(n))[::-1], "rank": np.arange(1, n + 1),
                       "sharpness_norm": rng.random(n), "exposure_norm": rng.random(n),
                       "aesthetic": rng.random(n), "group_id": np.arange(n), "group_size": 1,
                       "is_best_in_group": True, "weights_id": "bench"})
    for g in range(0, n - 3, 10):  # every tenth photo leads a group of three
        df.loc[g:g + 2, "group_id"] = g
        df.loc[g:g + 2, "group_size"] = 3
        df.loc[g + 1:g + 2, "is_best_in_group"] = False
        df.loc[g:g + 2, "group_kind"] = "near_duplicate"
    return df


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0


def measure(n: int, browser) -> dict:
    from iqc_dagster.core import report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        df = _album(tmp / "photos", n)
        t0 = time.perf_counter()
        files = report.write_report(df, tmp / "r", album="bench")
        write_s = time.perf_counter() - t0
        out = {"n": n, "index_kb": files.index.stat().st_size / 1024,
               "thumbs_mb": _size(tmp / "r" / report.THUMBS_DIR) / 2**20,
               "large_mb": _size(tmp / "r" / report.LARGE_DIR) / 2**20, "write_s": write_s}
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto(files.index.resolve().as_uri(), wait_until="domcontentloaded")
        page.wait_for_selector("#grid .card")
        out["first_screen_s"] = time.perf_counter() - t0
        page.wait_for_load_state("load")
        out["load_s"] = time.perf_counter() - t0
        out["cards"] = page.locator("#grid .card").count()
        out["thumbs_loaded"] = page.evaluate(
            "[...document.querySelectorAll('#grid img')].filter(i => i.complete && i.naturalWidth > 0).length")
        out["imgs"] = page.locator("#grid img").count()
        ctx.close()
        return out


def main(argv: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    sizes = [int(a) for a in argv] or [1000, 2000]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        for n in sizes:
            m = measure(n, b)
            print(f"{m['n']} photos: index.html {m['index_kb']:.0f} KB, thumbs/ {m['thumbs_mb']:.1f} MB, "
                  f"large/ {m['large_mb']:.1f} MB, report written in {m['write_s']:.1f} s; Chromium: first screen "
                  f"{m['first_screen_s']:.2f} s, load event {m['load_s']:.2f} s, {m['cards']} cards, "
                  f"{m['thumbs_loaded']} of {m['imgs']} thumbnails loaded", flush=True)
        b.close()


if __name__ == "__main__":
    main(sys.argv[1:])
