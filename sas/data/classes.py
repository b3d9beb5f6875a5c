"""Class tables: label order, WordNet id, ImageNet-1K index (= DiT class label), readable name.

    from sas.data.classes import get_class_table
    table = get_class_table("imagewoof")
    table.names         # ['Australian terrier', ...]  -> CLIP prompts
    table.imagenet_ids  # [193, 182, ...]               -> DiT class labels
    table.wnids         # ['n02096294', ...]            -> ImageNet folder names

Label order (0..C-1) is the order below, as in the IDC / Minimax code.
ImageNet-1K ("imagenet1k") is built on first use: the 1,000 wnids in the
standard order (sorted wnids = the ImageNet-1K class index = DiT's label,
imagenet1k_wnids.txt beside this file) and the class names open_clip uses for
zero-shot ImageNet (open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES), where
two pairs of classes share a name; each of those takes its synset's first
WordNet lemma instead (IMAGENET1K_RENAMES), so no two prototypes coincide.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClassTable", "CLASS_TABLES", "get_class_table", "unsafe_folder_name", "model_class_ids"]


@dataclass(frozen=True)
class ClassTable:
    name: str
    wnids: tuple[str | None, ...]
    imagenet_ids: tuple[int | None, ...]
    names: tuple[str, ...]

    def __post_init__(self):
        if not (len(self.wnids) == len(self.imagenet_ids) == len(self.names)):
            raise ValueError(f"class table '{self.name}': wnids, imagenet_ids and names differ in length")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"class table '{self.name}': class names repeat")
        for c, folder in enumerate(self.folders):
            why = unsafe_folder_name(folder)
            if why:
                raise ValueError(f"class table '{self.name}': class {c} '{self.names[c]}' cannot be a folder name "
                                 f"({why}); rename the class")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def folders(self) -> tuple[str, ...]:
        """The folder name of each class in an ImageFolder layout: the wnid, else the name."""
        return tuple(w or n for w, n in zip(self.wnids, self.names))

    @classmethod
    def from_names(cls, name: str, names, wnids=None, imagenet_ids=None) -> "ClassTable":
        """A table for any other ImageFolder dataset, from its class-name list."""
        n = len(names)
        return cls(name, tuple(wnids or [None] * n), tuple(imagenet_ids or [None] * n), tuple(names))


def model_class_ids(table: ClassTable, class_ids: str, n_model: int, key: str = "pool.class_ids") -> list[int]:
    """Each class's label in a class-conditional generator: `imagenet` (the table's ImageNet-1K ids, a DiT's
    labels) or `label` (the dataset label, a generator trained on the dataset's own classes). A ValueError names
    the class the model (n_model classes) does not have, or the dataset without ImageNet ids (`key` is the setting
    to change)."""
    if class_ids not in ("imagenet", "label"):
        raise ValueError(f"{key} must be 'imagenet' or 'label', got '{class_ids}'")
    if class_ids == "imagenet":
        if any(i is None for i in table.imagenet_ids):
            raise ValueError(f"dataset {table.name} has no ImageNet ids; use {key}=label with a generator trained "
                             "on its classes")
        ids = list(table.imagenet_ids)
    else:
        ids = list(range(len(table)))
    for c, mid in enumerate(ids):
        if not 0 <= mid < n_model:
            raise ValueError(f"class {c} '{table.names[c]}' maps to id {mid}, outside the model's {n_model} classes "
                             f"(0..{n_model - 1})")
    return ids


_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_FORBIDDEN = set('<>:"/\\|?*')


def unsafe_folder_name(name: str) -> str | None:
    """Why `name` is not a folder name that is safe on every filesystem, or None. Class folders are written
    under distilled/ and the pool store, so a name must not leave them or break on Windows / macOS."""
    if not name or name.strip() != name:
        return "empty, or leading / trailing spaces"
    if name in (".", "..") or name.endswith("."):
        return "'.' or '..' or a trailing dot"
    bad = sorted({ch for ch in name if ch in _FORBIDDEN or ord(ch) < 32})
    if bad:
        return f"contains {''.join(bad)!r}"
    if name.split(".")[0].upper() in _RESERVED:
        return "a reserved device name on Windows"
    if len(name.encode()) > 200:
        return "longer than 200 bytes"
    return None


def _table(name: str, rows: str) -> ClassTable:
    parsed = [line.split(None, 2) for line in rows.strip().splitlines()]
    return ClassTable(name, tuple(r[0] for r in parsed), tuple(int(r[1]) for r in parsed),
                      tuple(r[2] for r in parsed))


CLASS_TABLES: dict[str, ClassTable] = {
    "imagewoof": _table("imagewoof", """
        n02096294 193 Australian terrier
        n02093754 182 Border terrier
        n02111889 258 Samoyed
        n02088364 162 beagle
        n02086240 155 Shih-Tzu
        n02089973 167 English foxhound
        n02087394 159 Rhodesian ridgeback
        n02115641 273 dingo
        n02099601 207 golden retriever
        n02105641 229 Old English sheepdog
    """),
    "imagenette": _table("imagenette", """
        n01440764 0 tench
        n02102040 217 English springer
        n02979186 482 cassette player
        n03000684 491 chain saw
        n03028079 497 church
        n03394916 566 French horn
        n03417042 569 garbage truck
        n03425413 571 gas pump
        n03445777 574 golf ball
        n03888257 701 parachute
    """),
    "imageidc": _table("imageidc", """
        n02869837 452 bonnet
        n01749939 64 green mamba
        n02488291 374 langur
        n02107142 236 Doberman
        n13037406 993 gyromitra
        n02091831 176 Saluki
        n04517823 882 vacuum
        n04589890 904 window screen
        n03062245 503 cocktail shaker
        n01773797 74 garden spider
    """),
    "cifar10": ClassTable.from_names(
        "cifar10", ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]),
    "digits": ClassTable.from_names(
        "digits", ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]),
}


# open_clip's zero-shot list names two classes "missile" and two "sunglasses": each takes its synset's first
# WordNet lemma (n03773504 missile, n04008634 projectile, missile; n04355933 sunglass, n04356056 sunglasses)
IMAGENET1K_RENAMES = {657: "missile", 744: "projectile", 836: "sunglass", 837: "sunglasses"}


def imagenet1k_table() -> ClassTable:
    from pathlib import Path

    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    wnids = (Path(__file__).parent / "imagenet1k_wnids.txt").read_text().split()
    names = [IMAGENET1K_RENAMES.get(i, n) for i, n in enumerate(IMAGENET_CLASSNAMES)]
    if len(wnids) != 1000 or len(names) != 1000:
        raise ValueError(f"ImageNet-1K class table: {len(wnids)} wnids and {len(names)} names, expected 1000")
    return ClassTable("imagenet1k", tuple(wnids), tuple(range(1000)), tuple(names))


def get_class_table(name: str) -> ClassTable:
    if name == "imagenet1k" and name not in CLASS_TABLES:
        CLASS_TABLES[name] = imagenet1k_table()
    if name not in CLASS_TABLES:
        raise ValueError(f"unknown class table '{name}'; known: {sorted({*CLASS_TABLES, 'imagenet1k'})}"
                         " (or build one with ClassTable.from_names)")
    return CLASS_TABLES[name]
