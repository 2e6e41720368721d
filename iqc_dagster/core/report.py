"""The evaluation report of one ranked album: the review page, score histograms, top/bottom montages.

Written to ``<output_dir>/reports/<album>/`` (:func:`report_folder`):

* ``index.html`` — the review page (issue 16): a culling gallery that opens on the best picks in rank
  order (score, reasons, a group's runners-up and why the winner won), filters and sorts, keyboard
  decisions kept in the browser's localStorage and exported as a labels CSV (``file,rating`` /
  ``file,pick``, what ``iqc tune --labels`` reads), then a Statistics section (metrics, histograms).
  Self-contained: the script and styles (``report_assets/``, shipped in the package) are inlined; the
  photos' data is JSON escaped by :func:`json_for_script`, rendered with ``textContent`` only;
* ``thumbs/<id>.jpg`` and ``large/<id>.jpg`` — per photo a gallery thumbnail and a large-view copy,
  both reduced from one decode (:func:`write_media`), reused while the photo is unchanged; missing ones
  are made again on the next write, also when the report is otherwise reused (:func:`media_status`);
* ``hist_<score>.png`` — one histogram per score column (``final_score``, ``aesthetic``, every
  ``*_norm`` with at least one value);
* ``top.png`` / ``bottom.png`` — the K best and K worst photos, each labelled with rank, score, file
  name and reasons (files for sharing; the page links them, it does not show them again).

Photos are only read (decoded once, small, for thumbnails); an unreadable or missing photo gets a grey
placeholder, never an error. Matplotlib is used through its object API with the Agg canvas (no pyplot
state), so reports can be written from worker threads. No Dagster import here.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import os
import re
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from iqc_dagster.core.files import write_atomic
from iqc_dagster.core import brackets, imaging
from iqc_dagster.core.analysis import default_workers, opencv_threads
from iqc_dagster.core import metrics as metrics_mod
from iqc_dagster.core import reasons as reasons_mod

DEFAULT_TOP_K = 8
#: Bump when the report's content or layout changes, so reports made by an older version are rewritten.
REPORT_VERSION = "report3"
THUMB_SIDE = 240  # px, long side of montage thumbnails
GALLERY_THUMB_SIDE = 480  # px, long side of the gallery thumbnails (thumbs/*.jpg)
LARGE_SIDE = 1600  # px, long side of the large-view copies (large/*.jpg)
MARKDOWN_TOP = 10  # best picks in the materialization's Markdown preview
MONTAGE_COLUMNS = 4
_PLACEHOLDER_GREY = 128


@dataclass
class ReportFiles:
    folder: Path
    index: Path
    top: Path
    bottom: Path
    histograms: dict[str, Path] = field(default_factory=dict)
    #: thumbs/ and large/ files the reused page showed that were gone, so the report was rewritten
    media_restored: int = 0

    def all(self) -> list[Path]:
        return [self.index, self.top, self.bottom, *self.histograms.values()]


def safe_name(name: str) -> str:
    """A file-system-safe single path component for ``name`` (album or score): no separators,
    control characters, leading dots, or '.'/'..'."""
    s = re.sub(r"[\x00-\x1f\x7f/\\:*?\"<>|]", "_", str(name)).strip()
    s = s.lstrip(".") or "_"
    return s[:200]


def report_folder(output_dir: str | os.PathLike, album: str) -> Path:
    """``<output_dir>/reports/<album>`` (the album name made safe as one folder name; when that changed
    it, a hash of the name follows, so two albums never share a report folder)."""
    safe = safe_name(album)
    if safe != album:
        import hashlib

        safe = f"{safe[:180]}~{hashlib.blake2b(album.encode('utf-8', 'surrogateescape'), digest_size=5).hexdigest()}"
    return Path(output_dir) / "reports" / safe


def score_columns(df: pd.DataFrame) -> list[str]:
    """Score columns to plot: ``final_score``, ``aesthetic``, then every ``*_norm``, when they have
    at least one finite value."""
    cols = [c for c in ["final_score", "aesthetic"] if c in df.columns]
    cols += [c for c in df.columns if isinstance(c, str) and c.endswith("_norm") and c not in cols]
    return [c for c in cols if np.isfinite(pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)).any()]


def ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Rows best first (by ``rank`` when present and complete, else ``final_score`` descending), with
    a ``rank`` column (1..N) and a display ``file`` column."""
    out = df.copy()
    if "file" not in out.columns:
        out["file"] = out["path"].map(lambda p: Path(str(p)).name) if "path" in out.columns else ""
    score = pd.to_numeric(out["final_score"], errors="coerce")
    rank = pd.to_numeric(out["rank"], errors="coerce") if "rank" in out.columns else None
    if rank is not None and rank.notna().all():
        out = out.assign(_r=rank).sort_values("_r", kind="mergesort").drop(columns="_r")
    else:
        out = out.assign(_s=score.fillna(-np.inf)).sort_values(["_s", "file"], ascending=[False, True],
                                                               kind="mergesort").drop(columns="_s")
        out["rank"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


# --- files ----------------------------------------------------------------------------------------


def _figure(w_in: float, h_in: float, layout: str | None = None):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w_in, h_in), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": compress_level})
    return buf.getvalue()


def histogram_png(values: pd.Series, column: str) -> bytes:
    """PNG bytes of one score's histogram (20 bins over [0, 1] when the values lie there)."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = v[np.isfinite(v)]
    fig = _figure(5.0, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    in_unit = ok.size and ok.min() >= 0 and ok.max() <= 1
    ax.hist(ok, bins=np.linspace(0, 1, 21) if in_unit or not ok.size else 20, color="#4a7ab5",
            edgecolor="white")
    missing = v.size - ok.size
    title = f"{column}  (n={ok.size}" + (f", {missing} missing" if missing else "") + ")"
    ax.set_title(title, fontsize=10, parse_math=False)
    if ok.size:
        ax.axvline(float(np.median(ok)), color="#c0392b", lw=1, ls="--")
        ax.text(0.01, 0.97, f"median {np.median(ok):.3f}", transform=ax.transAxes, va="top", fontsize=8,
                color="#c0392b", parse_math=False)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # photo counts
    ax.set_xlabel("score", fontsize=9)
    ax.set_ylabel("photos", fontsize=9)
    ax.tick_params(labelsize=8)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)  # fixed margins: one draw, not two
    return _png(fig)


def thumbnail(path, side: int = THUMB_SIDE) -> np.ndarray | None:
    """An upright RGB thumbnail (long side <= ``side``) of a photo, or None when it cannot be read."""
    if path is None or (isinstance(path, float) and math.isnan(path)):
        return None
    try:
        from iqc_dagster.core import names

        return imaging.decode(names.real_path(str(path)), max_side=side).rgb
    except (imaging.UnreadableImage, OSError, ValueError):
        return None


def short_name(name: str, width: int = 40) -> str:
    """``name`` cut in the middle to at most ``width`` characters, keeping its start and its end (the
    extension and the camera's frame number), e.g. ``PXL_20240612_18…_0042.MP.jpg``."""
    name = " ".join(name.split())
    if len(name) <= width:
        return name
    tail = (width - 1) // 2
    return name[:width - 1 - tail] + "…" + name[-tail:]


def _placeholder(side: int = THUMB_SIDE) -> np.ndarray:
    return np.full((side * 3 // 4, side, 3), _PLACEHOLDER_GREY, dtype=np.uint8)


def montage_png(rows: pd.DataFrame, title: str, thumbs: dict, columns: int = MONTAGE_COLUMNS) -> bytes:
    """PNG bytes: a grid of thumbnails, each labelled "#rank  score", the file name and its reasons."""
    k = len(rows)
    cols = max(1, min(columns, k))
    nrows = max(1, math.ceil(k / cols))
    height = 3.9 * nrows + 0.4
    fig = _figure(3.2 * cols, height)
    # Fixed margins (inches) rather than a constrained layout, which draws the page twice: room for the
    # title, a two-line caption above each thumbnail and up to three lines of reasons below it.
    side = 0.1 / (3.2 * cols)
    fig.subplots_adjust(left=side, right=1 - side, top=1 - 0.85 / height, bottom=0.55 / height,
                        wspace=0.06, hspace=0.95 / (3.9 - 0.95))
    fig.suptitle(title, fontsize=12, parse_math=False, y=1 - 0.1 / height, va="top")
    if k == 0:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "no photos", ha="center", va="center", parse_math=False)
    for n, (_, row) in enumerate(rows.iterrows()):
        ax = fig.add_subplot(nrows, cols, n + 1)
        img = thumbs.get(row.get("path"))
        ax.imshow(img if img is not None else _placeholder())
        if img is None:
            ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes,
                    color="white", fontsize=10, parse_math=False)
        ax.set_xticks([])
        ax.set_yticks([])
        score = pd.to_numeric(pd.Series([row.get("final_score")]), errors="coerce").iloc[0]
        head = f"#{row.get('rank')}  {score:.3f}" if pd.notna(score) else f"#{row.get('rank')}  n/a"
        name = short_name(str(row.get("file", "")))
        why = row.get(reasons_mod.REASONS_COLUMN)
        why = "" if why is None or (isinstance(why, float) and math.isnan(why)) else str(why)
        why = why.replace("+ ", "+\u00a0").replace("- ", "-\u00a0")  # keep each sign with its words
        why = "\n".join(textwrap.wrap(why, width=42, max_lines=3, placeholder=" …",
                                       break_on_hyphens=False)) if why else ""
        ax.set_title(f"{head}\n{name}", fontsize=8, parse_math=False)
        ax.set_xlabel(why, fontsize=7, parse_math=False)
    # Photographic content compresses slowly: zlib level 1 encodes a montage 3-4x faster (most of its
    # cost) for a file about a quarter larger.
    return _png(fig, compress_level=1)


def _e(x) -> str:
    """HTML-escape any value (None/NaN as an empty string)."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    return html.escape(str(x), quote=True)


def _metrics_html(m: dict) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td class=num>{_e('n/a' if v is None else v)}</td></tr>"
                   for k, v in m.items())
    return f"<table>{rows}</table>"


# --- media files: one decode per photo, a gallery thumbnail and a large view ---------------------------

#: Sub-folders of the report folder holding the gallery thumbnails and the large-view copies.
THUMBS_DIR = "thumbs"
LARGE_DIR = "large"


def media_name(path) -> str | None:
    """File name (``<hash>.jpg``) of a photo's thumbnail and large copy: a digest of its path, size and
    modification time, so a changed photo gets new files and an unchanged one keeps them; None when the
    photo cannot be stat'ed."""
    if path is None or (isinstance(path, float) and math.isnan(path)):
        return None
    import hashlib

    try:
        from iqc_dagster.core import names

        st = os.stat(names.real_path(str(path)))
    except (OSError, ValueError):
        return None
    key = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{GALLERY_THUMB_SIDE}\0{LARGE_SIDE}".encode(
        "utf-8", "surrogateescape")
    return hashlib.blake2b(key, digest_size=10).hexdigest() + ".jpg"


def _reduced(img: np.ndarray, side: int):
    """``img`` as a PIL image reduced (Lanczos) to a long side of at most ``side``, never enlarged."""
    from PIL import Image

    im = Image.fromarray(img)
    if max(im.size) > side:
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
    return im


def _jpeg(img: np.ndarray, side: int, quality: int) -> tuple[bytes, np.ndarray]:
    im = _reduced(img, side)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue(), np.asarray(im)


def write_media(path, folder: Path) -> tuple[str | None, np.ndarray | None]:
    """Write ``thumbs/<name>`` (long side <= :data:`GALLERY_THUMB_SIDE`) and ``large/<name>`` (<=
    :data:`LARGE_SIDE`) for one photo, both reduced from the same single decode (never enlarged, never the
    original re-encoded at full size); reuse them when they exist. Returns ``(name, montage thumbnail)``;
    ``(None, None)`` for a photo that cannot be read."""
    name = media_name(path)
    if name is None:
        return None, None
    thumb_p, large_p = folder / THUMBS_DIR / name, folder / LARGE_DIR / name
    if thumb_p.is_file() and large_p.is_file():
        from PIL import Image

        try:
            with Image.open(thumb_p) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMB_SIDE, THUMB_SIDE))
                return name, np.asarray(im)
        except OSError:
            pass
    img = thumbnail(path, side=LARGE_SIDE)
    if img is None:
        return None, None
    large, _ = _jpeg(img, LARGE_SIDE, 85)
    small, small_arr = _jpeg(img, GALLERY_THUMB_SIDE, 80)
    write_atomic(large_p, large)
    write_atomic(thumb_p, small)
    return name, np.asarray(_reduced(small_arr, THUMB_SIDE))


def _prune(folder: Path, keep: set[str]) -> None:
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        if f.name not in keep:
            try:
                f.unlink()
            except OSError:
                pass


# --- the page's data ----------------------------------------------------------------------------

#: Score columns compared when telling why a group's best pick won, with the words for "better".
_WHY_WORDS = {
    "eyes_open": "eyes open",
    "face_sharpness_norm": "sharper face",
    "sharpness_norm": "sharper",
    "exposure_norm": "better exposed",
    "noise_norm": "less noise",
    "contrast_norm": "more contrast",
    "aesthetic": "more appealing (aesthetic score)",
}
WHY_MIN_GAP = 0.05


def _num(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def why_better(winner, other, max_items: int = 2) -> list[str]:
    """Why ``winner`` (a row) beat ``other`` in its group: the scores it leads by the most, in words
    ("sharper", "eyes open", "1.5 stops brighter"); ``["higher overall score"]`` when nothing stands out."""
    gaps: list[tuple[float, str]] = []
    cols = list(_WHY_WORDS) + [c for c in winner.keys() if isinstance(c, str) and c.endswith("_norm")
                               and c not in _WHY_WORDS]
    for col in cols:
        a, b = _num(winner.get(col)), _num(other.get(col))
        if a is None or b is None or a - b < WHY_MIN_GAP:
            continue
        text = _WHY_WORDS.get(col) or f"higher {re.sub(r'_norm$', '', col).replace('_', ' ')}"
        if col == "exposure_norm":
            la, lb = _num(winner.get("median_luma")), _num(other.get("median_luma"))
            if la and lb and la > 0 and lb > 0 and abs(math.log2(la / lb)) >= 0.5:
                stops = math.log2(la / lb)
                text = f"{abs(stops):.1f} stops {'brighter' if stops > 0 else 'darker'}"
        gaps.append((a - b + (1.0 if col == "eyes_open" else 0.0), text))
    gaps.sort(key=lambda g: -g[0])
    return [t for _, t in gaps[:max_items]] or ["higher overall score"]


def _truthy(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "1.0", "yes")


def _split_reasons(text) -> list[str]:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return [t.strip() for t in str(text).split(";") if t.strip()]


def _reason_label(item: str) -> str:
    """A reason without its sign and numbers, to filter by: "- 12% of highlights clipped" ->
    "highlights clipped", "- duplicate of a.jpg, lower score" -> "duplicate"."""
    t = item.lstrip("+- ").strip()
    t = re.sub(r"^(duplicate of|burst with) .*", lambda m: m.group(1).split()[0], t)
    t = re.sub(r"^\d+%? of ", "", t)
    t = re.sub(r"^best of \d+ similar$", "best of similar", t)
    t = re.sub(r"^one of \d+ frames of an? ", "", t)
    t = re.sub(r"\s*\(.*\)$", "", t)
    t = re.sub(r"^\d+ faces$", "faces", t)
    return t


def photo_records(df: pd.DataFrame, media: dict | None = None) -> list[dict]:
    """One JSON-ready record per row of an :func:`ordered` table, for the page's script: display fields,
    group links (``members``: the runners-up of a best pick), ``won``/``lost`` (why the best pick won),
    ``low`` (a suggested reject) and the thumbnail/large-view file names from ``media`` (path -> name)."""
    media = media or {}
    n = len(df)
    recs: list[dict] = []
    rows = df.to_dict(orient="records")
    has_groups = "group_id" in df.columns and "group_size" in df.columns
    low_rank = max(1, int(math.ceil(n * 0.9))) if n >= 10 else n + 1
    for i, r in enumerate(rows):
        path = r.get("path")
        path = path if isinstance(path, str) and path else None
        uri = None
        if path and os.path.isabs(path):
            try:
                uri = Path(path).as_uri()
            except ValueError:
                uri = None
        name = media.get(path)
        reasons = _split_reasons(r.get(reasons_mod.REASONS_COLUMN))
        size = int(_num(r.get("group_size")) or 1) if has_groups else 1
        best = size <= 1 or _truthy(r.get("is_best_in_group"))
        t = r.get("captured_at")
        t = None if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
        rank = int(_num(r.get("rank")) or (i + 1))
        sinks = " ".join(reasons).lower()
        recs.append({
            "file": str(r.get("file", "")),
            "key": path if path and os.path.isabs(path) else str(r.get("file", "")),
            "uri": uri, "rank": rank, "score": _num(r.get("final_score")),
            "reasons": [_reason_label(x) for x in reasons],
            "top": reasons[:2],
            "group": (str(r.get("group_id")) if has_groups and size > 1 else None),
            "gsize": size, "best": bool(best), "kind": str(r.get("group_kind") or "") if size > 1 else "",
            "time": t,
            "t": f"{THUMBS_DIR}/{name}" if name else None,
            "l": f"{LARGE_DIR}/{name}" if name else None,
            "low": bool(rank >= low_rank or "blurry" in sinks or "eyes closed" in sinks
                        or (r.get("no_detail") not in (None, "") and not (isinstance(r.get("no_detail"), float)
                                                                          and math.isnan(r.get("no_detail"))))),
            "members": [], "won": None, "lost": None,
        })
    if has_groups:
        by_group: dict[str, list[int]] = {}
        for i, rec in enumerate(recs):
            if rec["group"] is not None:
                by_group.setdefault(rec["group"], []).append(i)
        for members in by_group.values():
            winners = [i for i in members if recs[i]["best"]] or [min(members, key=lambda i: recs[i]["rank"])]
            w = winners[0]
            recs[w]["best"] = True
            others = sorted((i for i in members if i != w), key=lambda i: recs[i]["rank"])
            recs[w]["members"] = others
            kind = recs[w]["kind"]
            if kind in brackets.KINDS:
                continue  # kept whole: no winner over the other frames
            for o in others:
                recs[o]["best"] = bool(recs[o]["best"] and o in winners)
                recs[o]["lost"] = f"passed over for #{recs[w]['rank']}: it is " + ", ".join(why_better(rows[w], rows[o]))
            if others:
                recs[w]["won"] = ", ".join(why_better(rows[w], rows[others[0]])) + f" than #{recs[others[0]]['rank']}"
    return recs


def json_for_script(data) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: ``<``, ``>``, ``&`` and the
    JavaScript line separators escaped, so no file name can close the script element."""
    import json

    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _md_escape(s: str) -> str:
    s = " ".join(str(s).split())
    s = html.escape(s, quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~])", r"\\\1", s)


def top_picks_markdown(df: pd.DataFrame, n: int = 10) -> str:
    """A small Markdown table of the album's best picks (one per group, in rank order): rank, score,
    file, reasons. File names and reasons are escaped for Markdown and HTML."""
    d = ordered(df)
    if "is_best_in_group" in d.columns and "group_size" in d.columns:
        size = pd.to_numeric(d["group_size"], errors="coerce").fillna(1)
        keep = (size <= 1) | d["is_best_in_group"].map(_truthy)
        d = d[keep.to_numpy()]
    rows = ["| rank | score | photo | why |", "|---:|---:|---|---|"]
    for _, r in d.head(n).iterrows():
        score = _num(r.get("final_score"))
        why = "; ".join(_split_reasons(r.get(reasons_mod.REASONS_COLUMN))[:2])
        rows.append(f"| {_e(r.get('rank'))} | {'n/a' if score is None else f'{score:.3f}'} | "
                    f"{_md_escape(r.get('file', ''))} | {_md_escape(why)} |")
    if len(rows) == 2:
        rows.append("| | | no photos | |")
    return "\n".join(rows)


def _asset(name: str) -> str:
    return (Path(__file__).with_name("report_assets") / name).read_text(encoding="utf-8")


_PAGE_DATA = re.compile(r'<script type="application/json" id="iqc-data">(.*?)</script>', re.S)


def page_data(folder: str | os.PathLike) -> dict | None:
    """The data the review page in ``folder`` shows (the JSON :func:`write_report` put in it); None when
    there is no page or it is not one this version of iqc wrote."""
    import json

    try:
        text = (Path(folder) / "index.html").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    m = _PAGE_DATA.search(text)
    if not m:
        return None
    try:
        data = json.loads(m.group(1))
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("photos"), list) else None


@dataclass
class MediaStatus:
    """Whether every photo on a review page has its files (:func:`media_status`)."""

    n_photos: int  # photos on the page
    missing: list[str] = field(default_factory=list)  # thumbs/<id>.jpg, large/<id>.jpg the page shows, not there
    photos_missing: list[str] = field(default_factory=list)  # the photos (display names) those belong to
    placeholders: list[str] = field(default_factory=list)  # photos shown grey: no thumbnail was made

    @property
    def complete(self) -> bool:
        return not self.missing and not self.placeholders


def media_status(folder: str | os.PathLike) -> MediaStatus | None:
    """Which ``thumbs/`` and ``large/`` files of the review page in ``folder`` are missing, and which
    photos it shows without any (grey placeholder: unreadable when the report was written); None when
    there is no readable page."""
    folder = Path(folder)
    data = page_data(folder)
    if data is None:
        return None
    out = MediaStatus(n_photos=len(data["photos"]))
    for rec in data["photos"]:
        if not isinstance(rec, dict):
            continue
        refs = [rec.get("t"), rec.get("l")]
        if not all(isinstance(r, str) and r for r in refs):
            out.placeholders.append(str(rec.get("file", "")))
            continue
        gone = [r for r in refs if not (folder / r).is_file()]
        if gone:
            out.missing += gone
            out.photos_missing.append(str(rec.get("file", "")))
    return out


def media_problems(status: MediaStatus, n_ranked: int | None = None, shown: int = 3) -> list[str]:
    """One line per problem of a page's media (:func:`media_status`), for a check; empty when complete."""
    from iqc_dagster.core import names

    def eg(items: list[str]) -> str:
        return ", ".join(names.display(x) for x in items[:shown]) + (", ..." if len(items) > shown else "")

    out = []
    if status.missing:
        out.append(f"{len(status.photos_missing)} of {status.n_photos} photo(s) on the page miss "
                   f"{len(status.missing)} thumbs/ or large/ file(s) (e.g. {eg(status.missing)})")
    if status.placeholders:
        out.append(f"{len(status.placeholders)} photo(s) shown without a thumbnail (unreadable when the "
                   f"report was written: {eg(status.placeholders)})")
    if n_ranked is not None and status.n_photos != n_ranked:
        out.append(f"the page shows {status.n_photos} photo(s), the ranked CSV has {n_ranked}")
    return out


def existing_report(folder: str | os.PathLike) -> ReportFiles | None:
    """The report already in ``folder`` (index.html, montages, histograms), or None if incomplete."""
    folder = Path(folder)
    index, top, bottom = folder / "index.html", folder / "top.png", folder / "bottom.png"
    if not (index.is_file() and top.is_file() and bottom.is_file()):
        return None
    hists = {p.stem.removeprefix("hist_"): p for p in sorted(folder.glob("hist_*.png"))}
    return ReportFiles(folder=folder, index=index, top=top, bottom=bottom, histograms=hists)


def write_report(ranked: pd.DataFrame, folder: str | os.PathLike, *, album: str,
                 metrics: dict | None = None, top_k: int = DEFAULT_TOP_K, notes: list[str] | None = None,
                 ) -> ReportFiles:
    """Write the report of ``ranked`` into ``folder`` (normally :func:`report_folder`) and return the
    paths. Needs ``final_score`` and ``path`` (or ``file``); uses ``rank``, scores, group columns and
    ``reasons`` when present (reasons are computed when the column is missing). ``metrics``: the
    :func:`iqc_dagster.core.metrics.proxy_metrics` dict (computed here when None). ``notes``: extra
    lines shown under the title (e.g. where the CSV came from)."""
    if "final_score" not in ranked.columns:
        raise ValueError("the report needs a final_score column")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    df = ordered(ranked)
    if reasons_mod.REASONS_COLUMN not in df.columns:
        df[reasons_mod.REASONS_COLUMN] = reasons_mod.photo_reasons(df)
    if metrics is None:
        metrics = metrics_mod.proxy_metrics(df)
    top_k = max(0, int(top_k))
    top = df.head(top_k)
    bottom = df.tail(min(top_k, len(df))).iloc[::-1] if top_k else df.head(0)

    hists: dict[str, Path] = {}
    used: set[str] = set()
    for col in score_columns(df):
        name = f"hist_{safe_name(col)}.png"
        while name in used:
            name = name[:-4] + "_.png"
        used.add(name)
        hists[col] = write_atomic(folder / name, histogram_png(df[col], col))
    for stale in folder.glob("hist_*.png"):  # scores that are gone since the last report
        if stale.name not in used:
            try:
                stale.unlink()
            except OSError:
                pass

    paths = df["path"] if "path" in df.columns else pd.Series([], dtype=object)
    unique = [p for p in dict.fromkeys(paths.tolist()) if isinstance(p, str) and p]
    workers = default_workers()
    with opencv_threads(1 if workers > 1 else None), ThreadPoolExecutor(max_workers=workers) as pool:
        made = dict(zip(unique, pool.map(lambda p: write_media(p, folder), unique)))
    media = {p: name for p, (name, _) in made.items() if name}
    thumbs = {p: arr for p, (_, arr) in made.items()}
    keep = set(media.values())
    _prune(folder / THUMBS_DIR, keep)
    _prune(folder / LARGE_DIR, keep)
    top_png = write_atomic(folder / "top.png", montage_png(top, f"{album}: top {len(top)}", thumbs))
    bottom_png = write_atomic(folder / "bottom.png", montage_png(bottom, f"{album}: bottom {len(bottom)}", thumbs))

    records = photo_records(df, media)
    labels = sorted({x for r in records for x in r["reasons"]})
    weights_id = ""
    if "weights_id" in df.columns and df["weights_id"].notna().any():
        weights_id = str(df["weights_id"].dropna().iloc[0])
    data = {"album": str(album), "weights_id": weights_id,
            "storage_key": f"iqc-review:{album}:{weights_id}",
            "export_stem": safe_name(album).replace(" ", "_"),
            "reasons": labels, "photos": records}
    n_best = sum(1 for r in records if r["best"])
    n_dups = sum(1 for r in records if r["gsize"] > 1)
    hist_imgs = "\n".join(f'<img src="{_e(quote(p.name))}" alt="{_e(c)} histogram" width="500" loading="lazy">'
                          for c, p in hists.items())
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    note_html = "".join(f'<p class="muted">{_e(n)}</p>' for n in (notes or []))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iqc review: {_e(album)}</title><style>{_asset("review.css")}</style></head>
<body>
<header><h1>{_e(album)}</h1><span class="muted">{len(df)} photo(s), {n_best} best pick(s), {n_dups} in
near-duplicate groups or bursts; written {_e(stamp)} by iqc. Photos are never modified.</span>
<div class="bar">
<label>Show <select id="filter"><option value="best" selected>best picks</option><option value="all">all photos</option>
<option value="dups">duplicates and bursts</option><option value="rejects">rejects (yours and suggested)</option>
<option value="picked">your picks and stars</option></select></label>
<label>Sort by <select id="sort"><option value="score" selected>score (rank)</option><option value="time">capture time</option></select></label>
<button id="export-rating" type="button" title="file,rating: stars 1-5, -1 for rejected">Export ratings CSV</button>
<button id="export-pick" type="button" title="file,pick: pick or reject">Export picks CSV</button>
<button id="clear" type="button">Forget decisions</button>
<span id="shown" class="muted"></span>
</div>
<div class="keys muted">Keys: arrows move &middot; P pick &middot; X reject &middot; 1-5 stars, 0 clears &middot;
Space/Enter large view &middot; C mark, then C on another photo compares the two &middot; Esc closes.
Then <code>iqc export xmp --labels &lt;exported CSV&gt;</code> (your decisions into the sidecars your photo
manager reads) and <code>iqc tune</code>, or <code>iqc tune --labels &lt;exported CSV&gt;</code>; then re-rank.</div>
</header>
<main>{note_html}<div id="grid"></div></main>
<div id="overlay"><div id="ovbody"></div><div id="ovhint">Esc, Space or a click closes; arrows step through the photos; P / X / 1-5 decide.</div></div>
<section id="stats">
<h2>Statistics</h2>
{_metrics_html(metrics)}
<h3>Score histograms</h3>
<div class="hists">{hist_imgs or '<p class="muted">No scores.</p>'}</div>
<p class="muted">Montages for sharing: <a href="top.png">top.png</a> (top {len(top)}),
<a href="bottom.png">bottom.png</a> (bottom {len(bottom)}).</p>
</section>
<script type="application/json" id="iqc-data">{json_for_script(data)}</script>
<script>{_asset("review.js")}</script>
</body></html>
"""
    index = write_atomic(folder / "index.html", page.encode("utf-8"))
    return ReportFiles(folder=folder, index=index, top=top_png, bottom=bottom_png, histograms=hists)


def write_report_if_changed(ranked: pd.DataFrame, folder: str | os.PathLike, *, album: str, source: bytes,
                            metrics: dict, notes: list[str], n_unreadable: int) -> tuple[ReportFiles, bool]:
    """The album report, reused when nothing it shows changed: ``(files, reused)``.

    The report is a pure function of the ranked CSV (``source``, its bytes), the notes and the unreadable
    count; a stamp beside it records their digest, so an unchanged album re-run keeps the files on disk.
    A reused page whose ``thumbs/`` or ``large/`` files are gone (a deleted folder, a deleted file) is
    written again: the files still there are kept, the missing ones made again from one decode per photo
    (:func:`write_media`); ``files.media_restored`` counts them.
    """
    import hashlib
    import json

    folder = Path(folder)
    source_id = hashlib.sha1(source + json.dumps([notes, n_unreadable, REPORT_VERSION]).encode()).hexdigest()
    stamp = folder / ".iqc-source"
    files = existing_report(folder)
    restored = 0
    if files is not None and stamp.is_file() and stamp.read_text().strip() == source_id:
        status = media_status(folder)
        if status is not None and not status.missing:
            return files, True
        restored = len(status.missing) if status is not None else 0
    files = write_report(ranked, folder, album=album, metrics=metrics, notes=notes)
    files.media_restored = restored
    write_atomic(stamp, source_id.encode())
    return files, False
