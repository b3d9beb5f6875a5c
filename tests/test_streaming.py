"""Real splits larger than dataset.resident_max_gb are streamed from their files and give the numbers the
resident path gives (real digits written as an ImageFolder)."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from sas.data.real import RealData, load_digits_split
from sas.data.stream import StreamedSet, resident_gb

from test_scale import tiny_clip


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits_folder")
    names = [f"digit {i}" for i in range(10)]
    for split, per_class in (("train", 12), ("val", 6)):
        ds = load_digits_split(split, 16, per_class=per_class)
        counts = [0] * 10
        for img, y in zip(ds.images, ds.labels.tolist()):
            d = root / split / names[y]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(d / f"{counts[y]:03d}.png")
            counts[y] += 1
    return root


def real(root, **kw) -> RealData:
    return RealData(name="digits_folder", root=str(root), layout="folder", image_size=16,
                    classes=[f"digit {i}" for i in range(10)], **kw)


def test_split_streams_only_above_the_budget(digits_folder):
    resident = real(digits_folder).split("val")
    streamed = real(digits_folder, resident_max_gb=0.0, workers=0).split("val", per_class=4)
    assert not getattr(resident, "streamed", False) and len(resident) == 60
    assert isinstance(streamed, StreamedSet) and len(streamed) == 40 and streamed.per_class() == [4] * 10
    images, labels = next(iter(streamed.batches(64)))
    torch.testing.assert_close(images, real(digits_folder).split("val", per_class=4).images, rtol=0, atol=0)
    assert resident_gb(1_281_167, 224) == pytest.approx(1_281_167 * 150_528 / 2 ** 30)   # 179.6 GiB: ImageNet-1K train


def test_prototypes_evaluation_and_latents_match_the_resident_path(digits_folder):
    from sas.encoders.cache import visual_prototypes
    from sas.evaluation.protocol import Protocol, evaluate
    from sas.generators.latents import encode_moments, encode_split
    from sas.generators.dit import load_vae

    resident, streamed = real(digits_folder), real(digits_folder, resident_max_gb=0.0, workers=1)
    enc = tiny_clip()
    torch.testing.assert_close(visual_prototypes(enc, streamed.split("train"), 10, batch_size=7),
                               visual_prototypes(enc, resident.split("train"), 10), rtol=1e-5, atol=1e-6)
    distilled = load_digits_split("train", 16, per_class=2)
    protocol = Protocol(epochs=2, evaluations=1, repeats=1, image_size=16, augment="none", progress=False,
                        batch_size=10, eval_batch_size=16, accelerator="cpu")
    model = {"_target_": "sas.models.convnet.ConvNet", "depth": 2, "width": 8}
    a = evaluate(distilled, resident.split("val"), model, protocol, ipc=2)
    b = evaluate(distilled, streamed.split("val"), model, protocol, ipc=2)
    assert a.best == pytest.approx(b.best) and b.val_images == 60
    from omegaconf import OmegaConf
    vae = load_vae(vae_config=OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf/arch/tiny_vae.yaml")))
    blob = encode_split(streamed.split("train"), vae.eval(), digits_folder / "latents", progress=False)
    torch.testing.assert_close(blob["moments"], encode_moments(resident.split("train"), vae.eval()))
    assert blob["labels"].tolist() == resident.split("train").labels.tolist()


@pytest.mark.slow
def test_ddp_evaluation_sums_top1_over_ranks_on_a_streamed_val_split(digits_folder):
    """2 gloo processes (Lightning ddp_spawn), each a stripe of the streamed val split: the top-1 they report
    together is the top-1 of the trained weights on the whole split, computed here in one process."""
    from sas.data.augment import normalize, to_unit_float
    from sas.evaluation.protocol import Protocol, fit

    val = real(digits_folder, resident_max_gb=0.0, workers=0).split("val")
    distilled = load_digits_split("train", 16, per_class=5)
    protocol = Protocol(epochs=4, evaluations=2, repeats=1, image_size=16, augment="none", progress=False,
                        accelerator="cpu", batch_size=10, eval_batch_size=15, devices=2, strategy="ddp_spawn")
    net, module = fit(distilled, val, {"_target_": "sas.models.convnet.ConvNet", "depth": 2, "width": 8},
                      protocol, 4, seed=0)                      # rank 0's weights come back to this process
    assert [e for e, _ in module.curve] == [2, 4]
    images = torch.cat([x for x, _ in val.batches(64)])
    with torch.no_grad():
        pred = net.eval()(normalize(to_unit_float(images), protocol.mean, protocol.std)).argmax(1)
    assert module.curve[-1][1] == pytest.approx((pred == val.labels).float().mean().item())
    assert module.curve[-1][1] > 0.2                              # learnt something: not a constant guess


def test_domain_encoder_trains_on_a_streamed_split(digits_folder, tmp_path):
    from sas.encoders.domain import DomainEncoder
    from sas.evaluation.protocol import EvalContext

    data = real(digits_folder, resident_max_gb=0.0, workers=0)
    split, reads = data.split("train"), []
    context = EvalContext(lambda: reads.append(1) or split, lambda: data.split("val"), str(tmp_path), {"name": "d"})
    enc = DomainEncoder(model={"_target_": "sas.models.convnet.ConvNet", "depth": 2, "width": 8}, image_size=16,
                        epochs=2, batch_size=32).fit(context)
    images = torch.cat([x for x, _ in split.batches(64)])
    feats = enc.encode_tensors(images)                         # (120, 8 x 4 x 4): the flattened last feature map
    again = DomainEncoder(model=enc.model, image_size=16, epochs=2, batch_size=32).fit(context)
    assert feats.shape == (120, 128) and torch.isfinite(feats).all()
    torch.testing.assert_close(again.encode_tensors(images), feats)              # the cached weights, reused
    assert len(list((tmp_path / "real_runs").glob("*.pt"))) == 1 and len(reads) == 1    # trained once
