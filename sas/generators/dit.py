"""The one DiT + VAE loader, used by DiT / Minimax pools and by Minimax fine-tuning.

    transformer = load_transformer(model="facebook/DiT-XL-2-256")            # hub id (sas.hub) or diffusers folder
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

__all__ = ["match_original_dit", "original_timestep_features", "load_transformer", "load_vae", "clean_config",
           "ORIGINAL_FREQ_SHIFT", "ORIGINAL_NORM_EPS"]

ORIGINAL_FREQ_SHIFT = 0.0     # facebookresearch/DiT TimestepEmbedder: exp(-ln(max_period) * i / half)
ORIGINAL_NORM_EPS = 1e-6      # facebookresearch/DiT DiTBlock norm1 / norm2


def original_timestep_features(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """The original DiT's frequency features of timesteps t (N,) -> (N, dim): [cos(t w_i), sin(t w_i)],
    w_i = exp(-ln(max_period) * i / (dim / 2)). Written from the equation, for checks."""
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


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
