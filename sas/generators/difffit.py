"""DiffFit surgery on a diffusers DiT (Minimax's fine-tuning), and original checkpoints converted to diffusers.

    add_difffit(transformer, blocks=14)        # per-block scales, tied embedders, DiffFit trainables
    plain = fold_difffit(transformer)          # scales folded into the weights: a plain DiT again
    model = load_original_checkpoint("0004000.pt")   # facebookresearch/DiT or Minimax layout

DiffFit as in Minimax: in the first `blocks` blocks, learnable scales (init 1)
on the q/k/v outputs (Minimax's attn.gamma1), on the attention projection output
(attn.gamma2) and on the attention and MLP residual branches (block gamma1 /
gamma2). Only biases, the class-embedding table (with its null row) and the
scales train. The original DiT shares one timestep and one label embedder
across blocks while diffusers gives each block a copy: the copies are tied
here, so training updates one table, as in the original.

Every scale multiplies a linear layer's output channel-wise, so it folds
exactly into that layer's weight rows and bias: conversion and saving produce
plain DiT weights that diffusers' DiTTransformer2DModel loads as is.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["ScaledLinear", "add_difffit", "difffit_trainable", "fold_difffit", "convert_original_state_dict",
           "load_original_checkpoint", "DIT_HEADS"]

DIT_HEADS = {384: 6, 768: 12, 1024: 16, 1152: 16}  # DiT-S / B / L / XL hidden size -> attention heads


class ScaledLinear(nn.Module):
    """linear(x) * prod(gammas): DiffFit's learnable channel scales on a linear layer's output."""

    def __init__(self, linear: nn.Linear, names: tuple[str, ...]):
        super().__init__()
        self.linear = linear
        self.gammas = nn.ParameterDict({n: nn.Parameter(torch.ones(linear.out_features)) for n in names})

    def scale(self) -> torch.Tensor:
        out = torch.ones_like(self.linear.bias if self.linear.bias is not None else self.linear.weight[:, 0])
        for g in self.gammas.values():
            out = out * g
        return out

    def forward(self, x):
        return self.linear(x) * self.scale().to(x.dtype)


def _scaled(w: torch.Tensor, b: torch.Tensor | None, g: torch.Tensor):
    """Fold a channel scale g (out,) into weight rows (out, in) and bias (out,)."""
    return w * g[:, None].to(w.dtype), None if b is None else b * g.to(b.dtype)


def add_difffit(transformer: nn.Module, blocks: int = 14) -> nn.Module:
    """In place: tie the per-block embedders and add DiffFit scales to the first `blocks` blocks."""
    first = transformer.transformer_blocks[0].norm1.emb
    ref = first.state_dict()
    if any(any(not torch.equal(v, ref[k]) for k, v in b.norm1.emb.state_dict().items())
           for b in transformer.transformer_blocks[1:]):
        log.warning("the per-block embedders of this DiT differ; tying them to block 0's changes the model")
    for block in transformer.transformer_blocks:
        block.norm1.emb = first                                  # one shared timestep + label embedder
    for block in list(transformer.transformer_blocks)[:blocks]:
        attn = block.attn1
        attn.to_q = ScaledLinear(attn.to_q, ("gamma_qkv",))
        attn.to_k = ScaledLinear(attn.to_k, ("gamma_qkv",))
        attn.to_v = ScaledLinear(attn.to_v, ("gamma_qkv",))
        attn.to_out[0] = ScaledLinear(attn.to_out[0], ("gamma_proj", "gamma_attn_branch"))
        block.ff.net[2] = ScaledLinear(block.ff.net[2], ("gamma_mlp_branch",))
    difffit_trainable(transformer)
    return transformer


def difffit_trainable(model: nn.Module) -> list[str]:
    """requires_grad only for biases, the class-embedding table and DiffFit scales; returns their names."""
    names = []
    for name, p in model.named_parameters():
        p.requires_grad = "bias" in name or "gamma" in name or "class_embedder" in name
        if p.requires_grad:
            names.append(name)
    return names


def fold_difffit(transformer: nn.Module) -> nn.Module:
    """A plain DiT (copy) with every DiffFit scale folded into its layer and the embedders untied."""
    model = copy.deepcopy(transformer)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, ScaledLinear):
                lin = child.linear
                with torch.no_grad():
                    w, b = _scaled(lin.weight, lin.bias, child.scale())
                    lin.weight.copy_(w)
                    if b is not None:
                        lin.bias.copy_(b)
                setattr(module, child_name, lin)
    for block in model.transformer_blocks:
        block.norm1.emb = copy.deepcopy(block.norm1.emb)
    for p in model.parameters():
        p.requires_grad = True
    return model


def convert_original_state_dict(sd: dict, num_heads: int | None = None) -> tuple[dict, dict]:
    """facebookresearch/DiT (or Minimax, DiffFit scales folded) state dict -> (diffusers state dict, config)."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    required = ("x_embedder.proj.weight", "y_embedder.embedding_table.weight", "final_layer.linear.weight")
    missing = [k for k in required if k not in sd]
    if missing:
        raise ValueError(f"not an original DiT state dict: missing {missing}")
    w = sd["x_embedder.proj.weight"]                          # (hidden, in, p, p)
    hidden, cin, patch = w.shape[0], w.shape[1], w.shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    heads = num_heads or DIT_HEADS.get(hidden)
    if heads is None:
        raise ValueError(f"cannot tell the attention heads of a DiT with hidden size {hidden}; give num_attention_heads")
    grid = int(round((sd["pos_embed"].shape[1]) ** 0.5)) if "pos_embed" in sd else None
    out_channels = sd["final_layer.linear.weight"].shape[0] // (patch * patch)
    config = dict(num_attention_heads=heads, attention_head_dim=hidden // heads, in_channels=cin,
                  out_channels=out_channels, num_layers=depth, patch_size=patch,
                  sample_size=grid * patch if grid else 32,
                  num_embeds_ada_norm=sd["y_embedder.embedding_table.weight"].shape[0] - 1)
    ones = torch.ones(hidden, dtype=w.dtype)
    out = {"pos_embed.proj.weight": sd["x_embedder.proj.weight"], "pos_embed.proj.bias": sd["x_embedder.proj.bias"],
           "proj_out_1.weight": sd["final_layer.adaLN_modulation.1.weight"],
           "proj_out_1.bias": sd["final_layer.adaLN_modulation.1.bias"],
           "proj_out_2.weight": sd["final_layer.linear.weight"], "proj_out_2.bias": sd["final_layer.linear.bias"]}
    for i in range(depth):
        o, n = f"blocks.{i}.", f"transformer_blocks.{i}."
        out[n + "norm1.emb.timestep_embedder.linear_1.weight"] = sd["t_embedder.mlp.0.weight"]
        out[n + "norm1.emb.timestep_embedder.linear_1.bias"] = sd["t_embedder.mlp.0.bias"]
        out[n + "norm1.emb.timestep_embedder.linear_2.weight"] = sd["t_embedder.mlp.2.weight"]
        out[n + "norm1.emb.timestep_embedder.linear_2.bias"] = sd["t_embedder.mlp.2.bias"]
        out[n + "norm1.emb.class_embedder.embedding_table.weight"] = sd["y_embedder.embedding_table.weight"]
        out[n + "norm1.linear.weight"] = sd[o + "adaLN_modulation.1.weight"]
        out[n + "norm1.linear.bias"] = sd[o + "adaLN_modulation.1.bias"]
        g_qkv = sd.get(o + "attn.gamma1", torch.ones(3 * hidden, dtype=w.dtype))
        for j, (name, wq, bq) in enumerate(zip(("to_q", "to_k", "to_v"), sd[o + "attn.qkv.weight"].chunk(3),
                                               sd[o + "attn.qkv.bias"].chunk(3))):
            out[n + f"attn1.{name}.weight"], out[n + f"attn1.{name}.bias"] = \
                _scaled(wq, bq, g_qkv[j * hidden:(j + 1) * hidden])
        g_out = sd.get(o + "attn.gamma2", ones) * sd.get(o + "gamma1", ones)
        out[n + "attn1.to_out.0.weight"], out[n + "attn1.to_out.0.bias"] = \
            _scaled(sd[o + "attn.proj.weight"], sd[o + "attn.proj.bias"], g_out)
        out[n + "ff.net.0.proj.weight"], out[n + "ff.net.0.proj.bias"] = sd[o + "mlp.fc1.weight"], sd[o + "mlp.fc1.bias"]
        out[n + "ff.net.2.weight"], out[n + "ff.net.2.bias"] = \
            _scaled(sd[o + "mlp.fc2.weight"], sd[o + "mlp.fc2.bias"], sd.get(o + "gamma2", ones))
    return out, config


def _safe_load(path):
    """torch.load that never unpickles arbitrary objects: tensors and containers, plus the argparse
    Namespace that facebookresearch/DiT and Minimax checkpoints store under "args"."""
    import argparse
    import pickle

    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as err:
        raise ValueError(f"{path}: refusing to load this checkpoint: it holds objects other than tensors and the "
                         f"argparse Namespace of DiT / Minimax checkpoints, and unpickling them could run code "
                         f"({str(err).splitlines()[0][:200]})") from None


def load_original_checkpoint(path, transformer_config: dict | None = None):
    """A DiTTransformer2DModel holding an original-layout checkpoint file's weights (EMA when present).
    Conversion only: sas.generators.dit.load_transformer(checkpoint=...) is the loader to call, it also sets
    the original's timestep features and eps (match_original_dit)."""
    from pathlib import Path

    from diffusers import DiTTransformer2DModel

    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = _safe_load(path)
    sd = ckpt.get("ema") or ckpt.get("model") or ckpt if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict (or a dict with 'ema' / 'model'), got {type(ckpt).__name__}")
    heads = (transformer_config or {}).get("num_attention_heads")
    converted, config = convert_original_state_dict(sd, heads)
    config.update({k: v for k, v in (transformer_config or {}).items() if k in ("sample_size", "norm_num_groups")})
    model = DiTTransformer2DModel(**config)
    model.load_state_dict(converted, strict=True)
    return model
