"""Export a run's distilled set (sas.export): an ImageFolder, a Hugging Face datasets dataset, or pool indices.

    python experiments/export.py outputs/demo --format imagefolder --out woof-ipc10/ [--archive]
    python experiments/export.py outputs/demo --format hf --out woof-ipc10-hf/ [--push-to-hub me/woof-ipc10]
    python experiments/export.py outputs/demo --format indices --out woof-ipc10.json
    python experiments/export.py outputs/demo --sampler random ...      # a comparison sampler's set
"""

import sys

from sas.export import main

if __name__ == "__main__":
    sys.exit(main())
