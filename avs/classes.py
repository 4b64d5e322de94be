"""Class lists of the datasets avs reads, in the order models and reports use."""

from __future__ import annotations

# TAU Urban Audio-Visual Scenes 2021 (paper 000 §2): the ten acoustic scenes, alphabetical as in meta.csv.
SCENE_CLASSES = (
    "airport",
    "bus",
    "metro",
    "metro_station",
    "park",
    "public_square",
    "shopping_mall",
    "street_pedestrian",
    "street_traffic",
    "tram",
)
