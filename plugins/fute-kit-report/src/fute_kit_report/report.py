"""Build ``OUT/report.html`` (self-contained: figures embedded as data URIs) from a finished study folder.

Everything is read from the folder (``study.json``, ``similarity.csv``, the embeddings and their
provenance, ``evaluation.json`` if present), so a report can be rebuilt without the configuration.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fute_kit.plugin import DataError, Study, StudyFolder, atomic_write_bytes, atomic_write_text, open_study
from fute_kit_report.figures import NAMED_HEATMAP_MAX, MapMethod, kind_of

TOP = 5


@attrs.frozen
class ReportResult:
    html: Path
    figures: tuple[Path, ...]


def build_report(out_dir: str | Path, *, map_method: MapMethod = "pca", space_id: str | None = None) -> ReportResult:
    """Write OUT/report.html and OUT/figures/*.png for a finished study; returns their paths."""
    from fute_kit_report import figures as fig

    folder = StudyFolder(out_dir)
    out = folder.path
    if not out.is_dir():
        raise DataError(f"{out} is not a folder: give the --out folder of a finished `fute run`")
    summary = folder.summary()
    try:
        study: Study | None = open_study(out, space_id, need_embeddings=False)
    except DataError:
        if not summary:
            raise DataError(f"{out} holds no study: no study.json and no embeddings (run `fute run` first)") from None
        study = None  # every job failed: the report still shows what happened
    evaluation = folder.read_json(folder.evaluation_json)
    pngs: dict[str, bytes] = {}
    notes: dict[str, str] = {}
    matrix = study.similarity if study else None
    if matrix is not None and len(matrix.labels) >= 2:
        pngs["similarity_heatmap"] = fig.heatmap_png(matrix.labels, matrix.values, matrix.metric)
    if study and len(study.embeddings) >= 2:
        labels = study.labels
        values = None
        if matrix is not None and set(labels) <= set(matrix.labels):
            index = [matrix.labels.index(label) for label in labels]
            values = matrix.values[np.ix_(index, index)]
        coords, axis_titles, note = fig.embedding_map([e.array for e in study.embeddings], values, map_method)
        pngs["embedding_map"] = fig.map_png(labels, coords, axis_titles, note)
        notes["embedding_map"] = note
    if evaluation and evaluation.get("mean"):
        key = f"ndcg@{evaluation.get('k', 3)}"
        pngs["evaluation"] = fig.evaluation_png(evaluation["mean"], key)
    written = []
    for name, data in pngs.items():
        path = folder.figures / f"{name}.png"
        atomic_write_bytes(path, data)
        written.append(path)
    page = render_html(out, summary, study, evaluation, pngs, notes)
    atomic_write_text(folder.report_html, page)
    return ReportResult(folder.report_html, tuple(written))


# -- provenance -------------------------------------------------------------------------------------
def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted key, value) of nested dicts."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            dotted = f"{path}.{key}" if path else str(key)
            yield dotted, inner
            yield from _walk(inner, dotted)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


FIRST_WORDS = ("first", "initial", "start", "before")
LAST_WORDS = ("last", "final", "end", "after")


def _loss(details: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """First and last training loss, wherever a method recorded it.

    Named values come first (``train_loss_first``/``train_loss_last``, training ones preferred over
    probes), then a list of losses (its first and last entries).
    """
    numbers = [(key.rsplit(".", 1)[-1].lower(), v) for key, v in _walk(details) if _is_number(v)]
    losses = [(leaf, float(v)) for leaf, v in numbers if "loss" in leaf]

    def pick(words: tuple[str, ...]) -> float | None:
        found = [(("train" not in leaf), value) for leaf, value in losses if any(w in leaf for w in words)]
        return min(found, key=lambda item: item[0])[1] if found else None

    first, last = pick(FIRST_WORDS), pick(LAST_WORDS)
    if first is not None and last is not None:
        return first, last
    for key, value in _walk(details):
        leaf = key.rsplit(".", 1)[-1].lower()
        if "loss" in leaf and isinstance(value, list) and value and all(_is_number(v) for v in value):
            return float(value[0]), float(value[-1])
        if "loss" in leaf and isinstance(value, Mapping) and _is_number(value.get("first")):
            return float(value["first"]), float(value["last"]) if _is_number(value.get("last")) else None
    return first, last


def _first_value(details: Mapping[str, Any], word: str) -> Any:
    """The value recorded under ``word`` (exactly, else the first key containing it)."""
    found = [(key.rsplit(".", 1)[-1].lower(), v) for key, v in _walk(details)]
    found = [(leaf, v) for leaf, v in found if word in leaf and (_is_number(v) or isinstance(v, Mapping))]
    exact = [v for leaf, v in found if leaf == word]
    return exact[0] if exact else found[0][1] if found else None


def _accounting(details: Mapping[str, Any]) -> dict[str, float]:
    found = details.get("accounting")
    if not isinstance(found, Mapping):
        found = next((v for k, v in _walk(details) if k.endswith("accounting") and isinstance(v, Mapping)), {})
    return {k: v for k, v in found.items() if _is_number(v)}


def provenance_rows(study: Study) -> list[dict[str, Any]]:
    rows = []
    for e in study.embeddings:
        details = e.provenance.details or {}
        first, last = _loss(details)
        rows.append(
            {
                "label": e.label,
                "n": e.provenance.n_examples,
                "seconds": e.provenance.seconds,
                "shape": "×".join(map(str, e.array.shape)),
                "loss_first": first,
                "loss_last": last,
                "agreement": _first_value(details, "agreement"),
                "truncated": _first_value(details, "truncated"),
                "warnings": [str(w) for w in details.get("warnings") or []],
                "accounting": _accounting(details),
                "created": e.provenance.created,
            }
        )
    return rows


# -- HTML -------------------------------------------------------------------------------------------
CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --dataset:#2563eb; --model:#ea580c; --prompt:#16a34a; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink);
       margin: 0; background: #f9fafb; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; }
header { background: #fff; border-bottom: 1px solid var(--line); }
header .inner { max-width: 1180px; margin: 0 auto; padding: 22px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; }
.sub { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 14px; }
.card { background: #f3f4f6; border-radius: 8px; padding: 8px 14px; min-width: 110px; }
.card b { display: block; font-size: 18px; }
.card span { color: var(--muted); font-size: 12px; }
figure { margin: 10px 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px;
         text-align: center; }
figure img { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 6px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { max-height: 560px; overflow: auto; border: 1px solid var(--line); border-radius: 8px; }
.tag { display: inline-block; border-radius: 4px; padding: 0 5px; font-size: 11px; color: #fff; margin-right: 4px; }
.dataset { background: var(--dataset); } .model { background: var(--model); } .prompt { background: var(--prompt); }
.ranklist { margin: 0; padding-left: 18px; } .ranklist li { white-space: nowrap; }
.sim { color: var(--muted); font-variant-numeric: tabular-nums; }
.warn { color: #b45309; } .fail { color: #b91c1c; } .best { font-weight: 700; }
details summary { cursor: pointer; color: var(--muted); }
code { background: #f3f4f6; padding: 1px 4px; border-radius: 4px; font-size: 12px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if _is_number(value):
        return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.3g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{_e(k)}={_num(v)}" for k, v in value.items())
    return _e(value)


def _tag(label: str) -> str:
    kind = kind_of(label)
    name = label.partition(":")[2] or label
    return f'<span class="tag {kind}">{kind}</span>{_e(name)}'


def _img(name: str, data: bytes, caption: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img alt="{_e(name)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{_e(caption)} (also <code>figures/{_e(name)}.png</code>)</figcaption></figure>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(headers)
    head = "".join(f'<th class="{"num" if n else ""}">{_e(h)}</th>' for h, n in zip(headers, numeric, strict=True))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if n else ""}">{c}</td>' for c, n in zip(r, numeric, strict=True))
        + "</tr>"
        for r in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _rankings_section(study: Study) -> str:
    matrix = study.similarity
    if matrix is None:
        return "<p class='sub'>No similarity matrix was written.</p>"
    labels = list(matrix.labels)
    kinds = {label.partition(":")[0] for label in labels}
    columns = [k for k in ("dataset", "model") if k in kinds]
    rows = []
    for i, label in enumerate(labels):
        order = [j for j in np.argsort(-matrix.values[i], kind="stable") if j != i]
        cells = [_tag(label)]
        for kind in columns:
            chosen = [j for j in order if labels[j].partition(":")[0] == kind][:TOP]
            items = "".join(
                f'<li>{_tag(labels[j])} <span class="sim">{matrix.values[i, j]:.3f}</span></li>' for j in chosen
            )
            cells.append(f'<ol class="ranklist">{items}</ol>' if items else "—")
        rows.append(cells)
    headers = ["embedding", *[f"closest {TOP} {k}s" for k in columns]]
    return _table(headers, rows)


def _provenance_section(study: Study) -> str:
    rows = []
    totals: dict[str, int | float] = {}
    for row in provenance_rows(study):
        for key, value in row["accounting"].items():
            totals[key] = totals.get(key, 0) + value
        warnings = row["warnings"]
        warning_cell = (
            f'<details><summary class="warn">{len(warnings)} warning(s)</summary>'
            + "".join(f"<div class='warn'>{_e(w)}</div>" for w in warnings)
            + "</details>"
            if warnings
            else "—"
        )
        loss = "—" if row["loss_last"] is None else f"{_num(row['loss_first'])} → {_num(row['loss_last'])}"
        rows.append(
            [
                _tag(row["label"]),
                _num(row["n"]),
                _num(row["seconds"], 1),
                _e(row["shape"]),
                loss,
                _num(row["agreement"]),
                _num(row["truncated"]),
                warning_cell,
                _num(row["accounting"]) if row["accounting"] else "—",
            ]
        )
    headers = ["embedding", "n", "seconds", "shape", "loss first → last", "agreement", "truncated", "warnings",
               "accounting"]  # fmt: skip
    numeric = [False, True, True, False, True, True, True, False, False]
    text = _table(headers, rows, numeric)
    if totals:
        items = "".join(f"<div class='card'><b>{_num(v)}</b><span>{_e(k)}</span></div>" for k, v in totals.items())
        text += f"<h3>Accounting totals</h3><div class='cards'>{items}</div>"
    return text


def _evaluation_section(evaluation: Mapping[str, Any], pngs: Mapping[str, bytes]) -> str:
    k = evaluation.get("k", 3)
    keys = ["ndcg", f"ndcg@{k}", f"regret@{k}", "spearman", "top1", "best_rank"]
    lower_is_better = {f"regret@{k}", "best_rank"}

    def table(results: Mapping[str, Mapping[str, Any]], extra: Sequence[str] = ()) -> str:
        best: dict[str, float] = {}
        for key in keys:
            values = [r.get(key) for r in results.values() if _is_number(r.get(key))]
            if values:
                best[key] = min(values) if key in lower_is_better else max(values)
        rows = []
        for method, values in results.items():
            cells = [f"<b>{_e(method)}</b>" if method == "embedding" else _e(method)]
            for key in keys:
                v = values.get(key)
                mark = _is_number(v) and key in best and abs(v - best[key]) < 1e-12
                cells.append(f"<span class='best'>{_num(v)}</span>" if mark else _num(v))
            cells += [_num(values.get(x)) for x in extra]
            rows.append(cells)
        return _table(["method", *keys, *extra], rows, [False, *[True] * (len(keys) + len(extra))])

    parts = [
        f"<p class='sub'>Truth: <code>{_e(evaluation.get('truth', ''))}</code>; relevance "
        f"{_e(evaluation.get('relevance', ''))}; best value of each column in bold "
        f"(lower is better for regret@{k} and best_rank).</p>",
        "<h3>Mean over targets</h3>",
        table(evaluation.get("mean", {}), ["targets"]),
    ]
    if "evaluation" in pngs:
        parts.append(_img("evaluation", pngs["evaluation"], f"mean NDCG@{k} of each ranking method"))
    for target in evaluation.get("targets", []):
        notes = "".join(f"<div class='sub'>{_e(n)}</div>" for n in target.get("notes", []))
        parts.append(
            f"<details><summary>{_tag(target['target'])} — {len(target.get('candidates', []))} candidates</summary>"
            f"{table(target.get('results', {}))}{notes}</details>"
        )
    parts += [f"<p class='sub'>{_e(n)}</p>" for n in evaluation.get("notes", [])]
    return "".join(parts)


def render_html(
    out: Path,
    summary: Mapping[str, Any],
    study: Study | None,
    evaluation: Mapping[str, Any],
    pngs: Mapping[str, bytes],
    notes: Mapping[str, str] | None = None,
) -> str:
    notes = notes or {}
    space = study.space if study else None
    metric = (study.metric if study else {}) or summary.get("metric") or {}
    metric_text = metric.get("name") or (study.similarity.metric if study and study.similarity else "") or "—"
    if metric.get("options"):
        metric_text += "(" + ", ".join(f"{k}={v!r}" for k, v in metric["options"].items()) + ")"
    labels = study.labels if study else []
    counts = {
        "datasets": sum(kind_of(label) == "dataset" for label in labels),
        "models": sum(kind_of(label) == "model" for label in labels),
        "prompts": sum(kind_of(label) == "prompt" for label in labels),
    }
    jobs = summary.get("jobs", [])
    failed = [j for j in jobs if j.get("status") == "failed"]
    cards = [(counts["datasets"], "datasets (DTEs)"), (counts["models"], "models (MTEs)")]
    if counts["prompts"]:
        cards.append((counts["prompts"], "LLM prompts (MTEs)"))
    cards.append((metric_text, "similarity metric"))
    if failed:
        cards.append((len(failed), "failed jobs"))
    space_text = space.describe() if space else (summary.get("space") or {}).get("method", "unknown space")
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"<header><div class='inner'><h1>Task embedding study</h1>"
        f"<div class='sub'>{_e(space_text)}</div>"
        f"<div class='sub'>folder <code>{_e(out.resolve())}</code>; config <code>{_e(summary.get('config') or '—')}"
        f"</code>; report built {_e(created)}</div>"
        f"<div class='cards'>"
        + "".join(f"<div class='card'><b>{_e(v)}</b><span>{_e(k)}</span></div>" for v, k in cards)
        + "</div></div></header>"
    )
    body = []
    if failed:
        items = "".join(f"<li>{_e(j['kind'])}:{_e(j['name'])}: {_e(j.get('error', ''))}</li>" for j in failed)
        body.append(f"<h2 class='fail'>Failed jobs</h2><ul class='fail'>{items}</ul>")
    if evaluation:
        body.append("<h2>Evaluation against measured truth</h2>" + _evaluation_section(evaluation, pngs))
    if "similarity_heatmap" in pngs:
        caption = (
            f"{metric_text} similarity; tick labels coloured by kind (datasets blue, models orange, prompts green); "
            f"above {NAMED_HEATMAP_MAX} embeddings, strips in those colours instead of names (see Rankings)"
        )
        body.append("<h2>Similarities</h2>" + _img("similarity_heatmap", pngs["similarity_heatmap"], caption))
    if "embedding_map" in pngs:
        caption = (
            "datasets as circles, models as triangles, prompts as diamonds (one colour per LLM); "
            "names that would overlap are left out"
        )
        if notes.get("embedding_map"):
            caption = f"{notes['embedding_map']}; {caption}"
        body.append("<h2>Map</h2>" + _img("embedding_map", pngs["embedding_map"], caption))
    if study and study.similarity is not None:
        body.append("<h2>Rankings</h2>" + _rankings_section(study))
    if study and study.embeddings:
        body.append("<h2>Provenance</h2>" + _provenance_section(study))
    if not study or not study.embeddings:
        body.append("<p class='fail'>This study has no embeddings: every job failed (see run.log).</p>")
    title = f"fute report — {space.method if space else 'study'} on {space.surrogate if space else ''}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"{head}<main>{''.join(body)}</main></body></html>\n"
    )
