"""``bubblelens classify``, ``bubblelens train`` and ``bubblelens evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from ..errors import BubbleLensError
from ..store import Store
from .options import CODEBOOK, DB, ENCODER, SPONSORS

__all__ = ["classify", "evaluate", "train"]



@click.command()
@DB
@CODEBOOK
@SPONSORS
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A trained head directory (bubblelens train); it decides its own task. Repeatable. "
                   "--saved-heads takes the heads the Label page saved next to the store instead.")
@click.option("--saved-heads", is_flag=True,
              help="Score with the heads refitted from the store's labels (<db>.heads/<task>, the Label page) "
                   "where no --model is given; without it they are only announced, with their figure.")
@ENCODER
@click.option("--camps", "camp_set", type=click.Choice(["default", "generic"]), default="default",
              show_default=True, help="The codebook's camps, or its generic left/centre/right set.")
@click.option("--sponsor-pooling", type=click.Choice(["mean", "logsum", "off"]), default="mean", show_default=True,
              help="Pool the text camps of each sponsor's ads into one sponsor camp (source sponsor_pooled): "
                   "mean of the probabilities of the ads the text classifier names, or their summed logs.")
@click.option("--transductive", is_flag=True,
              help="Zero-shot camps learn from the store's own messages: per sponsor where every camp has at "
                   "least 20 sponsors (centred codebook scores, confident sponsors as pseudo-labels, a head "
                   "cross-fitted by sponsor, one round), else per message (iterated until stable); "
                   "docs/classify.md.")
@click.option("--english-encoder", default=None,
              help="Score messages in English with this encoder (e.g. st:minilm), the others with --encoder "
                   "(zero-shot only; each message's encoder is recorded in scores.encoder_id).")
def classify(db: str, codebook: str | None, sponsors: str | None, models: tuple[str, ...], saved_heads: bool,
             encoder: str, camp_set: str, sponsor_pooling: str, transductive: bool, english_encoder: str | None) -> None:
    """Score every message of the store: narrative and camp, with probability and source."""
    from ..classify import classify_store, load_codebook

    with Store.open(db) as store:
        run_id = classify_store(store, codebook=load_codebook(codebook, sponsors=sponsors), encoder=encoder, models=models, camp_set=camp_set,
                                progress=True, sponsor_pooling=None if sponsor_pooling == "off" else sponsor_pooling,
                                transductive=transductive, english_encoder=english_encoder,
                                use_saved_heads=saved_heads)
        row = store.con.execute("SELECT inputs, timings FROM runs WHERE run_id = ?", [run_id]).fetchone()
        assert row is not None
        inputs, timings = json.loads(row[0]), json.loads(row[1])
        saved = store.con.execute("SELECT params FROM runs WHERE run_id = ?", [run_id]).fetchone()
        for head in json.loads(saved[0]).get("saved_heads", []) if saved else []:
            click.echo(f"using the head refitted from this store's labels: {head}")
        if not saved_heads and not models:
            _announce_saved_heads(db)
        click.echo(f"{run_id}: {inputs['messages']:,} messages scored in {timings['total_s']:.1f} s "
                   f"({inputs['n_encoded']:,} texts embedded, {inputs['n_cached']:,} from the cache)")
        for w in inputs.get("warnings", []):
            click.echo(w, err=True)
        sp = inputs.get("sponsor_pooling") or {}
        if sp.get("sponsors_pooled"):
            click.echo(f"  sponsor pooling: {sp['ads_pooled']:,} ads of {sp['sponsors_pooled']:,} sponsors get their "
                       f"sponsor's camp from text; {sp['sponsors_few_ads']:,} of these sponsors' camps rest on fewer "
                       f"than {sp['few_ads']} ads ({sp['ads_of_sponsors_few_ads']:,} ads)")
            if sp.get("ads_unassigned_views_disagree"):
                click.echo(f"  {sp['ads_unassigned_views_disagree']:,} ads unassigned: their sponsor's camp from the "
                           "codebook and from the head learnt on the corpus disagree")
        for task in ("narrative", "camp"):
            rows = store.con.execute(
                "SELECT label, count(*) FROM scores WHERE task = ? GROUP BY 1 ORDER BY 2 DESC, 1", [task]
            ).fetchall()
            click.echo(f"  {task}: " + ", ".join(f"{lab} {n:,}" for lab, n in rows))


def _announce_saved_heads(db: str) -> None:
    """One line per head the Label page saved for this store, with its figure: they are used on request only."""
    from ..classify.labelling import TASKS, heads_dir, saved_report

    for task in TASKS:
        rep = saved_report(db, task)
        if rep is None:
            continue
        click.echo(f"a {task} head refitted from {rep.get('n_labels', '?')} labels of this store is saved in "
                   f"{heads_dir(db).name}/{task} (macro-F1 {rep.get('macro_f1', float('nan')):.3f} on sponsors it "
                   f"never saw, majority class {rep.get('baseline_macro_f1', float('nan')):.3f}): "
                   "--saved-heads scores with it")


def _read_table(path: str) -> pd.DataFrame:
    p = Path(path)
    suf = p.suffix.lower()
    try:
        if suf == ".parquet":
            return pd.read_parquet(p)
        if suf in (".jsonl", ".ndjson"):
            return pd.read_json(p, lines=True, dtype=False)
        return pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as e:
        raise BubbleLensError(f"cannot read {path}: {e}") from e


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Labelled messages: CSV, JSONL or Parquet.")
@click.option("--text-column", required=True)
@click.option("--label-column", required=True)
@click.option("--task", required=True, type=click.Choice(["narrative", "camp"]))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory for the head.")
@ENCODER
@click.option("--features", type=click.Choice(["hybrid", "embedding", "tfidf"]), default="hybrid",
              show_default=True, help="TF-IDF n-grams + embeddings, embeddings only, or TF-IDF only.")
@click.option("--C", "C", default="auto", show_default=True,
              help="Inverse regularization strength, or auto: the one of 1 and 10 whose held-out predictions have "
                   "the lower log-loss (each is cross-validated; the report shows both).")
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--group-column", default=None,
              help="Sponsor or author of each message: cross-validation folds hold out whole groups "
                   "(StratifiedGroupKFold), the figure for sponsors the head never saw.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="Fit a temperature on the held-out probabilities so that the head's probabilities are "
                   "calibrated (softmax(log p / T), same labels; docs/calibration.md).")
@click.option("--min-precision", type=click.FloatRange(0.0, 1.0, min_open=True), default=None,
              help="Abstain (unassigned) below the threshold chosen on the held-out folds so that the "
                   "assigned labels reach this precision (e.g. 0.8); saved as the head's threshold.")
def train(input_path: str, text_column: str, label_column: str, task: str, out_dir: str, encoder: str,
          features: str, C: str, folds: int, group_column: str | None, seed: int, calibrate: bool,
          min_precision: float | None) -> None:
    """Fit a supervised head, print its cross-validated report, save it (JSON + npz, no pickle)."""
    from ..classify import CampClassifier, NarrativeClassifier
    from ..classify.evaluate import cross_validate
    from ..classify.supervised import C_CANDIDATES
    from ..embed import get_encoder

    df = _read_table(input_path)
    for c in (text_column, label_column) + ((group_column,) if group_column else ()):
        if c not in df.columns:
            raise BubbleLensError(f"{input_path} has no column {c!r} (columns: {', '.join(map(str, df.columns))})")
    df = df[df[text_column].notna() & df[label_column].notna()]
    df = df[df[text_column].astype(str).str.strip() != ""]
    texts, y = df[text_column].astype(str).tolist(), df[label_column].astype(str).tolist()
    if len(set(y)) < 2:
        raise BubbleLensError("training needs at least two classes")
    enc = get_encoder(encoder)
    X = None if features == "tfidf" else enc.encode(texts, progress=True)
    groups = None
    if group_column:
        gcol = df[group_column]
        if gcol.isna().any() or (gcol.astype(str).str.strip() == "").any():
            bad = int(np.flatnonzero((gcol.isna() | (gcol.astype(str).str.strip() == "")).to_numpy())[0])
            raise BubbleLensError(f"{input_path}: data row {int(df.index[bad]) + 1} has no {group_column!r} "
                                  "(every message needs its group for grouped cross-validation)")
        groups = gcol.astype(str).tolist()
    if C.strip().lower() == "auto":
        candidates = list(C_CANDIDATES)
    else:
        try:
            candidates = [float(C)]
        except ValueError:
            raise BubbleLensError(f"--C must be a positive number or auto, not {C!r}") from None
        if not candidates[0] > 0:
            raise BubbleLensError(f"--C must be a positive number or auto, not {C!r}")
    reps = {c: cross_validate(texts, y, X, task=task, features=features, C=c, folds=folds, random_state=seed,
                              groups=groups, calibrate=calibrate, min_precision=min_precision) for c in candidates}
    best = min(candidates, key=lambda c: reps[c]["calibration"]["before"]["log_loss"])
    rep = reps[best]
    if len(candidates) > 1:
        rep["C_selection"] = {f"{c:g}": {"log_loss": reps[c]["calibration"]["before"]["log_loss"],
                                        "macro_f1": reps[c]["macro_f1"]} for c in candidates}
        click.echo("C chosen by held-out log-loss: " + ", ".join(
            f"C={c:g} {reps[c]['calibration']['before']['log_loss']:.3f} (macro-F1 {reps[c]['macro_f1']:.3f})"
            for c in candidates) + f" → C={best:g}")
    cal = rep["calibration"]
    if cal["threshold"] is None:
        raise BubbleLensError(f"no threshold makes the held-out {task} labels reach precision {min_precision:g}: "
                              "lower --min-precision (the head is not saved)")
    how = (f"{rep['folds']}-fold cross-validation grouped by {group_column} ({rep['n_groups']:,} groups held "
           "out whole)" if groups is not None else
           f"{rep['folds']}-fold cross-validation, not grouped (messages of one sponsor or author may be on "
           "both sides: give --group-column for the figure on unseen sponsors)")
    click.echo(f"{task} head ({features}, C={best:g}) on {rep['n']:,} messages, {how}:")
    click.echo(f"  macro-F1 {rep['macro_f1']:.3f}  accuracy {rep['accuracy']:.3f}")
    for lab, f1 in rep["per_class_f1"].items():
        click.echo(f"  {lab:<24} F1 {f1:.3f}  (n={y.count(lab)})")
    _echo_calibration(cal)
    cls = CampClassifier if task == "camp" else NarrativeClassifier
    clf = cls(encoder=encoder, features=features, C=best, random_state=seed, threshold=float(cal["threshold"]))
    clf.fit(texts, y, embeddings=X)
    clf.model_.set_params(temperature=float(cal["temperature"]))
    out = clf.save(out_dir)
    (out / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True), encoding="utf-8")
    click.echo(f"saved {out}/head.json, head.npz (encoder {enc.id})")


def _echo_calibration(cal: dict[str, Any]) -> None:
    """ECE before/after, a short reliability table, the temperature, coverage/precision at the threshold."""
    b, a = cal["before"], cal["after"]
    if a is None:
        click.echo(f"  calibration (held-out): ECE {b['ece']:.3f}, Brier {b['brier']:.3f} (not calibrated)")
    else:
        click.echo(f"  calibration (held-out): ECE {b['ece']:.3f} before, {a['ece']:.3f} after temperature scaling "
                   f"(cross-fitted); Brier {b['brier']:.3f} → {a['brier']:.3f}; temperature "
                   + (f"{cal['temperature']:.3g}" if cal["temperature_adopted"] else
                      f"{cal['temperature_fitted']:.3g} not adopted (it does not lower the held-out ECE): 1"))
    rows = {(r["lo"], r["hi"]): r for r in b["bins"]}
    after = {(r["lo"], r["hi"]): r for r in (a["bins"] if a else [])}
    click.echo("    confidence bin   n      mean conf  right" + ("   | after: n  mean conf  right" if a else ""))
    for key in sorted(set(rows) | set(after)):
        r, s = rows.get(key), after.get(key)
        left = (f"{r['count']:6d}  {r['confidence']:9.3f}  {r['accuracy']:5.3f}" if r else " " * 29)
        right = (f"   | {s['count']:6d}  {s['confidence']:9.3f}  {s['accuracy']:5.3f}" if s else "")
        click.echo(f"    {key[0]:.1f}–{key[1]:.1f}      {left}{right if a else ''}")
    at, nested = cal.get("at_threshold"), cal["nested"]
    if at:
        how = (f"chosen for precision {cal['min_precision']:g} on these held-out predictions"
               if cal["min_precision"] is not None else "the task's default")
        click.echo(f"  at threshold {cal['threshold']:.3f} ({how}): coverage {at['coverage']:.3f}, "
                   f"precision {at['precision']:.3f} (held-out)")
    nprec = "n/a" if nested["precision"] is None else f"{nested['precision']:.3f}"
    click.echo(f"  nested (temperature and threshold chosen on the other folds): coverage {nested['coverage']:.3f}, "
               f"precision {nprec}")


@click.command()
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@DB
@click.option("--truth", type=click.Path(exists=True, dir_okay=False),
              help="Store mode: truth CSV with msg_id|message_id, narrative, camp (default: the fixtures' truth).")
@CODEBOOK
@ENCODER
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--task", type=click.Choice(["camp", "narrative"]), default="camp", show_default=True,
              help="INPUT mode: what the labels are.")
@click.option("--text-column", default="text", show_default=True, help="INPUT mode: the message text.")
@click.option("--label-column", default=None, help="INPUT mode: the label (default: the --task name).")
@click.option("--group-column", default=None,
              help="INPUT mode: the sponsor or author of each message; folds and intervals go by it. Without "
                   "it each message is its own group, which flatters every figure when authors write several.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="INPUT mode: a CSV/Parquet/JSONL of labels joined to the messages on --id-column.")
@click.option("--id-column", default=None, help="INPUT mode: the id the messages and the --labels file share.")
@click.option("--map", "maps", multiple=True,
              help="INPUT mode: FROM=TO (repeatable), or a YAML/CSV file of them: the file's labels as the "
                   "codebook's ids; an empty TO leaves that label's messages out.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="INPUT mode: cross-validation repeats (figures are medians over seeds).")
@click.option("--boot", type=click.IntRange(min=10), default=200, show_default=True,
              help="INPUT mode: bootstrap resamples of the groups behind each interval.")
@click.option("--no-supervised", is_flag=True, help="INPUT mode: only the methods that see no label.")
@click.option("--no-zero-shot", is_flag=True, help="INPUT mode: only the supervised methods (no codebook).")
@click.option("--english-encoder", default=None,
              help="INPUT mode, camps: also score English messages with this encoder (e.g. st:minilm), as "
                   "classify --english-encoder does: rows zero-shot[en] and zero-shot[en]+pool.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def evaluate(inputs: tuple[Path, ...], db: str, truth: str | None, codebook: str | None, encoder: str, folds: int,
             task: str, text_column: str, label_column: str | None, group_column: str | None,
             labels_file: Path | None, id_column: str | None, maps: tuple[str, ...], seeds: int, boot: int,
             no_supervised: bool, no_zero_shot: bool, english_encoder: str | None, as_json: bool) -> None:
    """Every method side by side on a labelled set: INPUT files (CSV, Parquet, JSONL, Meta JSON), or the
    store's messages joined to --truth.

    INPUT mode prints one table per family (no labels: majority, plain cosine, zero-shot, sponsor pooling,
    transductive; supervised, grouped cross-validation: logistic regression on embeddings, the hybrid head,
    each pooled per group) with macro-F1, accuracy, coverage and precision of assigned, each with a 95 %
    bootstrap interval over groups (docs/evaluate.md).
    """
    from ..classify import load_codebook

    if inputs:
        _evaluate_inputs(inputs, codebook=load_codebook(codebook), encoder=encoder, folds=folds, task=task,
                         text_column=text_column, label_column=label_column or task, group_column=group_column,
                         labels_file=labels_file, id_column=id_column, maps=maps, seeds=seeds, boot=boot,
                         supervised=not no_supervised, zero_shot=not no_zero_shot, english=english_encoder,
                         as_json=as_json)
        return
    from ..classify.evaluate import evaluate_store

    with Store.open(db) as store:
        rep = evaluate_store(store, truth=truth, codebook=load_codebook(codebook), encoder=encoder, folds=folds)
    if as_json:
        click.echo(json.dumps(rep, indent=2, sort_keys=True))
        return
    zs = rep["zero_shot_narrative"]
    click.echo(f"{rep['n']:,} labelled messages, encoder {rep['encoder']}")
    click.echo(f"zero-shot narrative macro-F1 ({len(zs['labels'])} codebook narratives): {zs['macro_f1']:.3f}  "
               f"(unassigned {zs['unassigned']}, of which outside the codebook "
               f"{zs['unassigned_outside_codebook']}/{zs['outside_codebook']})")
    click.echo(f"camp accuracy, text only (sponsors hidden): {rep['camp_text_only']['accuracy']:.3f}")
    for task in ("narrative", "camp"):
        s = rep[f"supervised_{task}"]
        how = f"grouped by sponsor, {s['n_groups']} sponsors" if s.get("grouped") else "not grouped"
        click.echo(f"supervised {task} ({s['folds']}-fold CV {how}, hybrid head): macro-F1 {s['macro_f1']:.3f}, "
                   f"accuracy {s['accuracy']:.3f}")


def _read_frames(paths: tuple[Path, ...] | list[Path]) -> pd.DataFrame:
    """Every row of the files (batch readers: CSV, Parquet, JSONL, Meta pages); a bad line is reported."""
    from ..batch.readers import Rejected, iter_frames

    rejects: list[Rejected] = []
    frames = [f for p in paths for f in iter_frames(p, rejects=rejects)]
    for r in rejects[:10]:
        click.echo(f"  rejected {r.file}" + (f", line {r.line}" if r.line else "") + f": {r.reason}", err=True)
    if len(rejects) > 10:
        click.echo(f"  ... and {len(rejects) - 10:,} more rejected lines", err=True)
    if not frames:
        raise BubbleLensError(f"no rows in {', '.join(p.name for p in paths)}")
    return pd.concat(frames, ignore_index=True)


def _evaluate_inputs(inputs: tuple[Path, ...], *, codebook: Any, encoder: str, folds: int, task: str,
                     text_column: str, label_column: str, group_column: str | None, labels_file: Path | None,
                     id_column: str | None, maps: tuple[str, ...], seeds: int, boot: int, supervised: bool,
                     zero_shot: bool, english: str | None, as_json: bool) -> None:
    from ..classify.compare import compare_methods, format_table, labels_outside
    from ..classify.labelled import labelled_set, read_label_map
    from ..embed import get_encoder

    say = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    where = ", ".join(p.name for p in inputs)
    label_map = read_label_map(maps)  # a bad --map is said before any file is read
    ls = labelled_set(_read_frames(inputs), text_column=text_column, label_column=label_column,
                      group_column=group_column,
                      labels=_read_frames([labels_file]) if labels_file is not None else None,
                      id_column=id_column, label_map=label_map, where=where)
    counts = ls.frame["y"].value_counts()
    say(f"{len(ls.frame):,} labelled messages from {where}: {ls.frame['group'].nunique():,} groups"
        + (f" ({group_column})" if ls.grouped else " (no --group-column: each message is its own group)")
        + "; labels " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if ls.left_out:
        say("left out: " + ", ".join(f"{v:,} {k}" for k, v in ls.left_out.items()))
    if ls.no_group:
        say(f"{ls.no_group:,} message(s) without a {group_column}: each is a group of its own")
    cb_name = codebook.name or (Path(codebook.path).name if codebook.path else "default")
    ids, foreign = labels_outside(codebook, list(counts.index), task)
    if zero_shot and foreign:
        share = float(counts[foreign].sum() / len(ls.frame))
        say(f"the codebook does not fit these labels: {', '.join(foreign)} ({share:.0%} of the messages) "
            f"{'is not a' if len(foreign) == 1 else 'are not'} {task} id{'s' if len(foreign) > 1 else ''} of "
            f"codebook {cb_name!r} ({', '.join(ids)}); methods without labels never get them right "
            "(map labels with --map FROM=TO)")
    rep = compare_methods(ls, codebook, get_encoder(encoder), task=task,
                          english=get_encoder(english) if english else None, zero_shot=zero_shot,
                          supervised=supervised, seeds=seeds, folds=folds, n_boot=boot, log=lambda s: say(f"  {s}"))
    rep["codebook"] = cb_name
    if "no_labels" in rep["tables"]:
        say("\n" + format_table(f"no labels (codebook {cb_name}; {rep['interval']})", rep["tables"]["no_labels"]))
    if "supervised" in rep["tables"]:
        how = "grouped by " + (group_column or "message")
        say("\n" + format_table(f"supervised ({folds}-fold cross-validation {how}, median of {seeds} "
                                 f"seed{'s' if seeds > 1 else ''}; {rep['interval']})", rep["tables"]["supervised"]))
    if as_json:
        click.echo(json.dumps(rep, indent=2, sort_keys=True, default=str))
