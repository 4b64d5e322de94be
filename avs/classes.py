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

# DESED (DCASE 2020 Task 4, paper 003 §3.1): the ten domestic sound event classes, sorted as the reference
# code reads them (baseline/config.py: the validation tsv's event_label values, sorted and unique).
DESED_CLASSES = (
    "Alarm_bell_ringing",
    "Blender",
    "Cat",
    "Dishes",
    "Dog",
    "Electric_shaver_toothbrush",
    "Frying",
    "Running_water",
    "Speech",
    "Vacuum_cleaner",
)
