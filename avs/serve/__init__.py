"""The online service (``avs serve``): one recording in, its features or a trained run's predictions out, over HTTP
with Ray Serve, computed by the same extractors, configs and checkpoints as the batch jobs.

    config.py     ServeConfig (frozen; the flags of ``avs serve``)
    clip.py       one file -> the feature tables ``avs extract`` would write for it (decode guarded, with a timeout)
    runs.py       a trained run loaded for serving: its extraction config rebuilt from its shards, its task's
                  inputs and outputs (scene probabilities, multi-label scores, SED events)
    encode.py     responses as JSON, Arrow IPC or .npz (the ``Accept`` header)
    app.py        the FastAPI routes and the Serve deployment (batching, limits, errors); ``build_app`` for
                  ``serve deploy serve.yaml``
    cli.py        ``avs serve`` (and ``jobs/serve.py``)
"""
