"""DiT pool source: class-conditional latent diffusion with classifier-free guidance (diffusers).

    src = DiTSource(model="facebook/DiT-XL-2-256", vae="stabilityai/sd-vae-ft-mse")
    images = src.sample(labels=[0, 3], generators=[g0, g1])        # (2, 3, 256, 256) uint8

As in the DiT / Minimax sampling code: DDPM ancestral sampling respaced from
1,000 to `num_inference_steps` steps with the learned variance, guidance
`guidance_scale` on the first 3 latent channels (`guidance: original`, the
original code) or on all 4 (`guidance: all`, diffusers' DiTPipeline), the
"no class" label = the model's class count (1000 for ImageNet DiTs, whatever
the embedding table says for others), latents decoded by the VAE after
division by `latent_scale` (0.18215). Class ids come from the dataset's class
table (`class_ids: imagenet`) or are the dataset labels (`class_ids: label`,
for DiTs trained on the dataset's own classes).

Weights: a diffusers DiT pipeline (hub id at `revision`, or a local folder with
transformer/ and vae/), a separate VAE id (at `vae_revision`) or folder, an original-layout checkpoint (.pt, DiT or
Minimax; converted on load, see sas.generators.difffit), or random init from
`transformer_config` / `vae_config` (tests and benchmarks). Every path is set
to compute what the original DiT computes (timestep features, LayerNorm eps:
sas.generators.dit.match_original_dit).

Precision: float32 with TF32 matmuls by default, as the original samples; with
`dtype: bfloat16` only the networks run under autocast, while the latent state,
the guidance and the scheduler step stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import torch

from sas.data.classes import ClassTable
from sas.devices import set_tf32
from sas.cache import is_local_path, weights_id
from sas.pools.base import GeneratedPool

__all__ = ["DiTSource"]


@dataclass
class DiTSource(GeneratedPool):
    model: str | None = "facebook/DiT-XL-2-256"     # diffusers pipeline: hub id or local folder
    revision: str | None = None                      # of the model's hub repo (branch, tag or commit; None: main)
    vae: str | None = "stabilityai/sd-vae-ft-mse"    # hub id or folder; None: the pipeline's own vae/
    vae_revision: str | None = None
    checkpoint: str | None = None                    # original-layout .pt (DiT or Minimax), converted on load
    transformer_config: dict | None = None           # random init instead of `model` (tests, benchmarks)
    vae_config: dict | None = None
    init_seed: int = 0
    class_ids: str = "imagenet"                      # imagenet | label
    guidance_scale: float = 4.0
    guidance: str = "original"                       # original (3 channels) | all (4 channels)
    num_inference_steps: int = 50
    latent_scale: float = 0.18215
    device: str = "auto"
    dtype: str = "float32"                           # float32: the original's precision; bfloat16: the network
                                                     # under autocast, latents / guidance / scheduler in float32
    tf32: bool = True                                # TF32 matmuls for float32 (the original's sample.py allows them)
    batch: int | str = "auto"                        # images per batch; auto: by free device memory
    decode_batch: int = 16                           # latents per VAE decode call (~97 MiB per 256-px image in bf16)
    compile: bool = False
    _loaded: tuple = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.guidance not in ("original", "all"):
            raise ValueError(f"pool.guidance must be 'original' or 'all', got '{self.guidance}'")
        if self.class_ids not in ("imagenet", "label"):
            raise ValueError(f"pool.class_ids must be 'imagenet' or 'label', got '{self.class_ids}'")
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise FileNotFoundError(f"pool.checkpoint not found: {self.checkpoint}")
        if self.model is not None and is_local_path(self.model) and not Path(self.model).expanduser().exists():
            raise FileNotFoundError(f"pool.model folder not found: {self.model} (a Minimax DiT is made by "
                                    "python train.py generator=minimax dataset=<name>)")
        # all three may stay None when the pipeline trains the weights first (pool.train); _load checks again

    # ------------------------------------------------------------------ weights
    KIND: ClassVar[str] = "dit"
    WEIGHT_FIELDS: ClassVar[tuple] = ("model", "revision", "vae", "vae_revision", "checkpoint", "transformer_config",
                                      "vae_config", "init_seed")
    RUNTIME_FIELDS: ClassVar[tuple] = ("device", "dtype", "batch", "decode_batch", "compile")

    def weights_key(self) -> dict:
        weights = ({"checkpoint": weights_id(self.checkpoint)} if self.checkpoint else
                   {"transformer_config": self.transformer_config, "init_seed": self.init_seed}
                   if self.transformer_config is not None else {"model": weights_id(self.model, self.revision)})
        vae = ({"vae_config": self.vae_config, "init_seed": self.init_seed} if self.vae_config is not None
               else {"vae": weights_id(self.vae, self.vae_revision)} if self.vae
               else {"vae": weights_id(self.model, self.revision)})
        return {"dit_features": "original", **weights, **vae}

    def _load(self):
        if self._loaded is not None:
            return self._loaded
        from sas.generators.dit import load_transformer, load_vae

        dev, dt = self.device_dtype()
        if self.model is None and self.transformer_config is None and self.checkpoint is None:
            raise ValueError("pool needs weights: model (hub id / folder), checkpoint (.pt), transformer_config"
                             " or pool.train")
        set_tf32(self.tf32)
        transformer = load_transformer(self.model, self.checkpoint, self.transformer_config, self.init_seed,
                                       revision=self.revision)
        vae = load_vae(self.vae, self.vae_config, self.model, self.init_seed, self.vae_revision, self.revision)
        transformer = transformer.to(dev).eval()
        vae = vae.to(dev).eval()
        net = torch.compile(transformer) if self.compile else transformer
        self._loaded = (transformer, net, vae, dev, dt)
        return self._loaded

    def num_model_classes(self) -> int:
        return int(self._load()[0].config.num_embeds_ada_norm)

    def check(self, table: ClassTable) -> None:
        """Every class must map to an id the model has (before any sampling): sas.data.classes.model_class_ids."""
        from sas.data.classes import model_class_ids
        self._ids = model_class_ids(table, self.class_ids, self.num_model_classes())

    def _model_labels(self, labels: list[int]) -> list[int]:
        if getattr(self, "_ids", None) is None:
            raise RuntimeError("DiTSource.sample maps dataset labels to the model's class ids through the class "
                               "table: call check(table) first (generate_pool does)")
        return [self._ids[c] for c in labels]

    def batch_size(self) -> int:
        if self.batch != "auto":
            return int(self.batch)
        transformer, _, _, dev, dt = self._load()
        if dev.type != "cuda":
            return 8
        free, _ = torch.cuda.mem_get_info(dev)
        free += torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)   # cached by PyTorch, reusable
        free -= self.decode_batch * (97 if dt == torch.bfloat16 else 194) * 2 ** 20     # the VAE decode's chunk
        per_image = (40 if dt == torch.bfloat16 else 80) * 2 ** 20 * max(1, transformer.config.num_layers // 14)
        # the DiT's doubled batch (cond + uncond), no grad; float32 activations take twice bf16's
        return int(max(8, min(500, max(0, free) * 0.6 // per_image)))

    # ------------------------------------------------------------------ sampling
    def sample(self, labels: list[int], generators: list[torch.Generator]) -> torch.Tensor:
        from sas.generators.dit import sample_dit
        transformer, net, vae, _, dt = self._load()
        return sample_dit(transformer, vae, self._model_labels(labels), generators,
                          guidance_scale=self.guidance_scale, guidance=self.guidance,
                          num_inference_steps=self.num_inference_steps, latent_scale=self.latent_scale, dtype=dt,
                          decode_batch=self.decode_batch, net=net)
