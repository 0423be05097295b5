"""Training pipeline tracked with MLflow and versioned with DVC (see README.md)."""
