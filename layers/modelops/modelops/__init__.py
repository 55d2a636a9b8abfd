"""modelops: train, register, serve, batch-score and safely roll out scikit-learn models on AWS Lambda."""

__version__ = "0.1.0"
