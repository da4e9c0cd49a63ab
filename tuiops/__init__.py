"""tuiops: curate object-detection training sets at scale, from the terminal."""

__version__ = "0.1.0"
