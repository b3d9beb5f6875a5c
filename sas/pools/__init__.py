"""Image-pool sources (one file each) and the content-addressed pool store.

    from sas.pools.base import generate_pool
    from sas.pools.dit import DiTSource        # DiT / Minimax (converted checkpoints, fine-tuned folders)
    from sas.pools.ddpm import DDPMSource      # class-conditional DDPM
    from sas.pools.folder import FolderPool    # any existing pool on disk
"""
