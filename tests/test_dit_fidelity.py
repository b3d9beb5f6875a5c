"""Every DiT load path computes what facebookresearch/DiT (and Minimax) computes.

The reference below is written from the original DiT's equations (adaLN-Zero blocks,
sinusoidal timestep features with frequencies exp(-ln(1e4) i / half), LayerNorms of
eps 1e-6, 2-D sin-cos position embeddings, tanh-GELU MLP) plus Minimax's DiffFit
scales, and runs directly on an original-layout state dict.
"""

import argparse
import math

import pytest
import torch
import torch.nn.functional as F
from diffusers import DiTTransformer2DModel

from sas.generators.difffit import load_original_checkpoint
from sas.generators.dit import load_transformer, match_original_dit
from sas.generators.minimax import MinimaxModule

from test_minimax import TINY, original_state_dict

HEADS, HIDDEN, PATCH, GRID, CIN = 2, 16, 2, 4, 4


def freq_features(t, dim=256):
    """Original DiT TimestepEmbedder.timestep_embedding: [cos(t w), sin(t w)], w_i = 1e4^(-i / half)."""
    half = dim // 2
    w = torch.tensor([math.exp(-math.log(10000.0) * i / half) for i in range(half)])
    args = t.double()[:, None] * w.double()[None]
    return torch.cat([args.cos(), args.sin()], 1).float()


def sincos_1d(dim, pos):
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    out = pos.double().reshape(-1)[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], 1)


def pos_embed_2d(dim, grid):
    """Original DiT get_2d_sincos_pos_embed: half the channels from the w coordinate, half from h."""
    gh, gw = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, gw), sincos_1d(dim // 2, gh)], 1).float()   # (grid*grid, dim)


def ln(x):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def reference_forward(sd, x, t, y):
    """facebookresearch/DiT forward (eval mode) on an original-layout state dict, with Minimax's gammas."""
    B = x.shape[0]
    h = F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=PATCH)   # (B, D, g, g)
    h = h.flatten(2).transpose(1, 2) + pos_embed_2d(HIDDEN, GRID)[None]                     # (B, T, D)
    te = F.linear(freq_features(t), sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])
    te = F.linear(F.silu(te), sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])
    c = te + sd["y_embedder.embedding_table.weight"][y]                                       # (B, D)
    ones = torch.ones(HIDDEN)
    for i in range(2):
        b = f"blocks.{i}."
        mod = F.linear(F.silu(c), sd[b + "adaLN_modulation.1.weight"], sd[b + "adaLN_modulation.1.bias"])
        sh1, sc1, g1, sh2, sc2, g2 = (m[:, None] for m in mod.chunk(6, 1))
        a = ln(h) * (1 + sc1) + sh1
        qkv = F.linear(a, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"]) * sd.get(b + "attn.gamma1",
                                                                                       torch.ones(3 * HIDDEN))
        q, k, v = (z.reshape(B, -1, HEADS, HIDDEN // HEADS).transpose(1, 2) for z in qkv.chunk(3, -1))
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(HIDDEN // HEADS)).softmax(-1) @ v
        att = F.linear(att.transpose(1, 2).reshape(B, -1, HIDDEN), sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = h + sd.get(b + "gamma1", ones) * g1 * (att * sd.get(b + "attn.gamma2", ones))
        m = ln(h) * (1 + sc2) + sh2
        m = F.gelu(F.linear(m, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"]), approximate="tanh")
        h = h + sd.get(b + "gamma2", ones) * g2 * F.linear(m, sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
    shift, scale = F.linear(F.silu(c), sd["final_layer.adaLN_modulation.1.weight"],
                            sd["final_layer.adaLN_modulation.1.bias"]).chunk(2, 1)
    out = F.linear(ln(h) * (1 + scale[:, None]) + shift[:, None], sd["final_layer.linear.weight"],
                   sd["final_layer.linear.bias"])                                              # (B, T, p*p*C')
    cout = out.shape[-1] // PATCH ** 2
    out = out.reshape(B, GRID, GRID, PATCH, PATCH, cout)
    return torch.einsum("nhwpqc->nchpwq", out).reshape(B, cout, GRID * PATCH, GRID * PATCH)


def inputs():
    g = torch.Generator().manual_seed(3)
    return torch.randn(3, CIN, 8, 8, generator=g), torch.tensor([0, 421, 999]), torch.tensor([1, 4, 10])


def assert_original_timesteps(model):
    t = torch.tensor([0, 1, 17, 500, 999])
    for block in model.transformer_blocks:
        torch.testing.assert_close(block.norm1.emb.time_proj(t), freq_features(t), rtol=0, atol=2e-4)  # float32 args
        assert block.norm3.eps == 1e-6


def save_original(tmp_path, sd, **extra):
    path = tmp_path / "0012000.pt"
    torch.save({"model": sd, "ema": sd, **extra}, path)
    return path


@pytest.mark.parametrize("gammas", [False, True], ids=["dit", "minimax"])
def test_converted_checkpoint_reproduces_the_original_forward(tmp_path, gammas):
    sd = original_state_dict(seed=2, gammas=gammas)
    sd["pos_embed"] = pos_embed_2d(HIDDEN, GRID)[None]
    model = load_transformer(checkpoint=save_original(tmp_path, sd, args=argparse.Namespace(model="DiT-XL/2")),
                             transformer_config={"num_attention_heads": HEADS}).eval()
    x, t, y = inputs()
    with torch.no_grad():
        ours, ref = model(x, timestep=t, class_labels=y).sample, reference_forward(sd, x, t, y)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    # diffusers' own default (frequency shift 1, eps 1e-5) is a different function of the same weights
    model.transformer_blocks[0].norm1.emb.time_proj.downscale_freq_shift = 1
    with torch.no_grad():
        assert (model(x, timestep=t, class_labels=y).sample - ref).abs().max() > 1e-2


def test_every_load_path_has_the_original_timestep_features(tmp_path):
    config = {**TINY, "num_embeds_ada_norm": 10}
    assert_original_timesteps(load_transformer(transformer_config=config))                 # random init
    DiTTransformer2DModel(**config).save_pretrained(tmp_path / "pipe" / "transformer")      # a diffusers folder
    assert_original_timesteps(load_transformer(model=str(tmp_path / "pipe")))
    DiTTransformer2DModel(**config).save_pretrained(tmp_path / "trained")                  # a bare folder
    assert_original_timesteps(load_transformer(model=str(tmp_path / "trained"), subfolder=None))
    path = save_original(tmp_path, original_state_dict())
    assert_original_timesteps(load_transformer(checkpoint=str(path), transformer_config={"num_attention_heads": 2}))
    plain = DiTTransformer2DModel(**config)                                                # Minimax training
    assert_original_timesteps(MinimaxModule(plain, difffit_blocks=1).transformer)
    fresh = DiTTransformer2DModel(**config)
    assert fresh.transformer_blocks[0].norm1.emb.time_proj.downscale_freq_shift == 1       # what diffusers builds
    assert match_original_dit(fresh) is fresh


def test_dit_pool_source_loads_the_original_function(tmp_path):
    from diffusers import AutoencoderKL

    from sas.pools.dit import DiTSource
    vae_config = {"in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"] * 2,
                  "up_block_types": ["UpDecoderBlock2D"] * 2, "block_out_channels": [8, 8], "latent_channels": 4,
                  "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 16}
    config = {**TINY, "num_embeds_ada_norm": 10}
    for src in (DiTSource(model=None, vae=None, transformer_config=config, vae_config=vae_config),
                DiTSource(model=None, vae=None, checkpoint=str(save_original(tmp_path, original_state_dict())),
                          transformer_config={"num_attention_heads": 2}, vae_config=vae_config)):
        assert_original_timesteps(src._load()[0])
    DiTTransformer2DModel(**config).save_pretrained(tmp_path / "minimax" / "transformer")   # train.py's output
    AutoencoderKL(**vae_config).save_pretrained(tmp_path / "minimax" / "vae")
    assert_original_timesteps(DiTSource(model=str(tmp_path / "minimax"), vae=None)._load()[0])


class _Boom:
    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(_Boom.marker),))


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    _Boom.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    torch.save({"model": original_state_dict(), "payload": _Boom()}, path)
    with pytest.raises(ValueError, match="refusing to load this checkpoint"):
        load_original_checkpoint(path, {"num_attention_heads": 2})
    assert not (tmp_path / "pwned").exists()
    # a real Minimax checkpoint (tensors + the argparse Namespace of its args) still loads
    ok = save_original(tmp_path, original_state_dict(), args=argparse.Namespace(model="DiT-XL/2", epochs=8))
    assert load_original_checkpoint(ok, {"num_attention_heads": 2}) is not None
