"""Fine-tune / train a pool generator with Lightning.

    python train.py generator=minimax dataset=imagewoof paths.data_dir=/data     # Minimax DiT (DiffFit)
    python train.py generator=ddpm dataset=cifar10                                # class-conditional DDPM
    python train.py generator=minimax trainer.devices=4 trainer.strategy=ddp      # several GPUs (global batch kept)

The trained weights land in diffusers layout in ${paths.cache_dir}/generators/<kind>-<dataset>,
where pool=minimax and pool=ddpm look for them by default (output_dir=... puts them elsewhere).
"""

import hydra


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg):
    from sas.apps import train_app
    train_app(cfg)


if __name__ == "__main__":
    main()
