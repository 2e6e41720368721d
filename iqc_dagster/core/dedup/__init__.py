"""Near-duplicate and burst groups: perceptual hashes per photo, and connected components of the
"looks like the same shot" graph.

**Perceptual hash** (:func:`phash`): the DCT hash of Zauner, "Implementation and Benchmarking of
Perceptual Image Hash Functions" (2010), as in libpHash: luminance squashed to 32 x 32 (area
averaging, which is the low-pass filter), 2-D DCT, the 8 x 8 lowest frequencies without the DC row and
column, one bit per coefficient: above the median of the 64. A 64-bit Python ``int``, compared by
Hamming distance (0..64). Resizes, JPEG re-encodes, blur and noise move a few bits; a different photo
differs in about half of them.

A whole-frame pHash is not crop-tolerant (a 10% centre crop moves 15 bits on average, up to 30), so
:func:`photo_hashes` also hashes centre crops of 95, 90, 85 and 80% of each side (:data:`CROP_LADDER`),
and the *grouping distance* of two photos (:func:`photo_distance`) is the smallest of: whole frame vs
whole frame, and any centre crop of one vs the whole frame of the other. A centre crop of up to 20% a
side then lands within 6 bits of its original, while different photos stay 16+ bits apart (measured
in ``docs/evaluation.md``; ``data/measure_dedup.py`` reproduces it).

**Edges** between two photos (thresholds in :class:`Thresholds`):

* *near-duplicate*: grouping distance ``<= phash_near`` (10), or CLIP cosine ``>= cosine_near``
  (0.95) when both photos have an embedding;
* *burst*: capture times (EXIF) within ``burst_seconds`` (10 s) of each other and at most
  ``burst_neighbours`` (8) photos apart in capture order, and the photos look alike under looser
  thresholds: grouping distance ``<= phash_burst`` (16) or cosine ``>= cosine_burst`` (0.90). The
  neighbour limit keeps the number of burst comparisons linear, so an album whose photos all carry
  one timestamp (a camera clock never set) cannot chain into one giant group by chance.

**No detail**: a frame that is flat (its luminance, at the hash's 32 x 32, varies by less than
:data:`FLAT_STD` grey levels: a black frame, a lens-cap shot, a blank scan) or tiny (shorter side below
:data:`TINY_SIDE` pixels: a 1-pixel image, a noise strip) has no perceptual hash worth comparing: the
bits of flat frames are rounding noise, so all of them would look alike. Such a photo gets the marker
``"blank"`` or ``"tiny"`` instead of hashes (:func:`photo_signature`) and joins no near-duplicate or
burst edge, by hash or by CLIP (whose embeddings of blank frames are alike too). Byte-identical files
(same ``content_hash``) are always near-duplicates, whatever their pixels.

**Groups** are the connected components of that graph (single linkage: A~B and B~C put A, B and C in
one group even if A and C are not alike). Every photo is in exactly one group; a photo with no edge is
a group of one. The best pick of a group is its highest ``final_score`` (ties: the lower ``rank``, then
the path), unless another member's open eyes or sharper face outweigh a marginally higher score
(:data:`FACE_PICK_MARGIN`); every frame of an exposure bracket or focus stack is kept
(:data:`SEQUENCE_KINDS`). Nothing is removed or hidden: :func:`group_photos` only adds columns.

Pairs are compared in row blocks with vectorised numpy (XOR + popcount, a matrix product for cosines),
with bounded memory and no Python loop over pairs: 20k photos (200 M pairs) take a few seconds.

Modules: :mod:`.hashing` (the hash of one photo), :mod:`.grouping` (pairs and components),
:mod:`.table` (the group columns of an album); the names are re-exported here. No Dagster import.
"""

from iqc_dagster.core.dedup.hashing import (  # noqa: F401
    CROP_LADDER,
    FLAT_STD,
    HASH_INPUT_SIDE,
    NO_DETAIL,
    PHASH_VERSION,
    TINY_SIDE,
    _HASH_SIDE,
    _LOW,
    _MASK64,
    _dct_hash,
    _gray_of,
    _one,
    capture_times,
    hamming,
    hash_files,
    hash_matrix,
    hashes_hex,
    no_detail,
    no_detail_marker,
    parse_hashes,
    phash,
    phash_to_int64,
    photo_distance,
    photo_hashes,
    photo_signature,
)
from iqc_dagster.core.dedup.grouping import (  # noqa: F401
    DEFAULT_THRESHOLDS,
    Thresholds,
    _burst_pairs,
    _dense_pairs,
    _embedding_matrix,
    _ladder_distance,
    _pair_distance,
    _seconds,
    _window_pairs,
    components,
    similar_pairs,
)
from iqc_dagster.core.dedup.table import (  # noqa: F401
    FACE_PICK_MARGIN,
    GROUP_COLUMNS,
    SEQUENCE_KINDS,
    _identical_pairs,
    _order,
    _pick_order,
    group_photos,
    group_summary,
    mark_groups,
)
