"""Model weights from the Hugging Face hub: one online/offline decision per process, hub ids resolved to commits.

    w = resolve("facebook/DiT-XL-2-256")                # Weights: load_from, revision, key
    Model.from_pretrained(w.load_from, subfolder="transformer", revision=w.revision)
    w.key     # {"hub": "facebook/DiT-XL-2-256", "commit": "<40 hex>"}: what cache keys hold (sas.cache.weights_id)
    model = load_pretrained(AutoencoderKL, "stabilityai/sd-vae-ft-mse")      # the same in one call
    path = hub_file("timm/vit_base_patch32_clip_224.openai", ["open_clip_model.safetensors"])

The hub counts as online when HF_HUB_OFFLINE is not set and its endpoint answers a TCP connect within
HUB_TIMEOUT seconds (the same quick check the W&B logger makes). Online, a hub id is resolved to the commit its
revision points at (one request) and the libraries download that exact commit. Offline (a compute node without
internet), nothing is requested at all: the snapshot the local cache (HF_HOME) holds for the revision is loaded
from its folder, so there are no per-file retries and no "could not reach the Hub" lines; a hub id the cache
lacks fails at once, naming it and the command that fetches it. Local folders and files are used as given.

Because the key holds the commit, a pool, embedding or generator drawn with other weights (a new revision, or
another HF_HOME holding another snapshot) is never mistaken for this one.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["Weights", "WeightsNotFound", "resolve", "load_pretrained", "hub_file", "hub_online", "HUB_TIMEOUT",
           "fetch_hint"]

HUB_TIMEOUT = 3.0          # seconds the hub endpoint has to answer a TCP connect before the job works offline


class WeightsNotFound(FileNotFoundError):
    """Weights that are neither on disk nor in the local hub cache, while the hub cannot be reached."""


@dataclass(frozen=True)
class Weights:
    name: str                          # as the config gives it: a hub id or a local path
    load_from: str                     # what to hand to from_pretrained: the hub id (online), its cached
                                       # snapshot folder (offline), or the local path
    revision: str | None = None        # the commit to load (online hub ids); None otherwise
    key: dict = field(default_factory=dict)   # what identifies the weights in cache keys


def fetch_hint(repo_id: str, revision: str | None = None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (f"fetch it on a machine with internet (`hf download {repo_id}{rev}`) into the same HF_HOME "
            f"(README: 'Weights on offline compute nodes')")


@functools.lru_cache(maxsize=1)
def hub_online(timeout: float = HUB_TIMEOUT) -> bool:
    """False when HF_HUB_OFFLINE is set or the hub endpoint does not answer; then this process works from the
    local cache only (and HF_HUB_OFFLINE is set for the libraries that look themselves)."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError as err:
        log.info("Hugging Face hub unreachable (%s): weights are read from the local cache only", err)
        _go_offline()
        return False


def _go_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:                                     # libraries imported before this point read the constant, not the env
        import huggingface_hub.constants as c
        c.HF_HUB_OFFLINE = True
    except ImportError:
        pass


def is_local(name: str) -> bool:
    """A filesystem path rather than a hub id ("facebook/DiT-XL-2-256")."""
    return name.startswith(("/", ".", "~")) or os.sep + os.sep in name or Path(name).expanduser().exists()


@functools.lru_cache(maxsize=None)
def resolve(name: str, revision: str | None = None) -> Weights:
    """A hub id (at `revision`, default main) or a local path -> Weights (see the module docstring)."""
    name = str(name)
    if is_local(name):                 # identified by content: sas.cache.weights_id
        path = Path(name).expanduser()
        if not path.exists():
            raise WeightsNotFound(f"weights not found: {path}")
        return Weights(name, str(path), None, {"path": str(path.resolve())})
    if hub_online():
        from huggingface_hub import HfApi
        from huggingface_hub.utils import RepositoryNotFoundError, RevisionNotFoundError
        try:
            commit = HfApi().repo_info(name, revision=revision).sha
        except (RepositoryNotFoundError, RevisionNotFoundError) as err:
            raise WeightsNotFound(f"no hub model '{name}'" + (f" at revision '{revision}'" if revision else "")
                                  + f" ({type(err).__name__})") from None
        return Weights(name, name, commit, {"hub": name, "commit": commit})
    folder = _cached_snapshot(name, revision)
    return Weights(name, str(folder), None, {"hub": name, "commit": folder.name})


def load_pretrained(cls, name: str, revision: str | None = None, subfolder: str | None = None,
                    optional_subfolder: bool = False, **kwargs):
    """cls.from_pretrained (diffusers / transformers) of a hub id at its resolved commit (from the cached snapshot
    folder when offline) or of a local folder. An optional `subfolder` is skipped when a local folder lacks it (a
    bare model folder rather than a pipeline)."""
    w = resolve(str(name), revision)
    sub = subfolder
    if sub and optional_subfolder and w.revision is None and not (Path(w.load_from) / sub).is_dir():
        sub = None
    if sub:                                                 # transformers refuses subfolder=None
        kwargs["subfolder"] = sub
    return cls.from_pretrained(w.load_from, revision=w.revision, **kwargs)


def _cached_snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE
    from huggingface_hub.errors import LocalEntryNotFoundError
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except LocalEntryNotFoundError:
        raise WeightsNotFound(f"'{repo_id}' (revision {revision or 'main'}) is not in the local Hugging Face cache "
                              f"({HF_HUB_CACHE}) and the hub is unreachable or HF_HUB_OFFLINE is set: "
                              + fetch_hint(repo_id, revision)) from None


def hub_file(repo_id: str, filenames: list[str], revision: str | None = None) -> Path:
    """The first of `filenames` the repo has, as a local file (downloaded at the resolved commit when online)."""
    w = resolve(repo_id, revision)
    if w.revision is None:                                       # offline: the cached snapshot folder
        for name in filenames:
            if (Path(w.load_from) / name).is_file():
                return Path(w.load_from) / name
        raise WeightsNotFound(f"'{repo_id}' in the local Hugging Face cache has none of {filenames}: "
                              + fetch_hint(repo_id, revision))
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError
    for name in filenames:
        try:
            return Path(hf_hub_download(repo_id, name, revision=w.revision))
        except EntryNotFoundError:
            continue
    raise WeightsNotFound(f"hub model '{repo_id}' has none of {filenames}")
