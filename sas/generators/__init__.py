"""Generators: the DiT / VAE loader, DiffFit and checkpoint conversion, the Minimax and DDPM LightningModules,
diffusion losses, latent caching, the EMA callback, and the training driver behind train.py."""
