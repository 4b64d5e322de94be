"""Evaluation: metrics (log-loss, accuracy), location-disjoint folds, report folders."""
