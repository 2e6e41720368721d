"""The jobs: one album run (what the sensor requests, ``iqc rank`` and ``iqc run`` execute), tuning, and
the XMP export (``iqc export xmp``; never requested by the sensor)."""

import dagster as dg

from iqc_dagster.defs import keys
from iqc_dagster.defs.partitions import albums_partitions

rank_album_job = dg.define_asset_job(
    keys.RANK_ALBUM_JOB,
    selection=dg.AssetSelection.assets(*keys.ALBUM_RUN),
    partitions_def=albums_partitions,
    description="Inventory, features, embeddings, scores, duplicate groups, the ranking weights, the ranked "
                "CSV and the report for one album, with the checks of each.",
)

tune_weights_job = dg.define_asset_job(
    keys.TUNE_WEIGHTS_JOB,
    selection=dg.AssetSelection.assets(keys.TUNED_WEIGHTS),
    description="Tune the fusion weights on every album's scores (iqc tune); the next album runs use them "
                "when they are not worse held-out.",
)

export_xmp_job = dg.define_asset_job(
    keys.EXPORT_XMP_JOB,
    selection=dg.AssetSelection.assets(keys.XMP_SIDECARS),
    partitions_def=albums_partitions,
    description="Write the album's XMP sidecars from its ranked CSV (rank it first).",
)
