"""Fine-tune / train a pool generator with Lightning.

    python train.py generator=minimax dataset=imagewoof paths.data_dir=/data     # Minimax DiT (DiffFit)
    python train.py generator=ddpm dataset=cifar10                                # class-conditional DDPM
    python train.py generator=minimax trainer.devices=4 trainer.strategy=ddp      # several GPUs

The trained weights land in diffusers layout in the run's output folder; point
a pool at them with pool=minimax pool.model=<folder> (or pool=ddpm pool.model=...).
"""

import hydra


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg):
    from sas.training import train_generator
    print(f"trained generator: {train_generator(cfg)}")


if __name__ == "__main__":
    main()
