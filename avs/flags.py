"""Command-line flags generated from frozen dataclass configs: a new field is a new flag.

    @dataclasses.dataclass(frozen=True)
    class ClusterConfig:
        features: str = opt(help="shard folder of one feature set", positional=True)
        k: int = opt(15, "number of clusters")            # -> --k N          "number of clusters (default: 15)"
        standardize: bool = opt(True, "z-score first")    # -> --standardize / --no-standardize

    add_config_flags(parser, ClusterConfig)
    add_layering_flags(parser, "cluster", cls=ClusterConfig)   # --config YAML, --set KEY=VALUE (repeatable)
    cfg = config_from_args(ClusterConfig, parser.parse_args(argv))

One flag per top-level field, named ``--field-name`` (or ``opt(flag=...)``), typed from the annotation:

    bool                                --x / --no-x (argparse.BooleanOptionalAction)
    int, float, str                     one value
    Literal["a", "b"]                   one of the values; anything else is refused
    X | None                            also "none" / "null" -> None
    tuple[str, ...], list[str]          comma-separated ("a,b,c"; "" = empty); with opt(nargs="+"): one per token
    tuple[int, ...], tuple[float, ...]  comma-separated numbers; tuple[int, int]: exactly two
    Literal["auto"] | bool (any union)  each member in turn: literals, numbers, booleans (true/false/yes/no/on/off),
                                        sequences, strings
    a nested dataclass, dict, Any       no flag: reachable only with --set (the --set help lists them)

Every flag's argparse default is ``argparse.SUPPRESS``: a flag the user did not type is absent from the
namespace, so only typed flags are layered. Order of the layers: ``--config`` YAML < ``fixed`` < flags <
``--set key=value`` (``avs.config.layered``); unknown keys are refused (``avs.config.from_dict``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from avs.config import layered, load_yaml, parse_set, set_path

NONE_WORDS = ("none", "null")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def opt(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    default_factory: Any = dataclasses.MISSING,
    flag: str | None = None,
    metavar: str | None = None,
    positional: bool = False,
    choices: Iterable[Any] | None = None,
    nargs: str | None = None,
    aliases: Sequence[str] = (),
) -> Any:
    """A ``dataclasses.field`` whose metadata describes its command-line flag.

    ``help``: the flag's help (the default is appended as "(default: ...)" unless the text says "(default"
    itself); ``flag``: the flag's name when it is not ``--field-name``; ``aliases``: more names of the same
    flag (e.g. an older name); ``metavar``: the value's name in the help; ``positional``: a positional
    argument instead of a flag; ``choices``: allowed values (each element for a tuple field); ``nargs``: for a
    tuple / list field, "+" or "*" take one element per token instead of one comma-separated token.
    """
    if flag is not None and not positional and not flag.startswith("-"):
        raise ValueError(f"opt(flag={flag!r}): a flag name starts with '-'")
    if positional and (flag is not None or aliases):
        raise ValueError("opt(positional=True): a positional argument has no flag name or aliases")
    if nargs not in (None, "?", "*", "+"):
        raise ValueError(f"opt(nargs={nargs!r}): use '?', '*' or '+'")
    metadata = {
        "help": help,
        "flag": flag,
        "metavar": metavar,
        "positional": positional,
        "choices": None if choices is None else tuple(choices),
        "nargs": nargs,
        "aliases": tuple(aliases),
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


# --------------------------------------------------------------------------------------------- value parsing
@dataclasses.dataclass(frozen=True)
class _Parser:
    parse: Callable[[str], Any]  # one command-line token -> value
    metavar: str
    words: tuple[str, ...] | None = None  # the whole set of accepted words (Literal / bool), for the metavar
    rank: int = 9  # order of the members of a union: literals, numbers, booleans, sequences, strings


def _fail(text: str, expected: str) -> typing.NoReturn:
    raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {expected}")


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    _fail(text, "true or false")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        _fail(text, "an integer")


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        _fail(text, "a number")


def _is_structured(tp: Any) -> bool:
    """Types reachable only with --set: dataclasses, mappings, Any, and sequences / unions of them."""
    if tp is Any or tp is object or tp in (dict, Mapping):
        return True
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return True
    origin = typing.get_origin(tp)
    if origin in (dict, Mapping, typing.Mapping):
        return True
    if origin in (tuple, list, Sequence, typing.Union, types.UnionType):
        return any(_is_structured(a) for a in typing.get_args(tp) if a is not Ellipsis)
    return False


def _is_sequence(tp: Any) -> bool:
    return typing.get_origin(tp) in (tuple, list, Sequence) or tp in (tuple, list)


def _non_none(tp: Any) -> list[Any]:
    """The members of a union other than None; ``[tp]`` for any other type."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _scalar_parser(tp: Any, where: str) -> _Parser:
    if tp is bool:
        return _Parser(_parse_bool, "{true,false}", ("true", "false"), rank=3)
    if tp is int:
        return _Parser(_parse_int, "N", rank=1)
    if tp is float:
        return _Parser(_parse_float, "X", rank=2)
    if tp is str:
        return _Parser(str, "TEXT", rank=5)
    if typing.get_origin(tp) is typing.Literal:
        values = typing.get_args(tp)
        words = tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in values)

        def parse_literal(text: str) -> Any:
            for word, value in zip(words, values, strict=True):
                if text.strip() == word or (isinstance(value, bool) and text.strip().lower() == word):
                    return value
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {', '.join(words)})")

        return _Parser(parse_literal, "{" + ",".join(words) + "}", words, rank=0)
    raise TypeError(
        f"{where}: no command-line flag for type {tp!r}; use bool, int, float, str, Literal, tuples / lists of "
        "those or X | None, or leave the field out with exclude=(...)"
    )


def _sequence_parser(tp: Any, where: str) -> tuple[_Parser, _Parser]:
    """(parser of one comma-separated token, parser of one element) of a tuple / list type."""
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    make = list if origin is list else tuple
    if not args:
        args = (str, Ellipsis)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):  # fixed length: tuple[int, int]
        items = [_scalar_parser(a, where) for a in args]

        def parse_fixed(text: str) -> tuple:
            parts = [t.strip() for t in text.split(",")] if text.strip() else []
            if len(parts) != len(items):
                raise argparse.ArgumentTypeError(
                    f"invalid value {text!r}: expected {len(items)} comma-separated values"
                )
            return tuple(p.parse(t) for p, t in zip(items, parts, strict=True))

        return _Parser(parse_fixed, ",".join(p.metavar for p in items), rank=4), items[0]
    item = _scalar_parser(args[0], where)

    def parse_list(text: str) -> Any:
        return make(item.parse(t.strip()) for t in text.split(",") if t.strip())

    metavar = "A,B,..." if item.metavar == "TEXT" else f"{item.metavar},{item.metavar},..."
    return _Parser(parse_list, metavar, rank=4), item


def _value_parser(tp: Any, where: str, *, show_none: bool = True) -> _Parser:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(tp)
        optional = type(None) in members
        parsers = sorted(
            (_value_parser(m, where, show_none=False) for m in members if m is not type(None)), key=lambda p: p.rank
        )
        if len(parsers) == 1 and not optional:
            return parsers[0]

        def parse_union(text: str) -> Any:
            if optional and text.strip().lower() in NONE_WORDS:
                return None
            for p in parsers:
                try:
                    return p.parse(text)
                except (argparse.ArgumentTypeError, ValueError, TypeError):
                    continue
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {metavar}")

        if all(p.words is not None for p in parsers):
            words = tuple(w for p in parsers for w in p.words) + (("none",) if optional else ())
            metavar = "{" + ",".join(words) + "}"
        else:
            metavar = "|".join(p.metavar for p in parsers) + ("|none" if optional and show_none else "")
        return _Parser(parse_union, metavar, None, rank=min(p.rank for p in parsers))
    if _is_sequence(tp):
        return _sequence_parser(tp, where)[0]
    return _scalar_parser(tp, where)


def converter_for(tp: Any) -> Callable[[str], Any]:
    """The function the generated flags use to read one token as type ``tp`` (for hand-written flags that
    should read values the same way); raises ``argparse.ArgumentTypeError`` on a bad value."""
    return _value_parser(tp, repr(tp)).parse


# ------------------------------------------------------------------------------------------------ field specs
@dataclasses.dataclass(frozen=True)
class _Spec:
    field: dataclasses.Field
    tp: Any
    positional: bool
    option_strings: tuple[str, ...]
    boolean: bool
    parser: _Parser | None  # None for boolean flags
    nargs: str | None
    per_token: bool  # nargs collects elements: the namespace holds a list to turn into the field's type


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _spec(f: dataclasses.Field, tp: Any, where: str) -> _Spec | None:
    """How field ``f`` (annotated ``tp``) appears on the command line; None: only through --set."""
    if _is_structured(tp):
        return None
    meta = f.metadata
    positional = bool(meta.get("positional", False))
    nargs = meta.get("nargs")
    default = _default_of(f)
    if positional:
        names: tuple[str, ...] = (f.name,)
    else:
        names = (meta.get("flag") or "--" + f.name.replace("_", "-"), *meta.get("aliases", ()))
    if tp is bool and not positional:
        if nargs is not None:
            raise TypeError(f"{where}: a bool flag takes no nargs")
        return _Spec(f, tp, False, names, True, None, None, False)
    per_token = nargs in ("*", "+")
    show_none = default is not None
    if per_token:
        seq = _non_none(tp)
        if len(seq) != 1 or not _is_sequence(seq[0]):
            raise TypeError(f"{where}: nargs={nargs!r} needs a tuple / list field, not {tp!r}")
        parser = _sequence_parser(seq[0], where)[1]
    else:
        parser = _value_parser(tp, where, show_none=show_none)
        if nargs is None and positional and default is not dataclasses.MISSING:
            nargs = "?"
    choices = meta.get("choices")
    if choices is not None:
        parser = _with_choices(parser, choices)
    return _Spec(f, tp, positional, names, False, parser, nargs, per_token)


def _with_choices(parser: _Parser, choices: tuple[Any, ...]) -> _Parser:
    allowed = ", ".join(str(c) for c in choices)

    def parse(text: str) -> Any:
        value = parser.parse(text)
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if v is not None and v not in choices:
                raise argparse.ArgumentTypeError(f"invalid choice {v!r} (choose from {allowed})")
        return value

    metavar = "{" + ",".join(str(c) for c in choices) + "}"
    if parser.rank == 4:  # a comma-separated list
        metavar += ",..."
    return _Parser(parse, metavar, tuple(str(c) for c in choices), parser.rank)


def _specs(cls: type, exclude: Iterable[str]) -> list[_Spec | tuple[dataclasses.Field, Any]]:
    """One entry per init field of ``cls`` not excluded: its _Spec, or (field, type) for a --set-only field."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    exclude = set(exclude)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    unknown = exclude - {f.name for f in fields}
    if unknown:
        raise ValueError(f"{cls.__name__}: exclude names no field: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    out: list[_Spec | tuple[dataclasses.Field, Any]] = []
    for f in fields:
        if f.name in exclude:
            continue
        spec = _spec(f, hints[f.name], f"{cls.__name__}.{f.name}")
        out.append(spec if spec is not None else (f, hints[f.name]))
    return out


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(_show(v) for v in value) if value else "empty"
    if isinstance(value, str) and value == "":
        return '""'
    return str(value)


def _help(spec: _Spec, defaults_from: object | None) -> str:
    f = spec.field
    text = f.metadata.get("help") or f.name.replace("_", " ")
    default = _default_of(f)
    if isinstance(defaults_from, Mapping):
        default = defaults_from.get(f.name, default)
    elif defaults_from is not None and hasattr(defaults_from, f.name):
        default = getattr(defaults_from, f.name)
    if default is dataclasses.MISSING:
        text += "" if spec.positional else " (required)"
    elif "(default" not in text:
        text += f" (default: {_show(default)})"
    return text.replace("%", "%%")  # argparse %-formats help texts


# ------------------------------------------------------------------------------------------------ the API
def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    exclude: Iterable[str] = (),
    defaults_from: object | None = None,
) -> None:
    """One flag (or positional argument) per top-level field of the dataclass ``cls``, except ``exclude``d
    ones and nested dataclasses / mappings (those only through --set). ``defaults_from`` (a config or a
    mapping, e.g. a preset) supplies the defaults shown in the help instead of the field defaults. Every
    argparse default is SUPPRESS: read the values with ``flag_values`` / ``config_from_args``."""
    for spec in _specs(cls, exclude):
        if not isinstance(spec, _Spec):
            continue
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": _help(spec, defaults_from)}
        if not spec.positional:
            kwargs["dest"] = spec.field.name
        if spec.boolean:
            parser.add_argument(*spec.option_strings, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        assert spec.parser is not None
        kwargs["type"] = spec.parser.parse
        metavar = spec.field.metadata.get("metavar") or (
            None if spec.positional else spec.parser.metavar.replace("TEXT", spec.field.name.upper())
        )
        if metavar is not None:
            kwargs["metavar"] = metavar
        if spec.nargs is not None:
            kwargs["nargs"] = spec.nargs
        parser.add_argument(*spec.option_strings, **kwargs)


def set_only_fields(cls: type, *, exclude: Iterable[str] = ()) -> list[str]:
    """Fields of ``cls`` without a flag of their own, as shown in the --set help (``clamp.{low, mid}``)."""
    out = []
    for spec in _specs(cls, exclude):
        if isinstance(spec, _Spec):
            continue
        f, tp = spec
        inner = _non_none(tp)
        if len(inner) == 1 and isinstance(inner[0], type) and dataclasses.is_dataclass(inner[0]):
            out.append(f"{f.name}.{{{', '.join(g.name for g in dataclasses.fields(inner[0]) if g.init)}}}")
        elif len(inner) == 1 and (inner[0] in (dict, Mapping) or typing.get_origin(inner[0]) in (dict, Mapping)):
            out.append(f"{f.name}.KEY")
        else:
            out.append(f.name)
    return out


def add_layering_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str, *, cls: type | None = None
) -> None:
    """``--config YAML`` and the repeatable ``--set KEY=VALUE`` of a ``what`` command (e.g. "cluster");
    with ``cls`` the --set help names the settings that have no flag of their own."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="YAML",
        help=f"YAML file with {what} settings, the same keys as the flags with underscores (flags and --set "
        "override it)",
    )
    text = (
        f"any {what} setting by its dotted name, the value read as YAML (e.g. --set key=3, --set key=[a,b], "
        "--set key=null); overrides the flags and --config; unknown keys are refused; repeatable"
    )
    only = set_only_fields(cls) if cls is not None else []
    if only:
        text += "; settings without a flag of their own: " + "; ".join(only)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=text.replace("%", "%%"))


def flag_values(args: argparse.Namespace, cls: type, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of ``cls`` the user gave on the command line, converted to the fields' types."""
    out: dict[str, Any] = {}
    for spec in _specs(cls, exclude):
        if not isinstance(spec, _Spec) or not hasattr(args, spec.field.name):
            continue
        value = getattr(args, spec.field.name)
        if spec.per_token:
            if spec.nargs == "*" and spec.positional and value == []:
                continue  # no tokens for an optional positional list: not given
            seq = _non_none(spec.tp)[0]
            value = list(value) if (typing.get_origin(seq) or seq) is list else tuple(value)
        out[spec.field.name] = value
    return out


def _flag_name(cls: type, name: str) -> str:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.metadata.get("positional"):
                return (f.metadata.get("metavar") or name).upper()
            return f.metadata.get("flag") or "--" + name.replace("_", "-")
    return name


def config_from_args(
    cls: type,
    args: argparse.Namespace,
    *,
    fixed: Mapping[str, Any] | None = None,
    exclude: Iterable[str] = (),
    extra_flags: Mapping[str, Any] | None = None,
) -> Any:
    """The frozen config ``cls`` from parsed arguments: ``args.config`` (YAML) < ``fixed`` (dotted keys, e.g.
    values of hand-written arguments) < the generated flags the user typed, then ``extra_flags`` (dotted
    keys, e.g. of a hand-written shorthand flag; a None value sets None) < ``args.set`` (``--set key=value``).
    A required field (no default) given by none of them is a ValueError naming its flag."""
    tree: dict[str, Any] = load_yaml(args.config) if getattr(args, "config", None) else {}
    for key, value in (fixed or {}).items():
        set_path(tree, key, value)
    flags = flag_values(args, cls, exclude=exclude)
    flags.update(extra_flags or {})
    sets = list(getattr(args, "set", None) or [])
    given = set(tree) | {k.split(".")[0] for k in flags} | {k.split(".")[0] for k, _ in parse_set(sets)}
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in given
    ]
    if missing:
        raise ValueError(
            f"{cls.__name__}: missing required setting(s) "
            + ", ".join(f"{name} ({_flag_name(cls, name)}, or {name}: in the --config YAML)" for name in missing)
        )
    return layered(cls, tree, flags, sets, keep_none=True)
