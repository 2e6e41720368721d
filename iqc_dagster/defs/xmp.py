"""Export, per album, on request: ``xmp_sidecars[album]`` — the album's ranking written as XMP sidecars
(core/xmp.py), in its own job (``export_xmp_job``, in :mod:`.jobs`).

Not part of ``rank_album_job`` and never requested by the sensor: writing beside the photos is the one
place iqc writes into an album folder, so it only happens when asked for (materialize ``xmp_sidecars``
in the UI, run ``export_xmp_job``, or ``iqc export xmp``). Run config chooses the sidecar names, a
``dest`` mirror folder, a dry run, the rating policy and ``labels``: the review page's labels CSV, whose
decisions become the ratings (as ``iqc export xmp --labels``).
"""


import dagster as dg

from iqc_dagster.core import names, ratings
from iqc_dagster.core import xmp as xmpcore
from iqc_dagster.defs import keys
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import IQCSettings


class XmpExportConfig(dg.Config):
    sidecar: str = "ext"  # "ext": photo.jpg.xmp (darktable, digiKam, Immich); "base": photo.xmp (Lightroom)
    dest: str = ""  # write the sidecars under this folder instead of beside the photos
    dry_run: bool = False
    overwrite_ratings: bool = False  # replace ratings and labels the user set
    top_share: float = 0.2
    reject_flag: bool = False  # rate clear technical rejects -1 instead of 1
    labels: str = ""  # the review page's labels CSV (file,rating / file,pick): the user's decisions as ratings


@dg.asset(
    key=keys.XMP_SIDECARS, partitions_def=albums_partitions, group_name=keys.EXPORT_GROUP,
    kinds={"python", "xmp"}, deps=[keys.RANKED_PHOTOS],
    description="XMP sidecars for every ranked photo (and its RAW/JPEG companion): xmp:Rating, xmp:Label, "
                "iqc/ keywords and iqc's own values, merged into existing sidecars; the user's own ratings "
                "are kept. Config `labels`: the review page's exported CSV, whose decisions become the ratings. "
                "The photos are never written. Not run by the sensor: materialize it on purpose.",
)
def xmp_sidecars(context: dg.AssetExecutionContext, config: XmpExportConfig,
                 iqc: IQCSettings) -> dg.MaterializeResult:
    album = context.partition_key
    csv = iqc.csv_path(album)
    if not csv.is_file():
        raise dg.Failure(description=f"no ranked CSV for {names.display(album)} at {names.display(csv)}: "
                                     f"materialize ranked_photos first")
    try:
        policy = xmpcore.Policy(top_share=config.top_share, reject_flag=config.reject_flag,
                                overwrite_ratings=config.overwrite_ratings)
        summary, decisions = xmpcore.export_album(
            xmpcore.read_ranked_csv(csv), iqc.album_dir(album), policy, album=album,
            labels=config.labels or None, warn=context.log.warning,
            style=config.sidecar, dest=config.dest or None, dry_run=config.dry_run, log=context.log.info)
    except (xmpcore.XmpError, ratings.LabelsError) as exc:
        raise dg.Failure(description=str(exc)) from None
    for file, reason in summary.failed:
        context.log.warning(f"sidecar not written: {names.display(file)}: {reason}")
    context.log.info(f"{album}: {'would write' if config.dry_run else 'wrote'} {len(summary.written)} sidecar(s), "
                     f"{len(summary.unchanged)} unchanged, {summary.kept_user_ratings} user rating(s) kept"
                     + (f", {summary.decisions_applied} rated by your review decisions, "
                        f"{summary.decision_conflicts} conflict(s) with a rating in the sidecar"
                        if decisions is not None else ""))
    return dg.MaterializeResult(metadata={
        "n_written": len(summary.written), "n_unchanged": len(summary.unchanged),
        "n_failed": len(summary.failed), "n_user_ratings_kept": summary.kept_user_ratings,
        "dry_run": config.dry_run, "by_class": dg.MetadataValue.json(summary.by_class),
        **({"n_review_decisions": decisions.n_matched, "n_decisions_applied": summary.decisions_applied,
            "n_decision_conflicts": summary.decision_conflicts, "n_conflicts_kept": summary.conflicts_kept,
            "n_labels_unmatched": len(decisions.unmatched)} if decisions is not None else {}),
        "where": names.display(config.dest or iqc.album_dir(album)),
    })
