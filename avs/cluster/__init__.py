"""k-means sound clusters (faiss) of a feature set: pseudo-labels for paper 001's frame model."""

from avs.cluster.config import ClusterConfig

__all__ = ["ClusterConfig", "run_cluster"]


def __getattr__(name: str):
    if name == "run_cluster":
        from avs.cluster.job import run_cluster

        return run_cluster
    raise AttributeError(name)
