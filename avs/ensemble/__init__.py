"""Ensembles and post-processing on score tables (paper 000 sec. 2.4); pure numpy / pyarrow functions."""

from avs.ensemble.fusion import (
    PAPER000_AUDIO_CLASSES,
    PAPER000_REPLACE_MARGIN,
    ClampConfig,
    EnsembleConfig,
    average_segments,
    classwise_select,
    combine_families,
    ensemble_paper000,
    low_confidence_rows,
    mean_of_models,
    postprocess_clamp,
    replace_low_confidence,
)
from avs.ensemble.scores import Scores, as_scores

__all__ = [
    "PAPER000_AUDIO_CLASSES",
    "PAPER000_REPLACE_MARGIN",
    "ClampConfig",
    "EnsembleConfig",
    "Scores",
    "as_scores",
    "average_segments",
    "classwise_select",
    "combine_families",
    "ensemble_paper000",
    "low_confidence_rows",
    "mean_of_models",
    "postprocess_clamp",
    "replace_low_confidence",
]
