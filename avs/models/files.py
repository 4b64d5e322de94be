"""Where a trained model's weights are: a run folder of ``avs train`` or a checkpoint file, local or remote.

model_file("runs/a01")                  # -> runs/a01/best/model.safetensors
model_file("s3://bucket/w.safetensors") # a file as it is
"""

from __future__ import annotations

import os

from avs.shards.storage import Storage

RUN_MODEL_FILES = ("best/model.safetensors", "best/model.pt")  # what `avs train` leaves in a run folder


def model_file(path: str) -> str:
    """A run folder -> its ``best/model.safetensors``; a file as it is (absolute when local)."""
    if "://" not in path and os.path.isfile(path):  # a checkpoint file (Storage("f").exists("") is a folder test)
        return os.path.abspath(path)
    storage = Storage(path)
    if "://" in path and storage.fs.isfile(storage.root):
        return storage.uri
    for rel in RUN_MODEL_FILES:
        if storage.exists(rel):
            return storage.path(rel)
    if not storage.exists(""):
        raise FileNotFoundError(f"model not found: {path} (neither a run folder of `avs train` nor a file)")
    return storage.uri if "://" in path else os.path.abspath(path)
