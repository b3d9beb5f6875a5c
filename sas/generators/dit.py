"""The one DiT + VAE loader and the DiT sampling loop, used by DiT / Minimax pools and Minimax fine-tuning.

    transformer = load_transformer(model="facebook/DiT-XL-2-256")            # hub id (sas.hub) or diffusers folder
    images = sample_dit(transformer, vae, model_labels, generators, num_inference_steps=50)   # (B, 3, H, W) uint8
    transformer = load_transformer(checkpoint="DiT-XL-2-256x256.pt")         # original DiT / Minimax .pt
    transformer = load_transformer(transformer_config={...}, init_seed=0)    # random init (tests)
    vae = load_vae(vae="stabilityai/sd-vae-ft-mse")

Every path ends in `match_original_dit`, which makes diffusers' DiTTransformer2DModel
compute what facebookresearch/DiT (and Minimax, built on it) computes:

  * timestep features: the original's sinusoidal embedding uses the frequencies
    exp(-ln(10^4) * i / 128), i = 0..127 (cos half first, then sin); diffusers
    builds DiT with downscale_freq_shift=1, i.e. / 127. The shift is not part of
    the saved config, so it is set again after every load.
  * the LayerNorm before the MLP has eps 1e-6 in the original (diffusers: the
    config's norm_eps, 1e-5).

Without these a converted original checkpoint's output is off by about 0.4
(the 256-d timestep features at t = 999 have cosine 0.49 with the original's).

The released facebook/DiT-XL-2-256 config is a 2022 `Transformer2DModel` config with keys
DiTTransformer2DModel does not take (cross_attention_dim, num_vector_embeds, ...): the loaded config keeps
only the keys the class takes (`clean_config`), so a folder saved from it (train.py's Minimax export)
loads without "config attributes ... are not expected" warnings.
"""

from __future__ import annotations


import torch
from torch import nn

from sas.hub import load_pretrained

__all__ = ["match_original_dit", "load_transformer", "load_vae", "clean_config", "sample_dit", "respaced_timesteps",
           "dit_scheduler", "guided_output",
           "ORIGINAL_FREQ_SHIFT", "ORIGINAL_NORM_EPS"]

ORIGINAL_FREQ_SHIFT = 0.0     # facebookresearch/DiT TimestepEmbedder: exp(-ln(max_period) * i / half)
ORIGINAL_NORM_EPS = 1e-6      # facebookresearch/DiT DiTBlock norm1 / norm2


def match_original_dit(transformer: nn.Module) -> nn.Module:
    """In place, idempotent: timestep frequency shift 0 and MLP LayerNorm eps 1e-6 in every block."""
    for block in transformer.transformer_blocks:
        block.norm1.emb.time_proj.downscale_freq_shift = ORIGINAL_FREQ_SHIFT
        if isinstance(getattr(block, "norm3", None), nn.LayerNorm):
            block.norm3.eps = ORIGINAL_NORM_EPS
    return transformer


def clean_config(model: nn.Module) -> nn.Module:
    """In place: drop config keys the model's class does not take (legacy keys of the released configs)."""
    import inspect

    from diffusers.configuration_utils import FrozenDict

    takes = set(inspect.signature(type(model).__init__).parameters) - {"self"}
    model._internal_dict = FrozenDict({k: v for k, v in model.config.items()
                                       if k in takes or (k.startswith("_") and k != "_use_default_values")})
    return model


def load_transformer(model: str | None = None, checkpoint: str | None = None, transformer_config: dict | None = None,
                     init_seed: int = 0, subfolder: str | None = "transformer", revision: str | None = None
                     ) -> nn.Module:
    """A DiTTransformer2DModel matching the original DiT: from an original-layout checkpoint (.pt,
    converted), a random-init config, or a diffusers hub id / folder (its `subfolder`, or the folder
    itself when it has no such subfolder)."""
    from diffusers import DiTTransformer2DModel

    if checkpoint is not None:
        from sas.generators.difffit import load_original_checkpoint
        transformer = load_original_checkpoint(checkpoint, transformer_config)
    elif transformer_config is not None:
        torch.manual_seed(init_seed)
        transformer = DiTTransformer2DModel(**transformer_config)
    elif model is not None:
        transformer = clean_config(load_pretrained(DiTTransformer2DModel, model, revision, subfolder, True))
    else:
        raise ValueError("a DiT needs weights: model (hub id / folder), checkpoint (.pt) or transformer_config")
    return match_original_dit(transformer)


def load_vae(vae: str | None = None, vae_config: dict | None = None, model: str | None = None, init_seed: int = 0,
             revision: str | None = None, model_revision: str | None = None):
    """The VAE: random init from vae_config, a hub id / folder (at `revision`), or the `vae/` of a diffusers
    DiT pipeline (hub id / folder, at `model_revision`)."""
    from diffusers import AutoencoderKL

    if vae_config is not None:
        torch.manual_seed(init_seed)
        return AutoencoderKL(**vae_config)
    if vae is not None:
        return load_pretrained(AutoencoderKL, vae, revision)
    if model is not None:
        return load_pretrained(AutoencoderKL, model, model_revision, subfolder="vae")
    raise ValueError("a VAE needs vae (hub id / folder), vae_config, or a model folder with vae/")


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
    """The DiT sampling noise schedule (DIT_SCHEDULE: linear betas 1e-4..0.02 over 1000 steps) as diffusers'
    DDPMScheduler, with the learned variance."""
    from diffusers import DDPMScheduler

    from sas.generators.diffusion import DIT_SCHEDULE
    return DDPMScheduler(**DIT_SCHEDULE, beta_schedule="linear",
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


@torch.no_grad()
def sample_dit(transformer, vae, model_labels: list[int], generators: list[torch.Generator], *,
               guidance_scale: float = 4.0, guidance: str = "original", num_inference_steps: int = 50,
               latent_scale: float = 0.18215, dtype: torch.dtype = torch.float32, decode_batch: int = 16,
               net=None) -> torch.Tensor:
    """The original DiT's sampling loop -> (B, 3, H, W) uint8: DDPM ancestral steps respaced from 1,000 with the
    learned variance, classifier-free guidance (`guidance`: original, the first 3 latent channels, or all) against
    the "no class" row (the model's class count), latents / latent_scale decoded by the VAE in chunks of
    decode_batch. One generator per image draws its noise. dtype other than float32 runs only the networks under
    autocast: the latent state, guidance and scheduler step stay float32. net: a compiled transformer to call."""
    cfg = transformer.config
    dev = next(transformer.parameters()).device
    net = net or transformer
    B, C, S = len(model_labels), cfg.in_channels, cfg.sample_size
    low = torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32)   # only the networks
    x = torch.stack([torch.randn(C, S, S, generator=g) for g in generators]).to(dev)   # (B, C, S, S) float32
    y = torch.tensor(model_labels, device=dev)
    null = torch.full_like(y, cfg.num_embeds_ada_norm)              # the "no class" row
    y2 = torch.cat([y, null])                                       # (2B,)
    guided_channels = 3 if guidance == "original" else C
    sched = dit_scheduler(learned_variance=cfg.out_channels == 2 * C)
    sched.set_timesteps(timesteps=respaced_timesteps(sched.config.num_train_timesteps, num_inference_steps))
    for t in sched.timesteps:
        tt = torch.full((2 * B,), int(t), device=dev)
        with low:
            out = net(torch.cat([x, x]), timestep=tt, class_labels=y2).sample     # (2B, C', S, S)
        out = out.float()
        out = guided_output(out, B, guidance_scale, guided_channels) if guidance_scale != 1 else out[:B]
        x = sched.step(out, t, x, generator=generators).prev_sample             # float32 state
    with low:                                                                   # decoded in chunks
        images = torch.cat([vae.decode(z / latent_scale).sample
                            for z in x.split(max(1, decode_batch))])            # (B, 3, H, W) in [-1, 1]
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
