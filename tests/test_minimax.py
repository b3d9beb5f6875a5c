"""DiffFit surgery, checkpoint conversion, the Minimax terms, and a Minimax fit under DDP (2 CPU processes)."""

import math
from argparse import Namespace

import pytest
import torch
from diffusers import DiTTransformer2DModel

from sas.generators.minimax import MinimaxMemory, MinimaxModule, cosine_matrix
from sas.generators.difffit import add_difffit, convert_original_state_dict, fold_difffit, load_original_checkpoint

TINY = dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
            sample_size=8, patch_size=2, num_embeds_ada_norm=10)


def tiny(seed=0):
    torch.manual_seed(seed)
    model = DiTTransformer2DModel(**TINY)
    with torch.no_grad():  # DiT zero-inits its modulation and output: randomise so outputs depend on everything
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        first = model.transformer_blocks[0].norm1.emb.state_dict()
        for block in model.transformer_blocks:  # as in real DiTs: every block holds the same embedder copy
            block.norm1.emb.load_state_dict(first)
    return model.eval()


def forward(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 8, 8, generator=g)
    with torch.no_grad():
        return model(x, timestep=torch.tensor([5, 500, 999]), class_labels=torch.tensor([0, 3, 10])).sample


def test_difffit_trains_exactly_the_named_groups():
    model = add_difffit(tiny(), blocks=1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert all("bias" in n or "gamma" in n or "class_embedder" in n for n in trainable)
    assert not any("bias" in n or "gamma" in n or "class_embedder" in n for n in frozen)
    assert "transformer_blocks.0.norm1.emb.class_embedder.embedding_table.weight" in trainable
    assert "transformer_blocks.0.attn1.to_q.linear.weight" in frozen and "pos_embed.proj.weight" in frozen
    gammas = sorted(n for n in trainable if "gamma" in n)
    assert len(gammas) == 6 and all(n.startswith("transformer_blocks.0.") for n in gammas)  # first block only
    b0, b1 = model.transformer_blocks
    assert b1.norm1.emb is b0.norm1.emb  # one shared timestep + label embedder, as in the original DiT


def test_scales_start_at_one_and_fold_exactly():
    base = tiny()
    reference = forward(base)
    model = add_difffit(tiny(), blocks=2)
    assert torch.allclose(forward(model), reference, atol=1e-6)  # scales init to 1: same function
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "gamma" in n:
                p.copy_(1 + 0.3 * torch.randn_like(p))
    scaled = forward(model)
    assert not torch.allclose(scaled, reference, atol=1e-3)
    plain = fold_difffit(model)
    assert not any("gamma" in n for n, _ in plain.named_parameters())
    assert torch.allclose(forward(plain), scaled, atol=1e-5)
    assert set(plain.state_dict()) == set(base.state_dict())  # loads into a plain diffusers DiT


def original_state_dict(seed=0, gammas=True):
    """A synthetic state dict in facebookresearch/DiT (+ Minimax DiffFit) layout for the tiny config."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: 0.2 * torch.randn(*s, generator=g)  # noqa: E731
    h = 16
    sd = {"x_embedder.proj.weight": r(h, 4, 2, 2), "x_embedder.proj.bias": r(h), "pos_embed": torch.zeros(1, 16, h),
          "t_embedder.mlp.0.weight": r(h, 256), "t_embedder.mlp.0.bias": r(h), "t_embedder.mlp.2.weight": r(h, h),
          "t_embedder.mlp.2.bias": r(h), "y_embedder.embedding_table.weight": r(11, h),
          "final_layer.linear.weight": r(32, h), "final_layer.linear.bias": r(32),
          "final_layer.adaLN_modulation.1.weight": r(2 * h, h), "final_layer.adaLN_modulation.1.bias": r(2 * h)}
    for i in range(2):
        b = f"blocks.{i}."
        sd.update({b + "attn.qkv.weight": r(3 * h, h), b + "attn.qkv.bias": r(3 * h), b + "attn.proj.weight": r(h, h),
                   b + "attn.proj.bias": r(h), b + "mlp.fc1.weight": r(4 * h, h), b + "mlp.fc1.bias": r(4 * h),
                   b + "mlp.fc2.weight": r(h, 4 * h), b + "mlp.fc2.bias": r(h),
                   b + "adaLN_modulation.1.weight": r(6 * h, h), b + "adaLN_modulation.1.bias": r(6 * h)})
    if gammas:  # Minimax: DiffFit scales in the first block
        sd.update({"blocks.0.attn.gamma1": 1 + r(3 * h), "blocks.0.attn.gamma2": 1 + r(h),
                   "blocks.0.gamma1": 1 + r(h), "blocks.0.gamma2": 1 + r(h)})
    return sd


def test_conversion_puts_every_tensor_in_its_place():
    sd = original_state_dict()
    out, config = convert_original_state_dict(sd, num_heads=2)
    assert config == {**{k: TINY[k] for k in TINY}, "sample_size": 8}
    model = DiTTransformer2DModel(**config)
    model.load_state_dict(out, strict=True)
    h = 16
    q = sd["blocks.0.attn.qkv.weight"][:h] * sd["blocks.0.attn.gamma1"][:h, None]
    assert torch.equal(out["transformer_blocks.0.attn1.to_q.weight"], q)
    assert torch.equal(out["transformer_blocks.1.attn1.to_v.weight"], sd["blocks.1.attn.qkv.weight"][2 * h:])
    proj = sd["blocks.0.attn.proj.weight"] * (sd["blocks.0.attn.gamma2"] * sd["blocks.0.gamma1"])[:, None]
    assert torch.allclose(out["transformer_blocks.0.attn1.to_out.0.weight"], proj)
    for i in range(2):  # the shared embedders land in every block
        assert torch.equal(out[f"transformer_blocks.{i}.norm1.emb.class_embedder.embedding_table.weight"],
                           sd["y_embedder.embedding_table.weight"])
    assert torch.equal(out["proj_out_2.weight"], sd["final_layer.linear.weight"])


def test_conversion_matches_difffit_semantics():
    # the same Minimax weights two ways: folded at conversion, or as live DiffFit scales: same function
    sd = original_state_dict()
    folded = DiTTransformer2DModel(**convert_original_state_dict(sd, 2)[1])
    folded.load_state_dict(convert_original_state_dict(sd, 2)[0])
    plain_sd = {k: v for k, v in sd.items() if "gamma" not in k}
    live = DiTTransformer2DModel(**convert_original_state_dict(plain_sd, 2)[1])
    live.load_state_dict(convert_original_state_dict(plain_sd, 2)[0])
    live = add_difffit(live, blocks=1)
    blk, h = live.transformer_blocks[0], 16
    with torch.no_grad():
        for j, lin in enumerate((blk.attn1.to_q, blk.attn1.to_k, blk.attn1.to_v)):
            lin.gammas["gamma_qkv"].copy_(sd["blocks.0.attn.gamma1"][j * h:(j + 1) * h])
        blk.attn1.to_out[0].gammas["gamma_proj"].copy_(sd["blocks.0.attn.gamma2"])
        blk.attn1.to_out[0].gammas["gamma_attn_branch"].copy_(sd["blocks.0.gamma1"])
        blk.ff.net[2].gammas["gamma_mlp_branch"].copy_(sd["blocks.0.gamma2"])
    assert torch.allclose(forward(live.eval()), forward(folded.eval()), atol=1e-5)


def test_load_checkpoint_file_prefers_ema(tmp_path):
    model_sd, ema_sd = original_state_dict(0), original_state_dict(1)
    torch.save({"model": model_sd, "ema": ema_sd, "args": Namespace(model="DiT-XL/2")}, tmp_path / "ckpt.pt")
    model = load_original_checkpoint(tmp_path / "ckpt.pt", {"num_attention_heads": 2})
    w = model.state_dict()["proj_out_2.weight"]
    assert torch.equal(w, ema_sd["final_layer.linear.weight"])
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nope.pt"):
        load_original_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="cannot tell the attention heads"):
        convert_original_state_dict(model_sd)


def test_minimax_terms_on_hand_made_latents():
    mem = MinimaxMemory(size=2)
    x = torch.tensor([[1.0, 0.0]], requires_grad=True)
    pos, neg = mem.terms(x, torch.tensor([[0.0, 1.0]]), torch.tensor([0]), 0.002, 0.008)
    assert pos.item() == 0 and neg.item() == 0  # empty memories: no terms yet, then they fill
    x0_hat = torch.tensor([[1.0, 1.0], [2.0, 0.0]], requires_grad=True)
    pos, neg = mem.terms(x0_hat, torch.tensor([[5.0, 5.0], [0.0, 3.0]]), torch.tensor([0, 1]), 0.002, 0.008)
    # class 0 only (class 1's memory is empty); two classes in the batch divide each term
    assert math.isclose(pos.item(), 0.002 * (1 - 1 / math.sqrt(2)) / 2, rel_tol=1e-6)  # real memory [0, 1]
    assert math.isclose(neg.item(), 0.008 * (1 / math.sqrt(2)) / 2, rel_tol=1e-6)      # predicted memory [1, 0]
    (pos + neg).backward()
    assert x0_hat.grad is not None and x0_hat.grad[0].abs().sum() > 0  # gradient flows through x0_hat
    assert len(mem.memories(0)[0]) == 2 and len(mem.memories(1)[1]) == 1
    mem.terms(torch.tensor([[3.0, 3.0]]), torch.tensor([[7.0, 7.0]]), torch.tensor([0]), 0.002, 0.008)
    assert sorted(m.tolist() for m in mem.memories(0)[0]) == [[5.0, 5.0], [7.0, 7.0]]  # FIFO of size 2
    assert torch.allclose(cosine_matrix(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0], [3.0, 0.0]])),
                          torch.tensor([[0.0, 1.0]]))


def test_minimax_fit_under_ddp_spawn():
    import pytorch_lightning as pl

    from sas.generators.latents import LatentDataModule

    g = torch.Generator().manual_seed(0)
    moments = torch.randn(16, 2, 2, 4, 8, 8, generator=g).half()
    labels = torch.arange(4).repeat(4)
    module = MinimaxModule(tiny(), lr=1e-2, memory_size=4, difffit_blocks=1)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_steps=3, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, LatentDataModule(moments, labels, labels + 2, batch_size=2))
    after = dict(module.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert any("gamma" in n for n in moved) and any("class_embedder" in n for n in moved)
    assert all("bias" in n or "gamma" in n or "class_embedder" in n for n in moved)  # frozen weights stayed
