"""Carrying principles across spaces: unknown ops and layers are dropped and reported."""

from __future__ import annotations

from pathlib import Path

from lapt.principles.cross_space import transfer_principles
from lapt.schemas import Principle, PrincipleSet
from lapt.spaces import get_space
from lapt.transfer.masks import mask_model

TOY = Path(__file__).resolve().parents[1] / "examples" / "toy_space" / "toy_space.toml"


def nb201_set() -> PrincipleSet:
    return PrincipleSet(
        version=3,
        source="learned from cifar10",
        tasks_seen=["cifar10"],
        reasoner="offline",
        principles=[
            Principle(statement="Skip on the input-output edge.", layer="edge_0_3", favour=["skip_connect"]),
            Principle(statement="Average pooling hurts.", avoid=["avg_pool_3x3"], confidence=0.8),
            Principle(statement="Convs beat pooling.", favour=["nor_conv_3x3", "nor_conv_1x1"], avoid=["avg_pool_3x3"]),
            Principle(statement="Deeper information flow helps."),
        ],
    )


def test_nb201_to_tnb101_drops_avg_pool():
    pset = nb201_set()
    out, report = transfer_principles(pset, get_space("tnb101"))
    statements = [p.statement for p in out.principles]
    assert statements == ["Skip on the input-output edge.", "Convs beat pooling.", "Deeper information flow helps."]
    assert out.principles[0].layer == "edge_0_3" and out.principles[0].favour == ["skip_connect"]
    assert out.principles[1].favour == ["nor_conv_3x3", "nor_conv_1x1"] and out.principles[1].avoid == []
    assert out.version == 3 and out.tasks_seen == ["cifar10"]
    assert out.source == "transferred to tnb101 from: learned from cifar10"
    assert report == [
        "principle 2 (Average pooling hurts.): dropped, its ops (avg_pool_3x3) are not in tnb101",
        "principle 3 (Convs beat pooling.): ops avg_pool_3x3 are not in tnb101; removed",
    ]
    assert len(pset.principles) == 4 and pset.principles[2].avoid == ["avg_pool_3x3"]  # input untouched


def test_same_space_is_unchanged():
    pset = nb201_set()
    out, report = transfer_principles(pset, get_space("nb201"))
    assert report == [] and out.principles == pset.principles


def test_unknown_layer_becomes_global_and_ops_are_checked_per_layer():
    toy = get_space(str(TOY))
    pset = nb201_set()
    out, report = transfer_principles(pset, toy)
    assert report[0] == "principle 1 (Skip on the input-output edge.): layer 'edge_0_3' is not in toy; now global"
    assert out.principles[0].layer is None and out.principles[0].favour == ["skip_connect"]
    assert [p.statement for p in out.principles] == ["Skip on the input-output edge.", "Deeper information flow helps."]
    assert "principle 3 (Convs beat pooling.): dropped, its ops (nor_conv_3x3, nor_conv_1x1, avg_pool_3x3)" in report[2]


def test_kept_layer_restricts_ops_to_that_layer(tmp_path):
    space_file = tmp_path / "s.toml"
    space_file.write_text(
        'name = "s"\nkind = "chain"\n[ops]\na = "op a"\nb = "op b"\n'
        '[[layers]]\nname = "first"\nops = ["a", "b"]\n[[layers]]\nname = "second"\nops = ["a"]\n'
    )
    space = get_space(str(space_file))
    pset = PrincipleSet(
        version=0,
        source="hand-written",
        principles=[Principle(statement="Use b late.", layer="second", favour=["b", "a"], avoid=["c"])],
    )
    out, report = transfer_principles(pset, space)
    assert out.principles[0].favour == ["a"] and out.principles[0].avoid == []
    assert report == ["principle 1 (Use b late.): ops b, c are not in second; removed"]
    # What survives can always be turned into a valid mask of the target.
    model = mask_model(space)
    for p in out.principles:
        assert model(
            **{
                name: (p.favour if p.layer == name and p.favour else list(space.layers[i].ops))
                for i, name in enumerate(space.layer_names)
            }
        )


def test_nothing_survives():
    pset = PrincipleSet(version=0, source="x", principles=[Principle(statement="Pool.", favour=["avg_pool_3x3"])])
    out, report = transfer_principles(pset, get_space("tnb101"))
    assert out.principles == []
    assert report[-1] == "no principle survived the transfer to tnb101"
