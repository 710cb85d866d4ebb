"""The command line: ``python -m labutils {examples,transfer,compare,bench,sweep,runs}``.

``transfer`` runs one attempt and saves a run folder; ``compare`` runs several attempts on one
pair (or ``--benchmark``: the quality benchmark over many pairs) and scores them; ``bench`` is
the speed benchmark; ``examples`` lists the bundled clips; ``runs`` lists past runs. The flags of
``transfer``, ``compare`` and ``bench`` are generated from the attempts' config dataclasses, read
through the attempts registry. Bad input exits with code 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import warnings
from typing import Any, Sequence

# Only what parsing needs is imported here: torch and the modules built on it load when a command
# runs, so that `--help` answers at once.
from . import attempts
from .config import TransferConfig
from .errors import ConfigError, LabError

DEFAULT_OUT = "outputs"  # labutils.runs.DEFAULT_OUT, without importing torch to learn it


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise LabError(f"{message} (see `python -m labutils {self.prog.split()[-1]} --help`)")


def _fields() -> dict[str, dataclasses.Field]:
    """Every config field of every attempt, by name (first definition wins)."""
    seen: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TransferConfig)}
    for attempt in attempts.ATTEMPTS.values():
        for f in dataclasses.fields(attempt.config):
            seen.setdefault(f.name, f)
    return seen


def _owners(name: str) -> list[str]:
    return [a.name for a in attempts.ATTEMPTS.values() if name in {f.name for f in dataclasses.fields(a.config)}]


def _flag(f: dataclasses.Field) -> str:
    return "--" + f.metadata.get("cli", f.name).replace("_", "-")


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def _defaults(name: str) -> str:
    """'1000' or '1000 for caracalla-roebel, 6000 for vgg19' when the attempts differ."""
    values: dict[str, list[str]] = {}
    for a in attempts.ATTEMPTS.values():
        for f in dataclasses.fields(a.config):
            if f.name == name:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                values.setdefault(_show(default), []).append(a.name)
    if len(values) == 1:
        return next(iter(values))
    return "; ".join(f"{v} for {', '.join(who)}" for v, who in values.items())


def _parse_value(f: dataclasses.Field, text: str) -> Any:
    kind = str(f.type)
    if isinstance(text, bool):
        return text
    try:
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


def _parse_betas(text: str) -> list[float]:
    try:
        betas = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--beta {text!r}: give a number or a comma list of numbers, e.g. 0.001,0.01") from None
    if not betas:
        raise ConfigError("--beta: give a number or a comma list of numbers, e.g. 0.001,0.01")
    return betas


def _help(name: str, shared: set[str]) -> str:
    """A field's meaning; where attempts give one name different meanings, each says its own."""
    if name in shared:
        return _fields()[name].metadata.get("help", "")
    meanings: dict[str, list[str]] = {}
    for a in attempts.ATTEMPTS.values():
        for f in dataclasses.fields(a.config):
            if f.name == name:
                meanings.setdefault(f.metadata.get("help", ""), []).append(a.name)
    if len(meanings) == 1:
        return next(iter(meanings))
    return "; ".join(f"{', '.join(who)}: {text}" for text, who in meanings.items())


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field, grouped: shared by every attempt, then each attempt's own, then
    those a few attempts share (one heading per set of attempts)."""
    shared = {f.name for f in dataclasses.fields(TransferConfig)}
    groups = {("*",): parser.add_argument_group("options of every attempt")}
    for a in attempts.ATTEMPTS.values():
        groups[(a.name,)] = parser.add_argument_group(f"options of {a.name} only")
    for name, f in _fields().items():
        meta = f.metadata
        owners = tuple(_owners(name))
        key = ("*",) if name in shared else owners
        if key not in groups:
            groups[key] = parser.add_argument_group(f"options of {', '.join(owners)}")
        group = groups[key]
        extra = f"; one of {', '.join(meta['choices'])}" if "choices" in meta else ""
        if name == "beta":
            extra += "; a comma list (0.001,0.01,0.1) makes one result per value"
        if name == "duration":
            shortest: dict[str, list[str]] = {}
            for a in attempts.ATTEMPTS.values():
                shortest.setdefault(f"{a.config.min_seconds:g} s", []).append(a.name)
            extra += "; a shorter clip is refused: at least " + (next(iter(shortest)) if len(shortest) == 1 else
                                                                 ", ".join(f"{v} for {', '.join(w)}" for v, w in shortest.items()))
        helptext = f"{_help(name, shared)}{extra} (default: {_defaults(name)})".replace("%", "%%")
        if str(f.type) == "bool":
            group.add_argument(_flag(f), dest=name, default=None, action=argparse.BooleanOptionalAction,
                               help=helptext)
        else:
            metavar = {"tuple": "A,B,..", "int": "N", "float": "X"}.get(str(f.type), "TEXT")
            if "choices" in meta:
                metavar = "{" + ",".join(meta["choices"]) + "}"
            group.add_argument(_flag(f), dest=name, default=None, metavar=metavar, help=helptext)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _fields() if getattr(args, name, None) is not None}


def _config_from(args: argparse.Namespace) -> tuple[TransferConfig, list[float] | None]:
    """The config of ``args.method`` from its flags, and the beta list when more than one."""
    cls = attempts.get(args.method).config
    own = {f.name: f for f in dataclasses.fields(cls)}
    values, betas = {}, None
    for name, text in _given(args).items():
        if name not in own:
            raise ConfigError(f"{_flag(_fields()[name])} does not apply to --method {args.method} "
                              f"(it is an option of {', '.join(_owners(name))})")
        if name == "beta":
            betas = _parse_betas(text)
            values["beta"] = betas[0]
            continue
        values[name] = _parse_value(own[name], text)
    cfg = cls(**values).validate()
    return cfg, (betas if betas and len(betas) > 1 else None)


def _configs_for(args: argparse.Namespace, methods: list[str]) -> dict[str, TransferConfig]:
    """Label -> config from the shared flags; a flag applies to the methods that have it, and a
    beta list makes one entry per value (``"caracalla-roebel beta=0.001"``)."""
    for m in methods:
        attempts.get(m)
    given = _given(args)
    for name in given:
        if not any(m in _owners(name) for m in methods):
            raise ConfigError(f"{_flag(_fields()[name])} applies to none of the methods {', '.join(methods)}")
    betas = _parse_betas(given.pop("beta")) if "beta" in given else None
    configs: dict[str, TransferConfig] = {}
    for method in methods:
        own = {f.name: f for f in dataclasses.fields(attempts.get(method).config)}
        values = {n: _parse_value(own[n], t) for n, t in given.items() if n in own}
        if betas is None or "beta" not in own:
            configs[method] = attempts.get(method).config(**values).validate()
        else:
            for b in betas:
                label = method if len(betas) == 1 else f"{method} beta={b:g}"
                configs[label] = attempts.get(method).config(**values, beta=b).validate()
    return configs


def _cmd_compare(args: argparse.Namespace) -> int:
    from . import evaluate, runs

    if args.split not in evaluate.SPLITS:
        raise ConfigError(f"--split {args.split!r}: choose one of {', '.join(evaluate.SPLITS)}")
    methods = [m for m in args.methods.split(",") if m] if args.methods else attempts.names()
    if methods == ["none"]:  # the calibration rows alone
        if not args.benchmark:
            raise ConfigError("--methods none goes with --benchmark (the calibration rows of every triple)")
        methods = []
    configs = _configs_for(args, methods) if methods else {}
    runs.check_out_dir(args.out)
    if args.benchmark:
        means, folder = evaluate.quality_benchmark(methods=[], configs=configs, out_dir=args.out, split=args.split,
                                                   limit=args.triples, progress=not args.quiet,
                                                   duration=float(args.duration) if args.duration else None)
        print((folder / "summary.md").read_text())
        if args.write_readme:
            evaluate.write_into_readme(folder / "summary.md", args.write_readme,
                                       block=None if args.split == "test" else args.split)
            print(f"wrote the table into {args.write_readme}", file=sys.stderr)
        if (folder / "report.html").is_file():
            print(f"listen: {folder / 'report.html'}")
        print(folder)
        return 0
    if args.write_readme or args.triples or args.split != "bundled":
        raise ConfigError("--split, --triples and --write-readme go with --benchmark")
    if not args.content or not args.style:
        raise ConfigError("compare needs --content and --style (or --benchmark for the whole benchmark set)")
    comp = evaluate.compare(args.content, args.style, truth=args.truth, configs=configs, out_dir=args.out,
                            progress=not args.quiet)
    print((comp.folder / "metrics.md").read_text())
    if (comp.folder / "report.html").is_file():
        print(f"listen: {comp.folder / 'report.html'}")
    print(comp.folder)
    return 0


def _cmd_examples(args: argparse.Namespace) -> int:
    from . import audio as A

    clips = A.catalog()
    print(f"{'name':<20} {'seconds':>7}  {'instrument':<11} {'kind':<9} source")
    for clip in clips.values():
        print(f"{clip.name:<20} {clip.duration:>7.2f}  {clip.instrument:<11} {clip.kind:<9} {clip.source}")
    triples = A.benchmark_triples()
    if triples:
        print(f"\n{len(triples)} benchmark triples (content + style -> truth): `python -m labutils compare --benchmark`")
    return 0


#: a run expected to take longer than this (seconds) gets its estimate printed before it goes on
ESTIMATE_ABOVE_S = 60.0


def _cmd_transfer(args: argparse.Namespace) -> int:
    from . import runs, speed, transfer
    from .optim import pick_device

    cfg, betas = _config_from(args)
    if not args.dry_run:
        runs.check_out_dir(args.out)
    content, style, names = transfer.load_pair(args.content, args.style, cfg)
    for line in names.get("notes", []):
        print(f"note: {line}", file=sys.stderr)
    device = pick_device(cfg.device)
    if args.dry_run:
        est = speed.estimate(args.method, content, style, cfg, betas=betas)
        print(f"{args.method}: {names['content']} in the style of {names['style']} on {device}: {est.text()}")
        return 0
    steps = getattr(cfg, "steps_meaning", "") or runs.steps_text(cfg.steps)
    print(f"{args.method}: {names['content']} in the style of {names['style']}, {steps} on {device}", file=sys.stderr)
    said = []

    def say_estimate(info: Any, spec: Any) -> None:
        # after the first steps of the run itself: the same sum as `--dry-run`, from this run's steps
        if said:
            return
        said.append(info.step)
        per_step = info.elapsed / info.step
        left = per_step * (info.steps - info.step)
        if info.elapsed + left > ESTIMATE_ABOVE_S:
            print(f"estimate: {info.steps} steps x {per_step:.2f} s per step measured = about "
                  f"{speed.duration_text(info.steps * per_step)} on this machine (Ctrl-C keeps the steps done)",
                  file=sys.stderr)

    result = transfer.solve(args.method, content, style, cfg, betas=betas, progress=not args.quiet,
                            callback=say_estimate, every=3, preview_every=10**9)
    result.names = names
    if result.weights.get("note"):
        print(f"note: {result.weights['note']}", file=sys.stderr)
    if result.message:
        print(f"note: {result.message}", file=sys.stderr)
    if result.interrupted and result.steps_done == 0:
        print("error: interrupted before the first step; nothing to save", file=sys.stderr)
        return 130
    folders = runs.save(result, out_dir=args.out)
    for folder in folders:
        print(folder)
    return 130 if result.interrupted else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import speed, transfer

    cfg, betas = _config_from(args)
    content, style, _ = transfer.load_pair(args.content, args.style, cfg)
    report = speed.speed_benchmark(args.method, content, style, cfg, steps=args.repeat, betas=betas,
                                   reference=not args.no_reference)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            if key != "settings":
                print(f"{key:>22}: {value}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from . import runs, sweep

    if args.resume is None and not args.grid:
        raise ConfigError("sweep needs --grid \"field=v1,v2 other=v3\" (or --resume FOLDER)")
    base: dict[str, Any] = {}
    grid = args.grid or ""
    if args.resume is None:
        cls = attempts.get(args.method).config
        own = {f.name: f for f in dataclasses.fields(cls)}
        for name, text in _given(args).items():
            if name not in own:
                raise ConfigError(f"{_flag(_fields()[name])} does not apply to --method {args.method}")
            if name == "beta" and "," in str(text) and "beta=" not in grid:
                grid += f" beta={text}"  # a beta list is one more grid axis
                continue
            base[name] = _parse_value(own[name], text)
        cls(**base).validate()
        runs.check_out_dir(args.out)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            triples, source = sweep.split_triples(args.split, limit=args.triples)
        for w in caught:
            print(f"note: {w.message}", file=sys.stderr)
    else:
        triples, source = None, None
    result = sweep.sweep(grid, method=args.method, base=base, triples=triples, source=source, out_dir=args.out,
                         resume=args.resume, executor=args.executor, progress=not args.quiet,
                         compare_with=args.compare_with or ())
    print((result.folder / "summary.md").read_text())
    axes = sweep.axis_table(result)
    if axes:
        print("Each axis's values, averaged over the cells that have them:\n\n" + axes + "\n")
    print(f"{result.ran} tasks run, {result.skipped} already done, {result.seconds:.1f} s; best on this split: "
          f"{result.best}")
    if (result.folder / "report.html").is_file():
        print(f"listen: {result.folder / 'report.html'}")
    print(result.folder)
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from . import runs

    rows = runs.list_runs(args.out)
    if not rows:
        print(f"no runs under {args.out}/ yet; start one with `python -m labutils transfer ...`")
    for row in rows:
        partial = "  (partial)" if row.get("partial") else ""
        print(f"{row['path']}  steps={row['steps']}  {row['wall_time_s']} s{partial}")
    return 0


EXAMPLES = {
    "transfer": """examples:
  python -m labutils transfer --content moonlight_piano --style ode_violin --steps 300 --duration 3
  python -m labutils transfer --content my_song.ogg --offset auto --style drums_loop --beta 0.001,0.01
  python -m labutils transfer --method ddsp --content ode_piano --style ode_violin --dry-run
  python -m labutils examples        (the bundled clip names)""",
    "bench": """examples:
  python -m labutils bench --method caracalla-roebel --json
  python -m labutils bench --domain waveform --filters 128 --repeat 3""",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (flags generated from the registered attempts)."""
    methods = ", ".join(attempts.names())
    parser = _Parser(prog="labutils", description="Audio style transfer lab")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("examples", help="list the bundled clips")
    p.set_defaults(func=_cmd_examples)
    for name, func, helptext in (("transfer", _cmd_transfer, "run one attempt on a content and a style clip"),
                                 ("bench", _cmd_bench, "speed benchmark: time steps against the reference")):
        p = sub.add_parser(name, help=helptext, description=helptext, epilog=EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--method", default="caracalla-roebel", help=f"one of {methods} (default: caracalla-roebel)")
        p.add_argument("--content", default="moonlight_piano" if name == "bench" else None,
                       required=name == "transfer", help="content clip: a path or a bundled clip name")
        p.add_argument("--style", default="ode_violin" if name == "bench" else None,
                       required=name == "transfer", help="style clip: a path or a bundled clip name")
        p.set_defaults(func=func)
        if name == "transfer":
            p.add_argument("--out", default=DEFAULT_OUT, help="folder under which the run folder is made (default: outputs)")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.add_argument("--dry-run", action="store_true",
                           help="only say how long the run would take here (times a few steps; saves nothing)")
        else:
            p.add_argument("--json", action="store_true", help="print one JSON object")
            p.add_argument("--repeat", type=int, default=5, help="timed steps, after 2 warm-up steps (default: 5)")
            p.add_argument("--no-reference", action="store_true", help="skip timing the reference path")
        _add_config_flags(p)
    p = sub.add_parser("compare", help="run several attempts on one pair (or the quality benchmark) and score them")
    p.add_argument("--content", help="content clip: a path or a bundled clip name")
    p.add_argument("--style", help="style clip: a path or a bundled clip name")
    p.add_argument("--truth", help="the right answer, when it exists (content's melody on the style's instrument)")
    p.add_argument("--methods", help=f"comma list from {methods} (default: all; with --benchmark, none: the "
                                     f"calibration rows alone)")
    p.add_argument("--benchmark", action="store_true",
                   help="quality benchmark: every triple of --split, mean scores and the calibration rows")
    p.add_argument("--split", default="bundled", metavar="SPLIT",
                   help="with --benchmark: bundled (the 12 bundled triples), or a split of the rendered set, "
                        "dev, test, ... (labutils.evaluate.SPLITS; checked when the command runs) "
                        "(`make benchmark-data`; scored with the instrument probe) (default: bundled)")
    p.add_argument("--triples", type=int, default=None, metavar="N", help="with --benchmark: the first N triples only")
    p.add_argument("--write-readme", metavar="README", default=None,
                   help="with --benchmark: also write the table into README's generated quality block")
    p.add_argument("--out", default=DEFAULT_OUT, help="folder under which the report folder is made (default: outputs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_compare, method=None)
    p = sub.add_parser("sweep", help="run a grid of settings over a benchmark split, score every cell, "
                       "write a CSV, a table and a Pareto plot (resumable)",
                       description="Sweep: every cell of --grid on every triple of --split, scored. The config "
                       "flags below set what the cells start from; the grid overrides them.")
    p.add_argument("--method", default="caracalla-roebel", help=f"one of {methods} (default: caracalla-roebel)")
    p.add_argument("--grid", help="space-separated field=v1,v2 items over any config fields, e.g. "
                   "\"statistic=per-frequency,time-frequency beta=0.001,0.01\" (tuple values join elements with /)")
    p.add_argument("--split", default="dev", help="benchmark split: dev or test (default: dev; the bundled triples "
                   "when the rendered set is missing)")
    p.add_argument("--triples", type=int, default=None, help="use only the first N triples of the split")
    p.add_argument("--resume", default=None, metavar="FOLDER", help="finish an interrupted sweep folder "
                   "(running the same sweep again finds its folder too)")
    p.add_argument("--compare-with", action="append", default=None, metavar="FOLDER",
                   help="a quality-benchmark folder (compare --benchmark) whose method rows the Pareto plot "
                   "draws beside the cells (repeatable; with --resume of a finished sweep: redraw only)")
    p.add_argument("--executor", default=None, help="where cells run: local (default) or dask://HOST:PORT "
                   "(a dask.distributed scheduler)")
    p.add_argument("--out", default=DEFAULT_OUT, help="folder under which the sweep folder is made (default: outputs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("runs", help="list past runs")
    p.add_argument("--out", default=DEFAULT_OUT, help="folder holding the run folders (default: outputs)")
    p.set_defaults(func=_cmd_runs)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a `timeout`, a closed terminal) raised where Ctrl-C would be, so that it ends a run the
    same way: the steps done are saved as a partial run."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated("terminated (SIGTERM)")


def main(argv: Sequence[str] | None = None) -> int:
    # the lab's own warnings (e.g. random weights offline) are printed as one "note:" line instead
    warnings.filterwarnings("ignore", category=UserWarning, module=r"labutils\..*")
    terminated = []

    def on_sigterm(signum: int, frame: Any) -> None:
        terminated.append(signum)
        _on_sigterm(signum, frame)

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (called from a test's thread): leave SIGTERM alone
        previous = None
    try:
        args = build_parser().parse_args(argv)
        from .optim import tune_allocator

        tune_allocator()  # process-wide, explicit: see labutils.optim.tune_allocator
        code = args.func(args)
        return 143 if terminated and code == 130 else code
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        what = "terminated" if terminated else "interrupted"
        print(f"error: {what} before a run started; nothing was saved", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
