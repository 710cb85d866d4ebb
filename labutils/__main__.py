"""The command line: ``python -m labutils {examples,transfer,bench,runs}``.

Flags of ``transfer`` and ``bench`` are generated from the config dataclasses (labutils.config).
Bad input exits with code 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from typing import Any, Sequence

from . import audio as A
from . import runs, transfer
from .config import CONFIGS
from .errors import ConfigError, LabError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise LabError(f"{message} (see `python -m labutils {self.prog.split()[-1]} --help`)")


def _fields() -> dict[str, dataclasses.Field]:
    """Every config field of every method, by name (first definition wins)."""
    seen: dict[str, dataclasses.Field] = {}
    for cls in CONFIGS.values():
        for f in dataclasses.fields(cls):
            seen.setdefault(f.name, f)
    return seen


def _flag(f: dataclasses.Field) -> str:
    return "--" + f.metadata.get("cli", f.name).replace("_", "-")


def _parse_value(f: dataclasses.Field, text: str) -> Any:
    kind = str(f.type)
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "tuple":
            items = [x for x in text.replace(" ", "").split(",") if x]
            kinds = {type(v) for v in f.default_factory()} if f.default_factory is not dataclasses.MISSING else {str}
            return tuple(int(x) if kinds == {int} else (float(x) if kinds == {float} else x) for x in items)
        return text
    except ValueError:
        raise ConfigError(f"{_flag(f)} {text!r}: not a valid {kind}") from None


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    for name, f in _fields().items():
        meta = f.metadata
        extra = f" (one of {', '.join(meta['choices'])})" if "choices" in meta else ""
        if name == "beta":
            extra = "; a comma list (0.001,0.01,0.1) optimises one result per value in one batch"
        parser.add_argument(_flag(f), dest=name, default=None, metavar=name.upper(),
                            help=meta.get("help", "") + extra)


def _config_from(args: argparse.Namespace):
    method = args.method
    if method not in CONFIGS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(CONFIGS)}")
    cls = CONFIGS[method]
    own = {f.name: f for f in dataclasses.fields(cls)}
    values, betas = {}, None
    for name, f in _fields().items():
        text = getattr(args, name)
        if text is None:
            continue
        if name not in own:
            raise ConfigError(f"{_flag(f)} does not apply to --method {method}")
        if name == "beta":
            try:
                betas = [float(x) for x in text.split(",") if x.strip()]
            except ValueError:
                raise ConfigError(f"--beta {text!r}: give a number or a comma list of numbers") from None
            values["beta"] = betas[0] if betas else float("nan")
            continue
        values[name] = _parse_value(own[name], text)
    cfg = cls(**values).validate()
    return cfg, (betas if betas and len(betas) > 1 else None)


def _configs_for(args: argparse.Namespace, methods: list[str]) -> dict[str, Any]:
    """One config per method from the shared flags; a flag applies to the methods that have it."""
    unknown = [m for m in methods if m not in CONFIGS]
    if unknown:
        raise ConfigError(f"unknown method {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    given = {name: getattr(args, name) for name in _fields() if getattr(args, name) is not None}
    for name in given:
        if not any(name in {f.name for f in dataclasses.fields(CONFIGS[m])} for m in methods):
            raise ConfigError(f"{_flag(_fields()[name])} applies to none of the methods {', '.join(methods)}")
    configs = {}
    for method in methods:
        own = {f.name: f for f in dataclasses.fields(CONFIGS[method])}
        values = {n: _parse_value(own[n], t) for n, t in given.items() if n in own}
        configs[method] = CONFIGS[method](**values).validate()
    return configs


def _cmd_compare(args: argparse.Namespace) -> int:
    methods = [m for m in args.methods.split(",") if m] if args.methods else list(transfer.METHODS)
    configs = _configs_for(args, methods)
    runs.check_out_dir(args.out)
    if args.benchmark:
        means, folder = runs.benchmark(methods=methods, configs=configs, out_dir=args.out, progress=not args.quiet)
        print((folder / "summary.md").read_text())
        print(folder)
        return 0
    if not args.content or not args.style:
        raise ConfigError("compare needs --content and --style (or --benchmark for the whole benchmark set)")
    comp = runs.compare(args.content, args.style, truth=args.truth, methods=methods, configs=configs,
                        out_dir=args.out, progress=not args.quiet)
    print((comp.folder / "metrics.md").read_text())
    print(comp.folder)
    return 0


def _cmd_examples(args: argparse.Namespace) -> int:
    clips = A.catalog()
    print(f"{'name':<20} {'seconds':>7}  {'instrument':<11} {'kind':<9} source")
    for clip in clips.values():
        print(f"{clip.name:<20} {clip.duration:>7.2f}  {clip.instrument:<11} {clip.kind:<9} {clip.source}")
    triples = A.benchmark_triples()
    if triples:
        print(f"\n{len(triples)} benchmark triples (content + style -> truth): `python -m labutils compare --benchmark`")
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    cfg, betas = _config_from(args)
    runs.check_out_dir(args.out)
    content, style, names = transfer.load_pair(args.content, args.style, cfg)
    device = transfer.pick_device(cfg.device)
    print(f"{args.method}: {names['content']} in the style of {names['style']}, {cfg.steps} steps on {device}",
          file=sys.stderr)
    result = transfer.solve(args.method, content, style, cfg, betas=betas, progress=not args.quiet)
    result.names = names
    if result.weights.get("note"):
        print(f"note: {result.weights['note']}", file=sys.stderr)
    if result.message:
        print(f"note: {result.message}", file=sys.stderr)
    folders = runs.save(result, out_dir=args.out)
    for folder in folders[:-1]:
        print(folder)
    print(folders[-1])
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    cfg, betas = _config_from(args)
    content, style, _ = transfer.load_pair(args.content, args.style, cfg)
    report = transfer.benchmark(args.method, content, style, cfg, steps=args.repeat, betas=betas,
                                reference=not args.no_reference)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            if key != "settings":
                print(f"{key:>22}: {value}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    rows = runs.list_runs(args.out)
    if not rows:
        print(f"no runs under {args.out}/ yet; start one with `python -m labutils transfer ...`")
    for row in rows:
        print(f"{row['path']}  steps={row['steps']}  {row['wall_time_s']} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="labutils", description="Audio style transfer lab")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("examples", help="list the bundled clips")
    p.set_defaults(func=_cmd_examples)
    for name, func, helptext in (("transfer", _cmd_transfer, "run one attempt on a content and a style clip"),
                                 ("bench", _cmd_bench, "time one step against the reference implementation")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--method", default="caracalla-roebel", help=f"one of {', '.join(CONFIGS)}")
        p.add_argument("--content", default="moonlight_piano" if name == "bench" else None,
                       required=name == "transfer", help="content clip: a path or a bundled clip name")
        p.add_argument("--style", default="ode_violin" if name == "bench" else None,
                       required=name == "transfer", help="style clip: a path or a bundled clip name")
        _add_config_flags(p)
        p.set_defaults(func=func)
        if name == "transfer":
            p.add_argument("--out", default=str(runs.DEFAULT_OUT), help="folder under which the run folder is made")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
        else:
            p.add_argument("--json", action="store_true", help="print one JSON object")
            p.add_argument("--repeat", type=int, default=5, help="timed steps (after 2 warm-up steps)")
            p.add_argument("--no-reference", action="store_true", help="skip timing the reference path")
    p = sub.add_parser("compare", help="run several attempts on one pair (or the benchmark set) and score them")
    p.add_argument("--content", help="content clip: a path or a bundled clip name")
    p.add_argument("--style", help="style clip: a path or a bundled clip name")
    p.add_argument("--truth", help="the right answer, when it exists (content's melody on the style's instrument)")
    p.add_argument("--methods", help=f"comma list from {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--benchmark", action="store_true", help="run every benchmark triple and print mean scores")
    p.add_argument("--out", default=str(runs.DEFAULT_OUT), help="folder under which the report folder is made")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_compare, method=None)
    p = sub.add_parser("runs", help="list past runs")
    p.add_argument("--out", default=str(runs.DEFAULT_OUT))
    p.set_defaults(func=_cmd_runs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # the lab's own warnings (e.g. random weights offline) are printed as one "note:" line instead
    warnings.filterwarnings("ignore", category=UserWarning, module=r"labutils\..*")
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("error: interrupted; nothing was saved for this run", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
