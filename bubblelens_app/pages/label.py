"""Label: the ads the model is least sure about, one at a time; a label per ad from the keyboard (its
number, then Enter); after every 25 labels a head is refitted and its sponsor-grouped cross-validated
macro-F1 shown beside the majority class. Labels go to the store's ``labels`` table with who and when;
the head is saved next to the store, where ``bubblelens classify`` finds it. Nothing leaves the machine.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from bubblelens.classify.labelling import (
    REFIT_EVERY,
    SKIP,
    TASKS,
    add_labels,
    default_labeller,
    labelled_count,
    refit,
)
from bubblelens.present.safe import public_error
from bubblelens_app import data, state

INPUT = "label_input"


def _queue(task: str) -> list[dict[str, Any]]:
    return list(st.session_state.setdefault(f"label_queue_{task}", []))


def parse_label(raw: str, classes: list[str]) -> str | None:
    """``3`` → the third class, ``0`` / ``s`` / ``skip`` → skip, a class's own name → it; else None."""
    raw = raw.strip()
    if raw.isdigit():
        i = int(raw)
        return SKIP if i == 0 else classes[i - 1] if i <= len(classes) else None
    if raw.lower() in ("s", SKIP):
        return SKIP
    return raw if raw in classes else None


def _submit(path: str, task: str, classes: list[str]) -> None:
    """Form callback (runs before the page redraws): store the label of the ad on top of the queue, refit
    after every 25th."""
    queue = _queue(task)
    raw = str(st.session_state.get(INPUT) or "")
    if not queue:
        return
    label = parse_label(raw, classes)
    if label is None:
        st.session_state["label_error"] = (f"“{raw[:40]}” is not a label: type a number from 1 to {len(classes)}, "
                                           "or 0 to skip.")
        return
    who = str(st.session_state.get("label_by") or "").strip()
    if not who:
        st.session_state["label_error"] = "Type your name first: it is stored with every label."
        return
    from bubblelens.store import Store

    data.release()  # no read-only connection of this run may block the writer
    try:
        with Store.open(path) as store:
            add_labels(store, [(queue[0]["message_id"], label)], task=task, labelled_by=who)
            n = labelled_count(store.con, task)
            if label != SKIP and n % REFIT_EVERY == 0:
                st.session_state["label_refit"] = refit(store, task).to_json()
                st.session_state[f"label_queue_{task}"] = []  # the next ads come from the new head
            else:
                st.session_state[f"label_queue_{task}"] = queue[1:]
    except Exception as e:  # a locked or read-only store: say so, keep the ad on screen
        st.session_state["label_error"] = f"The label was not stored: {public_error(e)}"
        return
    st.session_state["label_error"] = None
    st.session_state["label_last"] = f"{label} ← {queue[0]['message_id']}"


def _refit_now(path: str, task: str) -> None:
    from bubblelens.store import Store

    data.release()
    try:
        with Store.open(path) as store:
            st.session_state["label_refit"] = refit(store, task).to_json()
        st.session_state[f"label_queue_{task}"] = []
    except Exception as e:
        st.session_state["label_error"] = f"The head was not refitted: {public_error(e)}"


def _show_refit(rep: dict[str, Any] | None, *, fresh: bool) -> None:
    if not rep:
        return
    if not rep.get("ok", True) and fresh:
        st.warning(str(rep.get("message")))
        return
    if rep.get("macro_f1") is None:
        return
    st.subheader("Refitted head" if fresh else "Last refitted head")
    c = st.columns(5)
    c[0].metric("Macro-F1, grouped CV", f"{rep['macro_f1']:.3f}",
                help="Cross-validated on your labels, folds grouped by sponsor: no sponsor is in both the "
                     "training and the held-out part, so this is the figure on sponsors the head never saw. "
                     "With few labels per class it is low and jumps between refits.")
    seen = rep.get("macro_f1_seen_sponsors")
    c[1].metric("Macro-F1, sponsors seen", "–" if seen is None else f"{seen:.3f}",
                help="The same with folds that ignore the sponsor: other ads of sponsors the head saw (most of "
                     "a store's ads, once the big sponsors carry a label).")
    c[2].metric("Majority class", f"{rep['baseline_macro_f1']:.3f}",
                help=f"Macro-F1 of answering '{rep.get('baseline_label')}' for every ad: the head must beat it.")
    c[3].metric("Labels", f"{rep['n_labels']:,}")
    c[4].metric("Sponsors", f"{rep['n_groups']:,}")
    st.caption(f"{rep.get('folds')}-fold cross-validation grouped by sponsor, refitted {str(rep.get('at')).replace('T', ' ')} UTC. "
               f"Saved next to the store as `{rep.get('saved_to')}`: `bubblelens classify --saved-heads` scores the "
               f"{rep.get('task')} task with it (without the flag, classify announces it and stays zero-shot).")
    if rep["macro_f1"] <= rep["baseline_macro_f1"]:
        st.warning("On sponsors it never saw, this head is no better than answering the most frequent class: "
                   "too few labels per class and sponsor yet: label on before classifying with `--saved-heads`.")
    if rep.get("not_scored"):
        st.caption("Trained on but not scored (fewer than 2 labels): " + ", ".join(map(str, rep["not_scored"])))
    per = rep.get("per_class_f1") or {}
    if per:
        st.dataframe(pd.DataFrame({"class": list(per), "F1": list(per.values()),
                                   "labels": [rep.get("classes", {}).get(k, 0) for k in per]}), hide_index=True)


def render() -> None:
    path = state.require_store()
    st.title("Label")
    st.caption("The ads the model is least sure about, spread over different wordings and sponsors. Type the "
               "label's number and press Enter. Labels stay in this store, with your name and the time; "
               f"after every {REFIT_EVERY} labels a head is refitted on them. No ad text leaves this machine.")
    top = st.columns([1, 2])
    task = str(top[0].radio("Task", list(TASKS), horizontal=True, key="label_task"))
    if "label_by" not in st.session_state:
        st.session_state["label_by"] = default_labeller()
    top[1].text_input("Your name (stored with each label)", key="label_by", max_chars=80)
    info = data.label_state(task)
    classes: list[str] = info["classes"]
    n = int(info["n"])
    if not classes:
        st.info(f"No {task} classes in this store yet: run `bubblelens classify` first (its codebook names them).")
        return
    next_refit = (n // REFIT_EVERY + 1) * REFIT_EVERY
    st.progress(min(1.0, (n % REFIT_EVERY) / REFIT_EVERY),
                text=f"{n:,} labelled, next refit at {next_refit:,}")
    if st.session_state.get("label_error"):
        st.error(st.session_state["label_error"])
    fresh = st.session_state.pop("label_refit", None)
    if fresh and fresh.get("task") == task:
        _show_refit(fresh, fresh=True)
    queue = _queue(task)
    if not queue:
        batch, how = data.label_batch(task, REFIT_EVERY)
        queue = [{str(k): v for k, v in r.items()} for r in batch.to_dict("records")]
        for r in queue:
            r["model"] = how
        st.session_state[f"label_queue_{task}"] = queue
    if not queue:
        st.info("No ad left to label: every ad with text and a stored embedding has a label "
                "(run `bubblelens classify` to embed new ones).")
    else:
        ad = queue[0]
        c = st.columns([3, 2, 1, 1])
        c[0].metric("Sponsor", str(ad.get("sponsor") or "(none)"))
        p = ad.get("p")
        c[1].metric("Model's guess", str(ad.get("guess")), help=f"From {ad.get('model')}.")
        c[2].metric("Probability", "–" if p is None or p != p else f"{float(p):.2f}")
        c[3].metric("Left in batch", f"{len(queue):,}")
        with st.container(height=320, border=True):
            st.text(str(ad.get("text") or ""))  # attacker-controlled: plain text only
        # the keys on one line, as plain text (class names come from the data)
        st.text("   ".join(f"{i} {c_}" for i, c_ in enumerate(classes, start=1)) + f"   0 {SKIP}")
        with st.form("label_form", clear_on_submit=True):
            st.text_input(f"Label (1–{len(classes)}, 0 to skip), then Enter", key=INPUT, max_chars=80)
            st.form_submit_button("Submit label", on_click=_submit, args=(path, task, classes), type="primary")
        if st.session_state.get("label_last"):
            st.text(f"Last stored: {st.session_state['label_last']}")  # an ad id from the data: plain text
    st.button("Refit now", key="label_refit_now", on_click=_refit_now, args=(path, task),
              help=f"Refit without waiting for the next multiple of {REFIT_EVERY}.")
    if not fresh:
        _show_refit(info.get("report"), fresh=False)


render()
