"""Normalisation layers by name (the IDC models use instance norm = GroupNorm(C, C))."""

from torch import nn

NORMS = ("instance", "batch", "group", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; choose from {NORMS}")
