"""The extra inputs a sampler declares in `needs` (sas.inputs.EXTRA_INPUTS), computed for a pool.

    memo = {}
    extras = extra_inputs(sampler, encoded, context, encoder, model, protocol, progress, memo)
    picked = encoded.select(name, sampler, extras)

real_centroids: the real train split's mean embedding per class under the run's encoder (the run's own
    prototypes when they are visual, else computed once per run).
difficulty, real_difficulty, real_labels: 1 - the probability a classifier gives an image's class
    (DiffGuideSamp's score), for the pool images and the real train images. The classifier is
    `sampler.classifier` (a model config; None: the run's evaluation model) trained on the real train split
    under the run's hard-label protocol (for sampler.classifier_epochs when set) (sas.evaluation.protocol.train_on_real: cached; the same run as
    DD-Ranking's acc(real, hard) when they coincide). The pool's probabilities are cached like embeddings.
"""

from __future__ import annotations

import json

import torch

from sas.encoders.base import Encoder

__all__ = ["extra_inputs", "ClassifierProbabilities"]


class ClassifierProbabilities(Encoder):
    """A trained classifier as an 'encoder': (N, C) softmax probabilities of image files or uint8 tensors,
    preprocessed as its training evaluated (resize to image_size, the protocol's mean / std)."""

    prototypes = "none"

    def __init__(self, net, image_size: int, mean, std, key: dict, batch: int = 256):
        self.net, self.image_size, self.mean, self.std, self.key, self.batch = net, image_size, mean, std, key, batch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.net = self.net.to(self.device).eval()

    def key_config(self) -> dict:
        return {"kind": "classifier", **self.key}

    @torch.no_grad()
    def encode_tensors(self, images: torch.Tensor) -> torch.Tensor:
        from sas.data.augment import square_input
        out = []
        for i in range(0, len(images), self.batch):
            x = square_input(images[i:i + self.batch].to(self.device), self.image_size, self.mean, self.std)
            out.append(torch.softmax(self.net(x).float(), 1).cpu())                     # (B, C)
        return torch.cat(out)

    def encode_files(self, files: list[str], progress: bool = False) -> torch.Tensor:
        from sas.data.images import decode_all
        return self.encode_tensors(decode_all(files, self.image_size))


def _difficulty_scorer(classifier: dict, protocol, context, epochs: int | None) -> ClassifierProbabilities:
    from sas.evaluation.protocol import real_run_settings, train_on_real
    hard = protocol.hard_protocol()
    if epochs is not None:
        hard = hard.replaced(epochs=epochs)
    net, _ = train_on_real(classifier, hard, context)
    return ClassifierProbabilities(net, hard.image_size, hard.mean, hard.std, real_run_settings(classifier, hard,
                                                                                                 context))


def extra_inputs(sampler, encoded, context, encoder, model: dict, protocol, progress: bool, memo: dict) -> dict:
    """The inputs `sampler.needs` for the pool of `encoded` (an EncodedPool); memo keeps what several
    samplers of one run share (real centroids, a trained classifier and its real-data scores)."""
    from sas.data.stream import iter_batches
    from sas.encoders.cache import encode_pool, pool_key, visual_prototypes

    needs, out = set(sampler.needs), {}
    if "real_centroids" in needs:
        if "real_centroids" not in memo:
            visual = getattr(encoder, "prototypes", "text") == "visual" and encoded.prototypes is not None
            memo["real_centroids"] = encoded.prototypes if visual else \
                visual_prototypes(encoder, context.real_train(), len(encoded.pool.classes))       # (C, d)
        out["real_centroids"] = memo["real_centroids"]
    if needs & {"difficulty", "real_difficulty", "real_labels"}:
        classifier, epochs = getattr(sampler, "classifier", None) or model, getattr(sampler, "classifier_epochs", None)
        tag = json.dumps([classifier, epochs], sort_keys=True, default=str)
        if tag not in memo:
            scorer = _difficulty_scorer(classifier, protocol, context, epochs)
            real = context.real_train()
            own = []
            for images, labels in iter_batches(real, 512):
                probs = scorer.encode_tensors(images)                                    # (B, C)
                own.append(probs[torch.arange(len(labels)), labels.long()])
            memo[tag] = (scorer, (1 - torch.cat(own)).clamp(0, 1), real.labels.clone())
        scorer, real_d, real_y = memo[tag]
        files, labels = list(encoded.pool.files), torch.tensor(encoded.pool.labels)
        probs = encode_pool(scorer, files, pool_key(files, scorer), context.cache_dir, progress=progress)   # (N, C)
        out.update(difficulty=(1 - probs[torch.arange(len(files)), labels]).clamp(0, 1),
                   real_difficulty=real_d, real_labels=real_y)
    return out
