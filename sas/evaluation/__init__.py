"""Downstream evaluation: the IDC protocol (protocol.py), the classifier LightningModule, the datamodule."""
