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
from pathlib import Path

import torch

from sas.data.classes import ClassTable
from sas.devices import resolve_device_dtype, set_tf32
from sas.cache import is_local_path, weights_id
from sas.pools.base import GeneratedPool

__all__ = ["DiTSource", "respaced_timesteps", "dit_scheduler", "guided_output"]


def respaced_timesteps(num_train_timesteps: int = 1000, steps: int = 50) -> list[int]:
    """The timesteps kept when respacing (improved-DDPM `space_timesteps(T, [steps])`), descending."""
    if steps > num_train_timesteps or steps < 1:
        raise ValueError(f"num_inference_steps must be in [1, {num_train_timesteps}], got {steps}")
    stride = (num_train_timesteps - 1) / (steps - 1) if steps > 1 else 1
    taken, cur = [], 0.0
    for _ in range(steps):
        taken.append(round(cur))
        cur += stride
    return sorted(set(taken), reverse=True)


def dit_scheduler(learned_variance: bool = True):
    """The DiT training / sampling noise schedule: linear betas 1e-4..0.02 over 1000 steps."""
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                         variance_type="learned_range" if learned_variance else "fixed_small",
                         clip_sample=False, prediction_type="epsilon")


def guided_output(out: torch.Tensor, batch: int, scale: float, channels: int) -> torch.Tensor:
    """Classifier-free guidance on the doubled batch output (2B, C', H, W) -> (B, C', H, W).

    The first `channels` channels become uncond + scale * (cond - uncond); the
    rest (remaining eps channels, learned variance) are the conditional output's.
    """
    cond, uncond = out[:batch], out[batch:]
    guided = uncond[:, :channels] + scale * (cond[:, :channels] - uncond[:, :channels])
    return torch.cat([guided, cond[:, channels:]], dim=1)


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

    @classmethod
    def from_parts(cls, transformer, vae, num_inference_steps: int, guidance_scale: float = 4.0) -> "DiTSource":
        """A source over weights in memory (a DiT being fine-tuned: train.py's sample grids); labels are the
        model's own class ids."""
        src = cls(model=None, vae=None, class_ids="label", num_inference_steps=num_inference_steps,
                  guidance_scale=guidance_scale)
        p = next(transformer.parameters())
        src._loaded = (transformer, transformer, vae.to(p.device).eval(), p.device, torch.float32)
        return src

    # ------------------------------------------------------------------ weights
    def key_config(self) -> dict:
        dev, dt = resolve_device_dtype(self.device, self.dtype)
        weights = ({"checkpoint": weights_id(self.checkpoint)} if self.checkpoint else
                   {"transformer_config": self.transformer_config, "init_seed": self.init_seed}
                   if self.transformer_config is not None else {"model": weights_id(self.model, self.revision)})
        vae = ({"vae_config": self.vae_config, "init_seed": self.init_seed} if self.vae_config is not None
               else {"vae": weights_id(self.vae, self.vae_revision)} if self.vae
               else {"vae": weights_id(self.model, self.revision)})
        return {"kind": "dit", "dit_features": "original", **weights, **vae, "class_ids": self.class_ids,
                "guidance_scale": self.guidance_scale, "guidance": self.guidance,
                "num_inference_steps": self.num_inference_steps, "latent_scale": self.latent_scale,
                "device_type": dev.type, "dtype": str(dt)}

    def _load(self):
        if self._loaded is not None:
            return self._loaded
        from sas.generators.dit import load_transformer, load_vae

        dev, dt = resolve_device_dtype(self.device, self.dtype)
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

    def _model_labels(self, labels: list[int], table: ClassTable | None = None) -> list[int]:
        if self.class_ids == "label":
            return list(labels)
        table = table or getattr(self, "_table", None)
        if table is None:
            raise RuntimeError("DiTSource.sample maps dataset labels to ImageNet ids through the class table: call "
                               "check(table) first (generate_pool does), or use class_ids='label'")
        return [table.imagenet_ids[c] for c in labels]

    def check(self, table: ClassTable) -> None:
        """Every class must map to an id the model has (before any sampling)."""
        self._table = table
        if self.class_ids == "imagenet" and any(i is None for i in table.imagenet_ids):
            raise ValueError(f"dataset {table.name} has no ImageNet ids; use pool.class_ids=label with a DiT"
                             " trained on its classes")
        n = self.num_model_classes()
        for c, mid in enumerate(self._model_labels(list(range(len(table))), table)):
            if not 0 <= mid < n:
                raise ValueError(f"class {c} '{table.names[c]}' maps to id {mid}, outside the model's {n}"
                                 f" classes (0..{n - 1})")

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
    @torch.no_grad()
    def sample(self, labels: list[int], generators: list[torch.Generator]) -> torch.Tensor:
        transformer, net, vae, dev, dt = self._load()
        cfg = transformer.config
        B, C, S = len(labels), cfg.in_channels, cfg.sample_size
        low = torch.autocast(dev.type, dtype=dt, enabled=dt != torch.float32)      # only the networks
        x = torch.stack([torch.randn(C, S, S, generator=g) for g in generators]).to(dev)   # (B, C, S, S) float32
        y = torch.tensor(self._model_labels(labels), device=dev)
        null = torch.full_like(y, cfg.num_embeds_ada_norm)              # the "no class" row
        y2 = torch.cat([y, null])                                       # (2B,)
        guided_channels = 3 if self.guidance == "original" else C
        sched = dit_scheduler(learned_variance=cfg.out_channels == 2 * C)
        sched.set_timesteps(timesteps=respaced_timesteps(sched.config.num_train_timesteps, self.num_inference_steps))
        for t in sched.timesteps:
            tt = torch.full((2 * B,), int(t), device=dev)
            with low:
                out = net(torch.cat([x, x]), timestep=tt, class_labels=y2).sample     # (2B, C', S, S)
            out = out.float()
            out = guided_output(out, B, self.guidance_scale, guided_channels) if self.guidance_scale != 1 \
                else out[:B]
            x = sched.step(out, t, x, generator=generators).prev_sample           # float32 state
        with low:                                                                 # decoded in chunks
            images = torch.cat([vae.decode(z / self.latent_scale).sample
                                for z in x.split(max(1, self.decode_batch))])     # (B, 3, H, W) in [-1, 1]
        return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
