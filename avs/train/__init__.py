"""Training: losses, augmentations and the optimisation recipe (pure parts), and the Ray Train job built on them:
``config`` (TrainConfig), ``data`` (Ray Data inputs from feature shards), ``worker`` (train_loop_per_worker),
``job`` (run_train: TorchTrainer), ``predict`` (run_predict), ``cli`` (``avs train`` / ``avs predict``)."""
