"""The small demo world the MLflow tests train on (retrain, tracking, the real server): overrides of
``configs/demo.yaml`` that keep a fit to seconds."""

SMALL_TRAINING = [
    "simulate.n_customers=1500",
    "cutoffs.n_training=10",
    "model.lightgbm.num_threads=1",
    "model.bootstrap_rounds=30",
    "model.points_reference_rows=300",
    "model.backtest_origins=2",
]
#: no refit intervals for the points (retrain and server tests)
SMALL_NO_REFITS = [*SMALL_TRAINING, "model.points_interval=none"]
