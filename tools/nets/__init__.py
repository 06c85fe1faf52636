"""Networks for the three search spaces, built from op-name genotypes, and their costs.

Only torch and the standard library are imported here, so the training worker stays light.
Call :func:`build_network` with a space name and a genotype in its JSON form (lists are fine).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lapt.tools.net_params import NET_PARAMS, NetSettingError, check_net
from lapt.tools.nets.cost import count_flops, count_params
from lapt.tools.nets.darts import DARTS_OPS, DARTS_V2, DartsNetwork, check_darts_genotype
from lapt.tools.nets.nb201 import NB201_OPS, NB201Network
from lapt.tools.nets.ops import NetworkBuildError
from lapt.tools.nets.tnb101 import TNB101_OPS, TNB101MicroNetwork

NETWORKS: dict[str, type[nn.Module]] = {
    "nb201": NB201Network,
    "tnb101": TNB101MicroNetwork,
    "darts": DartsNetwork,
}
SPACE_OPS: dict[str, tuple[str, ...]] = {"nb201": NB201_OPS, "tnb101": TNB101_OPS, "darts": DARTS_OPS}


def build_network(space: str, genotype: Any, num_classes: int = 10, in_channels: int = 3, **net: Any) -> nn.Module:
    """Build the evaluation network of ``space`` for ``genotype``.

    Args:
        space: ``"nb201"``, ``"tnb101"`` or ``"darts"``.
        genotype: op names (nb201/tnb101) or 8 ``[[op, input], [op, input]]`` layers (darts).
        num_classes: classifier outputs.
        in_channels: image channels.
        **net: size overrides of that space's network, as :data:`lapt.tools.net_params.NET_PARAMS`
            declares them (nb201: C, N; tnb101: C, macro_code, cells_per_stage; darts: C, layers,
            auxiliary, drop_path_prob).

    Raises:
        NetworkBuildError: unknown space, bad genotype, or settings the network cannot take.
    """
    if space not in NETWORKS:
        raise NetworkBuildError(f"unknown space {space!r} (known: {', '.join(NETWORKS)})")
    try:
        checked = check_net(space, net)
    except NetSettingError as exc:
        raise NetworkBuildError(f"{space}: {exc}") from exc
    return NETWORKS[space](genotype, num_classes=num_classes, in_channels=in_channels, **checked)


__all__ = [
    "DARTS_OPS",
    "DARTS_V2",
    "NB201_OPS",
    "NETWORKS",
    "NET_PARAMS",
    "SPACE_OPS",
    "TNB101_OPS",
    "DartsNetwork",
    "NB201Network",
    "NetworkBuildError",
    "TNB101MicroNetwork",
    "build_network",
    "check_darts_genotype",
    "count_flops",
    "count_params",
]
