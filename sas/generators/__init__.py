"""Generators: the DiT / VAE loader, DiffFit and original-checkpoint conversion (more to move here)."""
