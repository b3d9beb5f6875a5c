"""LightningModules and DataModules: downstream evaluation (classifier.py, datamodule.py, evaluate.py)."""
