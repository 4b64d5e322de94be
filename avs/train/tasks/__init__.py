"""Built-in training tasks (importing this package registers them in ``avs.train.task.TASKS``).

scene              paper 000: scene classification (log-mel / frame CNNs, CLIP Late Fusion Network)
sed-mean-teacher   paper 003: sound event detection, CRNN student + EMA teacher on strong / weak / unlabeled clips
sed-tritrain       paper 004: sound event detection, tri-training (labelers F1, F2 -> pseudo-labels) + gradient reversal
multilabel         paper 002: soft multi-label image classification (focal-loss variants) from annotator votes
"""

from avs.train.tasks import multilabel, scene, sed_mean_teacher, sed_tritrain  # noqa: F401
