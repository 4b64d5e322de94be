"""Built-in training tasks (importing this package registers them in ``avs.train.task.TASKS``).

scene      paper 000: scene classification (log-mel / frame CNNs, CLIP Late Fusion Network)
"""

from avs.train.tasks import scene  # noqa: F401
