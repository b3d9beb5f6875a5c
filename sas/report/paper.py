"""Published figures (top-1 %, mean and std) for the report to print beside ours, each table with its
provenance: where the figures were published and the protocol they were measured with.

    PAPER[table][(row, column)] -> (mean, std)     # rows and columns: the labels of sas.report.tables.TABLES
    PROVENANCE[table] -> Provenance(source, table, protocol, note)

A figure is printed beside a run only when the run was evaluated under the figure's protocol
(Provenance.matches): hard labels under the IDC protocol on the real val split for every table here; a
soft-label or DD-Ranking run, or one scored on the holdout split, gets no reference figure.
Other methods' published figures (Minimax, DiT, IDC, K-Center, Random) are the ones the SAS paper reports
under its protocol, in its tables. MGD3, IGD, D4M and CaO2 report no figure under these protocols that we
could verify (different models, splits or soft labels): none is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Provenance:
    source: str                 # the publication
    table: str                  # its table
    protocol: dict = field(default_factory=dict)   # what the figures were measured with
    note: str = ""

    def matches(self, settings: dict) -> bool:
        """Whether a run's settings (its config) are this protocol: the labels (hard: the IDC Protocol class;
        soft: SoftLabelProtocol) and the evaluation split."""
        target = str((settings.get("eval") or {}).get("_target_", ""))
        labels = "soft" if target.endswith("SoftLabelProtocol") else ("hard" if target else None)
        split = settings.get("eval_split", "val")
        return labels in (None, self.protocol.get("labels")) and split == self.protocol.get("eval_split", "val")

    def line(self) -> str:
        p = self.protocol
        return (f"{self.source}, {self.table}; {p.get('labels')} labels, {p.get('eval')}, {p.get('models')}, "
                f"the real {p.get('eval_split', 'val')} split" + (f". {self.note}" if self.note else ""))


SAS_PAPER = "SAS (Li et al. 2026, arXiv:2605.18012)"
HARD_IDC = {"labels": "hard", "eval": "IDC protocol (SGD 0.01, CutMix, 3 repeats)", "eval_split": "val"}


def _rows(text: str, cols: list[str]) -> dict:
    out = {}
    for line in text.strip().splitlines():
        head, *cells = [c.strip() for c in line.split("|")]
        for col, cell in zip(cols, cells):
            if cell and cell != "-":
                m, s = cell.split("+-")
                out[(head, col)] = (float(m), float(s))
    return out


T1_COLS = ["Random", "K-Center", "IDC", "DiT", "DiT+SAS", "Minimax", "Minimax+SAS"]
PAPER = {
    "table1": _rows("""
10 ConvNet-6    | 24.3+-1.1 | 19.4+-0.9 | 33.3+-1.1 | 31.4+-0.4 | 30.5+-1.0 | 34.1+-0.4 | 36.6+-1.7
10 ResNetAP-10  | 28.4+-0.7 | 22.1+-0.1 | 37.3+-0.4 | 34.4+-0.6 | 36.0+-0.2 | 35.7+-0.3 | 40.3+-0.5
10 ResNet-18    | 27.7+-0.9 | 21.1+-0.4 | 36.9+-0.4 | 33.9+-0.1 | 34.1+-1.2 | 35.3+-0.4 | 39.0+-1.4
20 ConvNet-6    | 29.1+-0.7 | 21.5+-0.8 | 35.5+-0.8 | 36.9+-1.1 | 39.2+-1.0 | 36.9+-1.2 | 38.4+-1.6
20 ResNetAP-10  | 32.7+-0.4 | 25.1+-0.7 | 42.0+-0.4 | 41.1+-0.8 | 42.5+-0.6 | 43.3+-0.3 | 45.0+-0.8
20 ResNet-18    | 29.7+-0.5 | 23.6+-0.3 | 38.6+-0.2 | 40.5+-0.5 | 40.6+-0.7 | 40.9+-0.6 | 42.9+-0.8
50 ConvNet-6    | 41.3+-0.6 | 36.5+-1.0 | 43.9+-1.2 | 46.5+-0.8 | 47.1+-0.7 | 51.4+-0.4 | 54.7+-0.6
50 ResNetAP-10  | 47.2+-1.3 | 40.6+-0.4 | 48.3+-1.0 | 49.3+-0.2 | 53.7+-0.4 | 54.4+-0.6 | 59.9+-0.8
50 ResNet-18    | 47.9+-1.8 | 39.6+-1.0 | 48.3+-1.0 | 50.1+-0.5 | 51.7+-1.0 | 53.9+-1.3 | 57.9+-0.8
""", T1_COLS),
    "table2": _rows("""
ImageNette 10 | 54.2+-1.6 | 59.1+-0.7 | 59.8+-0.3 | 60.5+-0.2
ImageNette 20 | 63.5+-0.5 | 64.8+-1.2 | 66.3+-0.4 | 66.4+-0.3
ImageNette 50 | 76.1+-1.1 | 73.3+-0.9 | 75.2+-0.2 | 76.1+-0.6
ImageIDC 10   | 47.0+-0.6 | 50.2+-0.7 | 51.3+-0.4 | 52.2+-0.6
ImageIDC 20   | 51.3+-0.3 | 56.4+-0.5 | 57.5+-1.2 | 57.7+-0.9
ImageIDC 50   | 64.9+-0.8 | 62.1+-0.4 | 63.4+-0.8 | 64.0+-0.7
""", ["Random", "DiT", "Minimax", "SAS"]),
    "table3": _rows("""
10 | 31.7+-0.5 | 37.5+-0.2 | 37.6+-0.8
20 | 38.8+-0.8 | 43.9+-0.2 | 44.9+-0.3
50 | 48.1+-0.3 | 50.8+-0.6 | 51.4+-0.4
""", ["Random", "Diffusion", "SAS"]),
    "table4": _rows("""
3 x IPC | 38.1+-0.7 | 45.4+-0.3 | 55.1+-0.4
4 x IPC | 40.3+-0.5 | 45.0+-0.8 | 59.9+-0.8
5 x IPC | 35.0+-1.2 | 41.3+-0.2 | 58.2+-0.7
""", ["IPC 10", "IPC 20", "IPC 50"]),
    "table5": _rows("""
Mixed (0.05) | 34.3+-0.4 | 38.9+-0.6 | 57.1+-0.7
Mixed (0.10) | 33.6+-0.9 | 40.4+-1.1 | 56.5+-1.2
Mixed (0.20) | 33.6+-0.8 | 41.5+-0.9 | 54.6+-0.5
SAS          | 40.3+-0.5 | 45.0+-0.8 | 59.9+-0.8
""", ["IPC 10", "IPC 20", "IPC 50"]),
    "table6": _rows("""
none            | 35.4+-0.6 | 44.0+-1.3 | 56.9+-0.5
rel             | 34.3+-0.8 | 41.2+-0.7 | 55.3+-0.5
sep             | 36.6+-0.3 | 44.3+-1.3 | 58.3+-0.2
div             | 37.5+-0.5 | 44.8+-0.3 | 59.0+-0.3
rel + sep       | 34.9+-0.3 | 42.5+-0.2 | 55.8+-1.1
rel + sep + div | 40.3+-0.5 | 45.0+-0.8 | 59.9+-0.8
""", ["IPC 10", "IPC 20", "IPC 50"]),
}


PROVENANCE = {
    "table1": Provenance(SAS_PAPER, "Table 1", {**HARD_IDC, "models": "ConvNet-6 / ResNetAP-10 / ResNet-18"},
                         "Random, K-Center, IDC, DiT and Minimax as the SAS paper reports them"),
    "table2": Provenance(SAS_PAPER, "Table 2", {**HARD_IDC, "models": "ResNetAP-10"},
                         "Random, DiT and Minimax as the SAS paper reports them"),
    "table3": Provenance(SAS_PAPER, "Table 3", {**HARD_IDC, "models": "ResNetAP-10 (CIFAR-10)"}),
    "table4": Provenance(SAS_PAPER, "Table 4", {**HARD_IDC, "models": "ResNetAP-10"}),
    "table5": Provenance(SAS_PAPER, "Table 5", {**HARD_IDC, "models": "ResNetAP-10"}),
    "table6": Provenance(SAS_PAPER, "Table 6", {**HARD_IDC, "models": "ResNetAP-10"}),
}
