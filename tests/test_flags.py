"""avs.flags: argparse flags generated from frozen dataclass configs (types, help, layering), and the flags of
`avs cluster` / `avs ensemble` / `avs evaluate` built with it (old flag names keep working)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Literal

import pytest
import yaml

from avs.flags import (
    add_config_flags,
    add_layering_flags,
    config_from_args,
    converter_for,
    flag_values,
    opt,
    set_only_fields,
)

Speed = Literal["fast", "slow"]


@dataclasses.dataclass(frozen=True)
class Inner:
    a: int = 1
    b: str = "x"


@dataclasses.dataclass(frozen=True)
class Demo:
    src: str = opt(help="input folder", positional=True)
    out: str = opt(help="output folder")
    count: int = opt(20, "how many")
    rate: float = opt(0.5, "learning rate")
    name: str = "demo"  # no metadata: help from the name
    switch: bool = opt(True, "turn it on")
    speed: Speed = opt("fast", "how fast")
    limit: int | None = opt(None, "cap on rows")
    margin: float | None = opt(0.2, "replacement margin")
    tags: tuple[str, ...] = opt(("a", "b"), "tags")
    names: list[str] = opt(default_factory=list, help="names")
    sizes: tuple[int, ...] = opt((1, 2), "sizes")
    weights: tuple[float, ...] = opt((), "weights")
    hw: tuple[int, int] | None = opt(None, "height,width")
    gpu: Literal["auto"] | bool = opt("auto", "use the GPU")
    level: str = opt("b", "level", choices=("a", "b", "c"))
    renamed: int = opt(3, "a flag named otherwise", flag="--other-name", aliases=("--old-name",))
    paths: tuple[str, ...] = opt((), "paths, one per token", nargs="+", metavar="P")
    inner: Inner = Inner()
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Grown(Demo):
    added_later: int = opt(7, "a field added after the parser code was written")


def parser_for(cls=Demo, **kwargs) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo", exit_on_error=False)
    add_config_flags(p, cls, **kwargs)
    add_layering_flags(p, "demo", cls=cls)
    return p


def given(argv, cls=Demo):
    return flag_values(parser_for(cls).parse_args(["SRC", *argv]), cls)


def build(argv, cls=Demo, **kwargs):
    return config_from_args(cls, parser_for(cls).parse_args(argv), **kwargs)


# ------------------------------------------------------------------------------------------------ types
def test_only_typed_flags_are_given():
    assert given([]) == {"src": "SRC"}
    cfg = build(["SRC", "--out", "o"])
    assert cfg == Demo(src="SRC", out="o")


@pytest.mark.parametrize(
    "argv, key, want",
    [
        (["--count", "3"], "count", 3),
        (["--rate", "1e-3"], "rate", 1e-3),
        (["--rate", "2"], "rate", 2.0),
        (["--name", "x y"], "name", "x y"),
        (["--speed", "slow"], "speed", "slow"),
        (["--limit", "5"], "limit", 5),
        (["--margin", "0.3"], "margin", 0.3),
        (["--tags", "x, y,,z"], "tags", ("x", "y", "z")),
        (["--tags", ""], "tags", ()),
        (["--names", "p,q"], "names", ["p", "q"]),
        (["--sizes", "3,4,5"], "sizes", (3, 4, 5)),
        (["--weights", "0.5,1,2e-1"], "weights", (0.5, 1.0, 0.2)),
        (["--hw", "224,160"], "hw", (224, 160)),
        (["--gpu", "auto"], "gpu", "auto"),
        (["--gpu", "true"], "gpu", True),
        (["--gpu", "no"], "gpu", False),
        (["--level", "c"], "level", "c"),
        (["--other-name", "9"], "renamed", 9),
        (["--old-name", "8"], "renamed", 8),
        (["--paths", "a,b", "c"], "paths", ("a,b", "c")),  # nargs: one element per token, no comma split
    ],
)
def test_each_type_mapping(argv, key, want):
    got = given(argv)
    assert got == {"src": "SRC", key: want}
    assert type(got[key]) is type(want)


def test_bool_flag_and_its_no_form():
    assert given(["--switch"])["switch"] is True
    assert given(["--no-switch"])["switch"] is False
    assert build(["S", "--out", "o", "--no-switch"]).switch is False


@pytest.mark.parametrize("word", ["none", "None", "null"])
def test_none_words_read_as_none(word):
    assert given(["--limit", word])["limit"] is None
    assert given(["--margin", word])["margin"] is None
    assert given(["--hw", word])["hw"] is None


def test_a_flag_none_overrides_the_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"out": "o", "margin": 0.5, "limit": 3}))
    cfg = build(["S", "--config", str(path), "--margin", "none"])
    assert cfg.margin is None and cfg.limit == 3


@pytest.mark.parametrize(
    "argv",
    [
        ["--speed", "medium"],  # Literal
        ["--level", "z"],  # choices=
        ["--gpu", "maybe"],  # Literal["auto"] | bool
        ["--count", "1.5"],
        ["--count", "none"],  # not optional
        ["--rate", "fast"],
        ["--sizes", "1,x"],
        ["--hw", "1,2,3"],  # exactly two
        ["--switch=yes"],  # a BooleanOptionalAction takes no value
        ["--inner", "3"],  # nested dataclass: --set only
        ["--params", "x"],  # dict: --set only
        ["--no-such-flag", "1"],
    ],
)
def test_bad_values_and_unknown_flags_are_refused(argv):
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        parser_for().parse_args(["SRC", *argv])


def test_literal_refusal_names_the_choices():
    p = argparse.ArgumentParser()
    add_config_flags(p, Demo)
    with pytest.raises(SystemExit):
        p.parse_args(["S", "--speed", "medium"])
    with pytest.raises(argparse.ArgumentTypeError, match="choose from fast, slow"):
        converter_for(Speed)("medium")


def test_converter_for_hand_written_flags():
    assert converter_for(tuple[float, float, float])("0.1, 0.2,0.3") == (0.1, 0.2, 0.3)
    assert converter_for(int | None)("null") is None
    assert converter_for(bool)("off") is False
    assert converter_for(int | bool)("1") == 1 and converter_for(int | bool)("yes") is True  # numbers first
    assert converter_for(Literal["all"] | str)("all") == "all" and converter_for(Literal["all"] | str)("x") == "x"


def test_a_type_without_a_flag_mapping_is_an_error():
    @dataclasses.dataclass(frozen=True)
    class Odd:
        when: complex = 1j

    with pytest.raises(TypeError, match="Odd.when: no command-line flag"):
        add_config_flags(argparse.ArgumentParser(), Odd)


def test_positional_is_required_and_missing_required_flag_named():
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        parser_for().parse_args([])
    with pytest.raises(ValueError, match=r"missing required setting\(s\) out \(--out"):
        build(["S"])


def test_exclude_leaves_a_field_to_the_caller():
    p = argparse.ArgumentParser(exit_on_error=False)
    add_config_flags(p, Demo, exclude=("count", "src"))
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        p.parse_args(["--count", "3"])
    args = p.parse_args(["--out", "o", "--rate", "0.1"])
    assert flag_values(args, Demo, exclude=("count", "src")) == {"out": "o", "rate": 0.1}
    cfg = config_from_args(Demo, args, fixed={"src": "from-code", "count": 4}, exclude=("count", "src"))
    assert (cfg.src, cfg.count, cfg.rate) == ("from-code", 4, 0.1)
    with pytest.raises(ValueError, match="exclude names no field"):
        add_config_flags(argparse.ArgumentParser(), Demo, exclude=("nope",))


# ------------------------------------------------------------------------------------------------ layering
def test_layering_yaml_then_fixed_then_flags_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"out": "yaml", "count": 1, "rate": 0.1, "name": "yaml", "inner": {"a": 5}}))
    cfg = build(
        ["S", "--config", str(path), "--count", "2", "--rate", "0.2", "--set", "count=3", "--set", "inner.b=y"],
        fixed={"name": "fixed", "rate": 9.0, "out": "fixed"},
    )
    assert cfg.count == 3  # --set beats the flag
    assert cfg.rate == 0.2  # the flag beats fixed and the YAML
    assert cfg.name == "fixed" and cfg.out == "fixed"  # fixed beats the YAML
    assert cfg.inner == Inner(a=5, b="y")  # YAML and --set merge into the nested config
    assert cfg.speed == "fast"  # the field default where nothing is given


def test_extra_flags_sit_with_the_flags(tmp_path):
    args = parser_for().parse_args(["S", "--out", "o", "--count", "2", "--set", "rate=0.7"])
    cfg = config_from_args(Demo, args, extra_flags={"count": 5, "inner.a": 2, "rate": 0.3, "limit": None})
    assert (cfg.count, cfg.inner.a, cfg.rate, cfg.limit) == (5, 2, 0.7, None)


@pytest.mark.parametrize("item", ["nope=1", "inner.zz=1"])
def test_unknown_set_key_is_refused(item):
    with pytest.raises(ValueError, match="unknown option"):
        build(["S", "--out", "o", "--set", item])


def test_unknown_yaml_key_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"out": "o", "cuont": 3}))
    with pytest.raises(ValueError, match="cuont"):
        build(["S", "--config", str(path)])


def test_set_values_are_yaml_and_reach_dict_fields():
    cfg = build(["S", "--out", "o", "--set", "params.depth=3", "--set", "tags=[p, q]", "--set", "limit=null"])
    assert cfg.params == {"depth": 3} and cfg.tags == ("p", "q") and cfg.limit is None


# ------------------------------------------------------------------------------------------------ help
def test_help_text_from_metadata_with_the_defaults():
    text = " ".join(parser_for().format_help().split())  # unwrapped
    assert "how many (default: 20)" in text
    assert "learning rate (default: 0.5)" in text
    assert "name (default: demo)" in text  # no metadata: from the name
    assert "--switch, --no-switch turn it on (default: true)" in text
    assert "--speed {fast,slow}" in text and "--gpu {auto,true,false}" in text
    assert "--level {a,b,c}" in text
    assert "--limit N cap on rows (default: none)" in text
    assert "--margin X|none" in text  # "none" shown where the default is not None
    assert "tags (default: a,b)" in text and "names (default: empty)" in text
    assert "--other-name N, --old-name N" in text
    assert "--paths P [P ...]" in text
    assert "output folder (required)" in text and "input folder" in text
    assert "--inner" not in text and "--params" not in text
    assert "settings without a flag of their own: inner.{a, b}; params.KEY" in text
    assert set_only_fields(Demo) == ["inner.{a, b}", "params.KEY"]


def test_help_defaults_from_another_source_and_percent_signs():
    @dataclasses.dataclass(frozen=True)
    class Pct:
        share: float = opt(0.1, "share of rows, in % of all")

    p = argparse.ArgumentParser()
    add_config_flags(p, Pct, defaults_from={"share": 0.25})
    assert "in % of all (default: 0.25)" in " ".join(p.format_help().split())
    q = argparse.ArgumentParser()
    add_config_flags(q, Demo, defaults_from=Demo(src="s", out="o", count=99))
    assert "how many (default: 99)" in " ".join(q.format_help().split())


def test_a_new_field_is_a_new_flag():
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        parser_for(Demo).parse_args(["S", "--added-later", "1"])
    assert given(["--added-later", "1"], Grown) == {"src": "SRC", "added_later": 1}
    assert build(["S", "--out", "o"], Grown).added_later == 7
    assert "a field added after the parser code was written (default: 7)" in " ".join(
        parser_for(Grown).format_help().split()
    )


def test_opt_checks_its_arguments():
    with pytest.raises(ValueError):
        opt(1, flag="count")  # no leading dash
    with pytest.raises(ValueError):
        opt(help="x", positional=True, flag="--x")
    with pytest.raises(ValueError):
        opt((), nargs="2")
    f = opt(3, "help text", flag="--n", metavar="K")
    assert f.default == 3 and f.metadata["help"] == "help text" and f.metadata["flag"] == "--n"


# ------------------------------------------------------------------------------------------------ commands
def avs_args(argv):
    from avs.cli import build_parser

    return build_parser().parse_args(argv)


def test_cluster_flags_come_from_cluster_config(tmp_path):
    from avs.cluster.cli import cluster_config_from_args
    from avs.cluster.config import ClusterConfig

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"k": 7, "restarts": 1, "pca_dims": 8}))
    argv = ["cluster", "feats/texture", "--out", "o", "--config", str(path), "--k", "4", "--no-standardize"]
    argv += ["--pca-dims", "none", "--device", "cpu", "--threads", "1", "--frames", "feats/frames"]
    argv += ["--gallery-per-cluster", "0", "--gallery-tile-px", "24", "--max-points-per-centroid", "64"]
    cfg = cluster_config_from_args(avs_args([*argv, "--set", "seed=3"]))
    assert cfg == ClusterConfig(
        features="feats/texture",
        out="o",
        k=4,
        restarts=1,
        standardize=False,
        pca_dims=None,
        device="cpu",
        threads=1,
        frames="feats/frames",
        gallery_per_cluster=0,
        gallery_tile_px=24,
        max_points_per_centroid=64,
        seed=3,
    )
    text = " ".join(_help("cluster").split())
    for f in dataclasses.fields(ClusterConfig):
        assert (f.name if f.name == "features" else "--" + f.name.replace("_", "-")) in text, f.name
    assert "number of clusters; 15 as every table of paper 001" in text and "(default: 15)" in text


def _help(command: str) -> str:
    from avs.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


def test_ensemble_old_flags_still_work():
    from avs.ensemble.cli import ensemble_config_from_args
    from avs.ensemble.fusion import ClampConfig

    argv = ["ensemble", "--audio", "a1", "a2", "--frame", "v1", "--clip", "c1", "--out", "ens"]
    argv += ["--weights", "A=0.5,V=1,C=2", "--margin", "none", "--no-segments", "--no-postprocess"]
    argv += ["--classes", "bus,tram", "--clamp", "0.1,0.2,0.3", "--clamp-values", "0.01,0.1,0.9"]
    cfg = ensemble_config_from_args(avs_args([*argv, "--no-renormalize", "--set", "clamp.high=0.8"]))
    assert (cfg.audio, cfg.frame, cfg.clip, cfg.out) == (("a1", "a2"), ("v1",), ("c1",), "ens")
    assert (cfg.weight_audio, cfg.weight_frame, cfg.weight_clip) == (0.5, 1.0, 2.0)
    assert cfg.margin is None and not cfg.segments and not cfg.postprocess and not cfg.renormalize
    assert cfg.audio_classes == ("bus", "tram")
    assert cfg.clamp == ClampConfig(low=0.1, mid=0.2, high=0.8, low_value=0.01, mid_value=0.1, high_value=0.9)
    new = ensemble_config_from_args(
        avs_args(["ensemble", "--frame", "v", "--out", "e", "--weight-clip", "3", "--audio-classes", "park"])
    )
    assert new.weight_clip == 3.0 and new.audio_classes == ("park",) and new.margin == 0.2
    with pytest.raises(SystemExit):
        avs_args(["ensemble", "--frame", "v", "--out", "e", "--weights", "X=1"])
    with pytest.raises(SystemExit):
        avs_args(["ensemble", "--frame", "v", "--out", "e", "--clamp", "0.1,0.2"])
    text = " ".join(_help("ensemble").split())
    assert "settings without a flag of their own: clamp.{low, mid, high, low_value, mid_value, high_value}" in text


def test_evaluate_positional_inputs_and_classes(tmp_path):
    from avs.eval.cli import evaluate_config_from_args
    from avs.eval.job import EvaluateConfig

    cfg = evaluate_config_from_args(avs_args(["evaluate", "A01=p/a01", "ens", "--out", "r", "--classes", "x,y"]))
    assert cfg == EvaluateConfig(out="r", inputs=("A01=p/a01", "ens"), classes=("x", "y"))
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump({"inputs": ["from-yaml"], "out": "r"}))
    assert evaluate_config_from_args(avs_args(["evaluate", "--config", str(path)])).inputs == ("from-yaml",)
    assert evaluate_config_from_args(avs_args(["evaluate", "x", "--config", str(path)])).inputs == ("x",)
    with pytest.raises(ValueError, match="at least one input"):
        evaluate_config_from_args(avs_args(["evaluate", "--out", "r"]))
    assert "[NAME=]PATH" in _help("evaluate")
