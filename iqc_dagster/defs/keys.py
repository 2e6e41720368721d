"""Every asset key, group name and pool of the code location, in one place.

Stage modules name their upstream assets by these keys (``deps=[keys.TECHNICAL_FEATURES]``) rather than
importing each other, so the stages can be read, and loaded, one at a time.
"""

import dagster as dg

# --- groups (the UI's asset groups) ----------------------------------------------------------------
ALBUMS_GROUP = "albums"          # per album: inventory -> analysis -> scores -> ranking
WEIGHTS_GROUP = "weights"        # the fusion weights: tuned_weights -> ranking_weights
EVALUATION_GROUP = "evaluation"  # per-album report; the ranking-quality benchmark
EXPORT_GROUP = "export"          # per album, on request only: XMP sidecars (never run by the sensor)

#: The single-writer DuckDB pool: the short steps that write the database claim its one slot
#: (limit set in the shipped dagster.yaml, see INSTANCE_SETTINGS in iqc_dagster.defs.resources).
DUCKDB_POOL = "iqc_duckdb"

# --- assets, in pipeline order -----------------------------------------------------------------------
IMAGE_INVENTORY = dg.AssetKey("image_inventory")
TECHNICAL_FEATURES = dg.AssetKey("technical_features")
CLIP_EMBEDDINGS = dg.AssetKey("clip_embeddings")
NORMALIZED_FEATURES = dg.AssetKey("normalized_features")
AESTHETIC_SCORES = dg.AssetKey("aesthetic_scores")
DUPLICATE_GROUPS = dg.AssetKey("duplicate_groups")
TUNED_WEIGHTS = dg.AssetKey("tuned_weights")
RANKING_WEIGHTS = dg.AssetKey("ranking_weights")
RANKED_PHOTOS = dg.AssetKey("ranked_photos")
EVALUATION_REPORT = dg.AssetKey("evaluation_report")
RANKING_QUALITY_BENCHMARK = dg.AssetKey("ranking_quality_benchmark")
XMP_SIDECARS = dg.AssetKey("xmp_sidecars")  # not in ALBUM_RUN: export_xmp_job only

#: What one album run materializes (``rank_album_job``, ``iqc rank``/``iqc run``): the album's assets
#: and the weights its ranking reads.
ALBUM_RUN = (IMAGE_INVENTORY, TECHNICAL_FEATURES, CLIP_EMBEDDINGS, NORMALIZED_FEATURES, AESTHETIC_SCORES,
             DUPLICATE_GROUPS, RANKING_WEIGHTS, RANKED_PHOTOS, EVALUATION_REPORT)

# --- jobs --------------------------------------------------------------------------------------------
RANK_ALBUM_JOB = "rank_album_job"
TUNE_WEIGHTS_JOB = "tune_weights_job"
EXPORT_XMP_JOB = "export_xmp_job"
