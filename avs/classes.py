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

# LADI (TRECVID DSDI 2020, paper 002 Table 1): 32 classes + 5 none-classes, with their counts n_y over the 40K
# annotated images (the class-balanced focal loss of eq. (3) uses them). Table 1's order and names.
LADI_CLASS_COUNTS = {
    "damage (misc)": 24009,
    "flooding / water damage": 33120,
    "landslide": 2237,
    "road washout": 3613,
    "rubble / debris": 18186,
    "smoke / fire": 1756,
    "dirt": 11866,
    "grass": 19623,
    "lava": 67,
    "rocks": 1067,
    "sand": 2565,
    "shrubs": 13513,
    "snow/ice": 116,
    "trees": 21183,
    "bridge": 3132,
    "building": 15133,
    "dam / levee": 616,
    "pipes": 554,
    "utility or power lines / electric towers": 10612,
    "railway": 742,
    "wireless / radio communication towers": 1136,
    "water tower": 749,
    "road": 16333,
    "aircraft": 201,
    "boat": 2500,
    "car": 13846,
    "truck": 7579,
    "flooding": 4077,
    "lake / pond": 5879,
    "ocean": 3029,
    "puddle": 2386,
    "river / stream": 7362,
    "damage: none": 98412,
    "environment: none": 6748,
    "infrastructure: none": 11814,
    "vehicle: none": 15420,
    "water: none": 13902,
}
LADI_CLASSES = tuple(LADI_CLASS_COUNTS)
LADI_NONE_CLASSES = tuple(c for c in LADI_CLASSES if c.endswith(": none"))

# Pascal VOC 2007 (paper 001's transfer task, Table 2): the 20 classes in the devkit's order.
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
