"""CLIP image embeddings and the aesthetic score: find a model, preprocess, embed, score.

No Dagster import here, and no ``torch``/``transformers`` import until a model is actually loaded, so
deciding that no model is available costs milliseconds, not seconds.

**Finding a model** (:func:`resolve_model`) never touches the network:

* a local directory (``--clip-model DIR``, ``IQC_CLIP_MODEL=DIR``) holding ``config.json``, weights and
  tokenizer files, as written by ``iqc models fetch --dest DIR`` or ``save_pretrained``; or
* a Hugging Face id (default ``openai/clip-vit-base-patch32``) that is already in the local Hugging Face
  cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``), e.g. after
  ``iqc models fetch`` on this machine.

Anything else is *unavailable*, with a plain reason and the way to fix it; the pipeline then ranks
without the aesthetic score. Only :func:`fetch_model` (``iqc models fetch``), or a run with
``allow_download`` set, downloads, and both first check in a few seconds that the hub is reachable.

**Identity.** Embeddings are cached under a ``model_id`` = ``<name>@<weights fingerprint>+<preprocessing
version>``: the same weights found in the cache or in a copied folder share embeddings, and changing the
weights or the preprocessing never reuses a stale vector.

**Preprocessing** (:func:`preprocess`) reproduces CLIP's image processor (resize the shortest side to
224 with bicubic resampling, centre crop 224 x 224, scale to [0, 1], normalise with CLIP's mean/std),
reading those values from the model folder's processor config when it has one. It starts from the
pixels already decoded for the technical features (:class:`~iqc_dagster.core.imaging.Decoded`), so a
photo is never decoded a second time.

**Aesthetic score** (:func:`aesthetic_probability`): cosine similarity of the image embedding to the
positive and to the negative prompt set, multiplied by CLIP's learned temperature (``logit_scale.exp()``,
100 for the released models), and a softmax over the two: ``P(positive) = sigmoid(t * (s_pos - s_neg))``,
in [0, 1]. With one prompt per side this is exactly CLIP's zero-shot probability of the positive label;
several prompts per side are averaged the way CLIP ensembles prompts (mean of the normalised text
embeddings, normalised again).

Modules: :mod:`.settings`, :mod:`.preprocess`, :mod:`.models` (finding one), :mod:`.loading`,
:mod:`.scoring`, :mod:`.download`, and :mod:`.embedding` (the CLIP half of the analysis pass). The names
below are re-exported so ``from iqc_dagster.core import clip`` reaches all of them.
"""

from iqc_dagster.core.clip.settings import (  # noqa: F401
    CONFIG_FILES,
    ClipSettings,
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEVICE,
    DEFAULT_MODEL,
    DEFAULT_NEGATIVE,
    DEFAULT_POSITIVE,
    ENV_BATCH_SIZE,
    ENV_CLIP,
    ENV_DEVICE,
    ENV_DOWNLOAD,
    ENV_MODEL,
    ENV_NEGATIVE,
    ENV_POSITIVE,
    ENV_PRECISION,
    FIX_HINT,
    PRECISIONS,
    PREPROCESS_VERSION,
    PROMPT_SEPARATOR,
    SOURCE_FILE,
    TOKENIZER_FILES,
    WEIGHT_FILES,
    check_precision,
    cpu_has_amx_bf16,
    prompt_set_id,
    resolve_precision,
    split_prompts,
    validate_prompts,
)
from iqc_dagster.core.clip.preprocess import (  # noqa: F401
    CLIP_MEAN,
    CLIP_STD,
    Preprocess,
    center_crop,
    prepare,
    preprocess,
    read_preprocess,
)
from iqc_dagster.core.clip.models import (  # noqa: F401
    ModelSource,
    cached_snapshot,
    device_problem,
    fingerprint,
    hf_cache_dir,
    load_failed,
    looks_like_path,
    missing_files,
    resolve_model,
)
from iqc_dagster.core.clip.loading import (  # noqa: F401
    ClipLoadError,
    LoadedClip,
    ModelCache,
    load_model,
    torch_threads,
)
from iqc_dagster.core.clip.scoring import (  # noqa: F401
    aesthetic_probability,
    ensemble,
)
from iqc_dagster.core.clip.download import (  # noqa: F401
    FetchError,
    check_hub_reachable,
    export_model,
    fetch_model,
    hub_endpoint,
)
