"""avs: audio-visual machine listening at scale (feature extraction on Ray, clusters, training)."""

__version__ = "0.1.0"
