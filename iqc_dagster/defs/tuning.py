"""Stage 6 (on demand): the unpartitioned ``tuned_weights`` asset — learn the fusion weights from
preferences (Optuna).

It depends on every album partition's ``normalized_features`` (the scores it tunes on), runs the study
in :mod:`iqc_dagster.core.tuning`, appends a row to the DuckDB table ``tuned_weights`` and writes the
result under ``$IQC_OUTPUT_DIR/tuning/``. ``ranking_weights`` (and so every later ``ranked_photos``)
uses the latest tuned weights when their held-out agreement is not below the defaults'.
"""

from pathlib import Path
from typing import Optional

import dagster as dg
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import names, tuning
from iqc_dagster.core.files import write_atomic
from iqc_dagster.defs import keys
from iqc_dagster.defs.resources import IQCSettings, db

#: Files written under ``$IQC_OUTPUT_DIR/tuning/`` (besides the study, ``optuna.sqlite3``).
RESULT_JSON = "tuned_weights.json"
HISTORY_PNG = "tuned_weights_history.png"


class TuneConfig(dg.Config):
    """Run config of ``tuned_weights`` (Launchpad in the UI, ``iqc tune`` flags on the command line)."""

    n_trials: int = tuning.DEFAULT_TRIALS  # trials added to the study by this run
    labels_csv: Optional[str] = None  # file,rating or file,pick CSV; first source of ratings
    use_clip: bool = True  # False: leave the aesthetic score out (its weight keeps its default share)
    seed: int = tuning.DEFAULT_SEED
    # A subset of the benchmark's references / distortions, for quick runs (default: the whole set)
    synthetic_references: Optional[list[str]] = None
    synthetic_distortions: Optional[list[str]] = None


def tuning_dir(iqc: IQCSettings) -> Path:
    return iqc.out_dir() / "tuning"


@dg.asset(
    key=keys.TUNED_WEIGHTS, group_name=keys.WEIGHTS_GROUP, kinds={"python", "optuna", "duckdb"},
    deps=[dg.AssetDep(keys.NORMALIZED_FEATURES, partition_mapping=dg.AllPartitionMapping()),
          dg.AssetDep(keys.AESTHETIC_SCORES, partition_mapping=dg.AllPartitionMapping())],
    description="Fusion weights learnt with Optuna (seeded TPE, resumable study in "
                "$IQC_OUTPUT_DIR/tuning/optuna.sqlite3) from preferences: the user's ratings (labels CSV, "
                "XMP sidecars, embedded XMP/EXIF) when there are enough, else the synthetic degradation "
                "pairs of the ranking-quality benchmark. Split by photo (by reference photo for synthetic "
                "pairs); reports held-out agreement of the defaults and of the tuned weights. Rankings use "
                "the tuned weights only when they are not worse held-out.",
)
def tuned_weights(context: dg.AssetExecutionContext, config: TuneConfig, iqc: IQCSettings,
                  duckdb: DuckDBResource) -> dg.MaterializeResult:
    out = tuning_dir(iqc)
    out.mkdir(parents=True, exist_ok=True)
    with db(duckdb) as conn:
        scores = tuning.all_album_scores(conn)
    if not scores.empty:  # albums whose folder is gone cannot be rated any more
        root = iqc.root_dir()
        present = {a for a in scores["album"].unique() if (root / names.from_key(a)).is_dir()}
        scores = scores[scores["album"].isin(present)]
    context.log.info(f"{scores['album'].nunique() if not scores.empty else 0} album(s), {len(scores)} scored "
                     f"photo(s) under {iqc.root_dir()}")

    def synthetic():
        return tuning.synthetic_frame(out, config.synthetic_references,
                                      distortions=config.synthetic_distortions, log=context.log.info)

    try:
        prefs = tuning.gather_preferences(scores, str(iqc.root_dir()), labels_csv=config.labels_csv,
                                          use_clip=config.use_clip, synthetic=synthetic, log=context.log.info)
        result = tuning.run_study(prefs, n_trials=config.n_trials, storage_dir=out, seed=config.seed,
                                  log=context.log.info)
    except tuning.TuningError as exc:
        raise dg.Failure(description=str(exc)) from None
    with db(duckdb) as conn:
        tuning.save_result(conn, result, {"labels_csv": config.labels_csv, "use_clip": config.use_clip,
                                          "seed": config.seed})
    summary = result.summary()
    json_path = write_atomic(out / RESULT_JSON, (tuning.result_to_json(result) + "\n").encode("utf-8"))
    png = tuning.plot_history(result, out / HISTORY_PNG)
    verdict = ("used by the next rankings" if result.accepted else
               "NOT used: held-out agreement below the defaults'; rankings keep the defaults")
    context.log.info(f"tuned weights {result.weights.weights_id}: {verdict}")
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.json(summary),
        "best_weights": dg.MetadataValue.json(result.best_weights),
        "objective": result.objective,
        "heldout_default": summary["heldout_default"],
        "heldout_tuned": summary["heldout_tuned"],
        "tune_default": summary["tune_default"],
        "tune_tuned": summary["tune_tuned"],
        "n_trials": result.n_trials,
        "n_new_trials": result.n_new_trials,
        "n_pairs_tune": result.n_pairs_tune,
        "n_pairs_heldout": result.n_pairs_heldout,
        "heldout_keys": ", ".join(result.keys_heldout[:30]) if prefs.source == "synthetic" else
                        f"{len(result.keys_heldout)} photos",
        "study": result.study_name,
        "study_storage": dg.MetadataValue.path(result.storage.removeprefix("sqlite:///")),
        "weights_id": result.weights.weights_id,
        "used_for_ranking": result.accepted,
        "verdict": verdict,
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "_none_"),
        "result_json": dg.MetadataValue.path(str(json_path.resolve())),
        "history_png": dg.MetadataValue.path(str(png.resolve())),  # the plot is a file, linked, not embedded
        "seconds": result.seconds,
    })
