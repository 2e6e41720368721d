"""The evaluation report of one ranked album: score histograms, top/bottom montages, one HTML page.

Written to ``<output_dir>/reports/<album>/`` (:func:`report_folder`):

* ``hist_<score>.png`` — one histogram per score column (``final_score``, ``aesthetic``, every
  ``*_norm`` with at least one value);
* ``top.png`` / ``bottom.png`` — the K best and K worst photos, each labelled with rank, score, file
  name and reasons;
* ``index.html`` — self-contained: the metrics, the histograms and montages (relative links to the PNGs
  beside it), the top/bottom photos as embedded JPEG thumbnails with their reasons, the near-duplicate
  and burst groups, and a table of every photo. Every file name and every other text from the table is
  HTML-escaped; links to the photos are ``file://`` URIs, percent-encoded.

Photos are only read (decoded once, small, for thumbnails); an unreadable or missing photo gets a grey
placeholder, never an error. Matplotlib is used through its object API with the Agg canvas (no pyplot
state), so reports can be written from worker threads. No Dagster import here.
"""

from __future__ import annotations

import base64
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
from iqc_dagster.core import imaging
from iqc_dagster.core.analysis import default_workers, opencv_threads
from iqc_dagster.core import metrics as metrics_mod
from iqc_dagster.core import reasons as reasons_mod

DEFAULT_TOP_K = 8
#: Bump when the report's content or layout changes, so reports made by an older version are rewritten.
REPORT_VERSION = "report1"
THUMB_SIDE = 240  # px, long side of montage thumbnails
HTML_THUMB_SIDE = 160  # px, long side of the thumbnails embedded in index.html
MONTAGE_COLUMNS = 4
_PLACEHOLDER_GREY = 128


@dataclass
class ReportFiles:
    folder: Path
    index: Path
    top: Path
    bottom: Path
    histograms: dict[str, Path] = field(default_factory=dict)

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


def _thumb_data_uri(img: np.ndarray | None, side: int = HTML_THUMB_SIDE) -> str:
    from PIL import Image

    im = Image.fromarray(img if img is not None else _placeholder(side))
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{margin:0 0 4px}h2{margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{width:170px;font-size:12px}
.card img{max-width:160px;max-height:160px;display:block;margin-bottom:4px;background:#888}
.hists img{margin:4px}.muted{color:#777}.dup{color:#a55}
"""


def _e(x) -> str:
    """HTML-escape any value (None/NaN as an empty string)."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{v:.3f}"
    return str(v)


def _photo_link(row) -> str:
    name = _e(row.get("file"))
    p = row.get("path")
    if isinstance(p, str) and p and os.path.isabs(p):
        try:
            return f'<a href="{_e(Path(p).as_uri())}">{name}</a>'
        except ValueError:
            pass
    return name


def _cards(rows: pd.DataFrame, thumbs: dict) -> str:
    out = ['<div class="cards">']
    for _, r in rows.iterrows():
        out.append(
            f'<div class="card"><img src="{_thumb_data_uri(thumbs.get(r.get("path")))}" '
            f'alt="{_e(r.get("file"))}"><b>#{_e(r.get("rank"))}</b> {_e(_fmt(r.get("final_score")))}<br>'
            f'{_photo_link(r)}<br><span class="muted">{_e(r.get(reasons_mod.REASONS_COLUMN))}</span></div>')
    out.append("</div>")
    return "\n".join(out)


def _groups_html(df: pd.DataFrame) -> str:
    if "group_id" not in df.columns or "group_size" not in df.columns:
        return '<p class="muted">No grouping columns in this table.</p>'
    size = pd.to_numeric(df["group_size"], errors="coerce").fillna(1)
    multi = df[size.to_numpy() > 1]
    if multi.empty:
        return "<p>No near-duplicates or bursts found.</p>"
    rows = ["<table><tr><th>group</th><th>kind</th><th>photos</th><th>best pick</th><th>others (rank)</th></tr>"]
    for gid, g in multi.groupby("group_id", sort=True):
        best = g[g["is_best_in_group"].map(lambda v: str(v).strip().lower() in ("true", "1"))]
        best_row = best.iloc[0] if len(best) else g.iloc[0]
        others = ", ".join(f"{_photo_link(r)} ({_e(r.get('rank'))})" for _, r in g.iterrows()
                           if r.name != best_row.name)
        kind = _e(g["group_kind"].iloc[0]) if "group_kind" in g.columns else ""
        rows.append(f"<tr><td class=num>{_e(gid)}</td><td>{kind}</td><td class=num>{len(g)}</td>"
                    f"<td>{_photo_link(best_row)} (#{_e(best_row.get('rank'))}, {_e(_fmt(best_row.get('final_score')))})</td>"
                    f"<td>{others}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _table_html(df: pd.DataFrame, scores: list[str]) -> str:
    cols = ["rank", "file", "final_score"] + [c for c in scores if c != "final_score"]
    cols += [c for c in ["group_id", "group_size", "is_best_in_group"] if c in df.columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols) + f"<th>{reasons_mod.REASONS_COLUMN}</th>"
    out = [f"<table><tr>{head}</tr>"]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            if c == "file":
                cells.append(f"<td>{_photo_link(r)}</td>")
            else:
                v = r.get(c)
                num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                cells.append(f"<td{' class=num' if num else ''}>{_e(_fmt(v))}</td>")
        cells.append(f"<td>{_e(r.get(reasons_mod.REASONS_COLUMN))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _metrics_html(m: dict) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td class=num>{_e('n/a' if v is None else v)}</td></tr>"
                   for k, v in m.items())
    return f"<table>{rows}</table>"


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

    paths = pd.concat([top, bottom])["path"] if "path" in df.columns else pd.Series([], dtype=object)
    unique = list(dict.fromkeys(paths.tolist()))
    workers = default_workers()
    with opencv_threads(1 if workers > 1 else None), ThreadPoolExecutor(max_workers=workers) as pool:
        thumbs = dict(zip(unique, pool.map(thumbnail, unique)))
    top_png = write_atomic(folder / "top.png", montage_png(top, f"{album}: top {len(top)}", thumbs))
    bottom_png = write_atomic(folder / "bottom.png", montage_png(bottom, f"{album}: bottom {len(bottom)}", thumbs))

    scores = score_columns(df)
    hist_imgs = "\n".join(f'<img src="{_e(quote(p.name))}" alt="{_e(c)} histogram" width="500">'
                          for c, p in hists.items())
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    note_html = "".join(f'<p class="muted">{_e(n)}</p>' for n in (notes or []))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iqc report: {_e(album)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(album)}</h1>
<p class="muted">{len(df)} ranked photo(s); report written {_e(stamp)} by iqc. Photos are never modified:
duplicates are marked, not removed.</p>
{note_html}
<h2>Proxy metrics</h2>
{_metrics_html(metrics)}
<h2>Score histograms</h2>
<div class="hists">{hist_imgs or '<p class="muted">No scores.</p>'}</div>
<h2>Top {len(top)}</h2>
<p><a href="top.png"><img src="top.png" alt="top montage" style="max-width:100%"></a></p>
{_cards(top, thumbs)}
<h2>Bottom {len(bottom)}</h2>
<p><a href="bottom.png"><img src="bottom.png" alt="bottom montage" style="max-width:100%"></a></p>
{_cards(bottom, thumbs)}
<h2>Near-duplicates and bursts</h2>
{_groups_html(df)}
<h2>All photos</h2>
{_table_html(df, scores)}
</body></html>
"""
    index = write_atomic(folder / "index.html", page.encode("utf-8"))
    return ReportFiles(folder=folder, index=index, top=top_png, bottom=bottom_png, histograms=hists)


def write_report_if_changed(ranked: pd.DataFrame, folder: str | os.PathLike, *, album: str, source: bytes,
                            metrics: dict, notes: list[str], n_unreadable: int) -> tuple[ReportFiles, bool]:
    """The album report, reused when nothing it shows changed: ``(files, reused)``.

    The report is a pure function of the ranked CSV (``source``, its bytes), the notes and the unreadable
    count; a stamp beside it records their digest, so an unchanged album re-run keeps the files on disk.
    """
    import hashlib
    import json

    folder = Path(folder)
    source_id = hashlib.sha1(source + json.dumps([notes, n_unreadable, REPORT_VERSION]).encode()).hexdigest()
    stamp = folder / ".iqc-source"
    files = existing_report(folder)
    if files is not None and stamp.is_file() and stamp.read_text().strip() == source_id:
        return files, True
    files = write_report(ranked, folder, album=album, metrics=metrics, notes=notes)
    write_atomic(stamp, source_id.encode())
    return files, False
