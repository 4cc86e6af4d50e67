"""Layout maths (clustering order, 2-D maps) in numpy, and the figures drawn with matplotlib's Agg canvas.

matplotlib is imported inside the drawing functions, and only its object API is used (a ``Figure``
on an Agg canvas): no pyplot state, no GUI backend, safe in any process.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

MapMethod = Literal["pca", "mds", "tsne"]

DATASET_COLOR = "#2563eb"
MODEL_COLOR = "#ea580c"
# One colour per LLM for its prompts (models named LLM/PROMPT).
PROMPT_COLORS = ("#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563", "#65a30d", "#7c3aed")
# Above this many embeddings the heatmap's names overlap (and drawing 2n tick labels took most of a 500-subject
# report's time): it shows each row's kind as a coloured strip instead; the report's rankings table names them.
NAMED_HEATMAP_MAX = 60


# -- maths --------------------------------------------------------------------------------------
def similarity_distance(values: np.ndarray) -> np.ndarray:
    """A distance from a similarity matrix: (s_ii + s_jj) / 2 - s_ij, symmetric, zero diagonal.

    For cosine or CKA this is 1 - s; it needs no assumption about the metric's range.
    """
    s = np.asarray(values, dtype=np.float64)
    s = (s + s.T) / 2.0
    diag = np.diag(s)
    d = np.clip((diag[:, None] + diag[None, :]) / 2.0 - s, 0.0, None)
    np.fill_diagonal(d, 0.0)
    return d


def cluster_order(values: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage (UPGMA) clustering of a similarity matrix.

    Each merge puts the two clusters side by side, so similar items end up adjacent in a heatmap.
    """
    n = len(values)
    if n <= 2:
        return np.arange(n)
    d = similarity_distance(values)
    np.fill_diagonal(d, np.inf)
    members: list[list[int]] = [[i] for i in range(n)]
    sizes = np.ones(n)
    active = np.ones(n, dtype=bool)
    for _ in range(n - 1):
        masked = np.where(active[:, None] & active[None, :], d, np.inf)
        a, b = np.unravel_index(np.argmin(masked), masked.shape)
        a, b = (a, b) if a < b else (b, a)
        merged = (d[a] * sizes[a] + d[b] * sizes[b]) / (sizes[a] + sizes[b])
        d[a, :], d[:, a] = merged, merged
        d[a, a] = np.inf
        sizes[a] += sizes[b]
        members[a] = members[a] + members[b]
        active[b] = False
        d[b, :], d[:, b] = np.inf, np.inf
    return np.array(members[int(np.flatnonzero(active)[0])])


def prepare_vectors(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Flattened unit vectors; matrix embeddings (TaskEmb: one row per component) are row-normalised first.

    Fisher rows of different layers differ in scale by orders of magnitude; without this the map
    would only show the largest layer.
    """
    rows = []
    for array in arrays:
        a = np.asarray(array, dtype=np.float64)
        if a.ndim == 2:
            norms = np.linalg.norm(a, axis=1, keepdims=True)
            a = a / np.where(norms > 0, norms, 1.0)
        flat = a.reshape(-1)
        norm = np.linalg.norm(flat)
        rows.append(flat / norm if norm > 0 else flat)
    return np.stack(rows)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """First two principal coordinates and the share of variance each explains."""
    x = vectors - vectors.mean(axis=0)
    if len(x) < 2 or not np.any(x):
        return np.zeros((len(x), 2)), (0.0, 0.0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    coords = np.zeros((len(x), 2))
    k = min(2, len(s))
    coords[:, :k] = u[:, :k] * s[:k]
    share = s**2 / float((s**2).sum())
    return coords, (float(share[0]), float(share[1]) if len(share) > 1 else 0.0)


def mds_2d(values: np.ndarray) -> np.ndarray:
    """Classical multidimensional scaling of the similarities.

    For unit vectors 1 - cos(a, b) = |a - b|^2 / 2, so twice the similarity distance is taken as a
    squared distance: with cosine this recovers the PCA of the unit-normalised embeddings.
    """
    d2 = 2.0 * similarity_distance(values)
    n = len(d2)
    if n < 2:
        return np.zeros((n, 2))
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ d2 @ j
    eigenvalues, eigenvectors = np.linalg.eigh(b)
    top = np.argsort(eigenvalues)[::-1][:2]
    coords = np.zeros((n, 2))
    coords[:, : len(top)] = eigenvectors[:, top] * np.sqrt(np.clip(eigenvalues[top], 0.0, None))
    return coords


def tsne_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    try:
        from sklearn.manifold import TSNE
    except ImportError as exc:
        from fute_kit.plugin import FuteError

        raise FuteError("the t-SNE map needs scikit-learn: pip install scikit-learn (or use --map pca)") from exc
    n = len(vectors)
    if n < 4:
        return pca_2d(vectors)[0]
    perplexity = float(max(1.0, min(30.0, (n - 1) / 3.0)))
    # Exact gradients for the few hundred points of a study: Barnes-Hut's threads cost far more here.
    method = "exact" if n <= 500 else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, method=method)
    return tsne.fit_transform(vectors)


def embedding_map(
    arrays: Sequence[np.ndarray], similarity: np.ndarray | None, method: MapMethod = "pca"
) -> tuple[np.ndarray, tuple[str, str], str]:
    """2-D coordinates of every embedding, the axis titles, and a note on how they were made."""
    same_shape = len({np.shape(a) for a in arrays}) == 1
    if method == "mds" or not same_shape:
        if similarity is None:
            return np.zeros((len(arrays), 2)), ("", ""), "no map: embeddings of different shapes and no similarities"
        note = "classical MDS of the similarity matrix" + ("" if same_shape else " (embeddings differ in shape)")
        return mds_2d(similarity), ("MDS 1", "MDS 2"), note
    vectors = prepare_vectors(arrays)
    if method == "tsne":
        return tsne_2d(vectors), ("t-SNE 1", "t-SNE 2"), "t-SNE of the unit-normalised embeddings"
    coords, share = pca_2d(vectors)
    note = "PCA of the unit-normalised embeddings" + (
        " (matrix embeddings row-normalised first)" if np.ndim(arrays[0]) == 2 else ""
    )
    return coords, (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%})"), note


# -- drawing ------------------------------------------------------------------------------------
def kind_of(label: str) -> str:
    """ "dataset", "model" or "prompt" (a model named LLM/PROMPT)."""
    kind, _, subject = label.partition(":")
    return "prompt" if kind == "model" and "/" in subject else kind


def colors_for(labels: Sequence[str]) -> list[str]:
    llms: dict[str, str] = {}
    colors = []
    for label in labels:
        kind = kind_of(label)
        if kind == "dataset":
            colors.append(DATASET_COLOR)
        elif kind == "model":
            colors.append(MODEL_COLOR)
        else:
            llm = label.partition(":")[2].split("/", 1)[0]
            colors.append(llms.setdefault(llm, PROMPT_COLORS[len(llms) % len(PROMPT_COLORS)]))
    return colors


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def _short(label: str, width: int = 28) -> str:
    name = label.partition(":")[2] or label
    return name if len(name) <= width else name[: width - 1] + "…"


def heatmap_png(labels: Sequence[str], values: np.ndarray, metric: str = "") -> bytes:
    """The similarity matrix with rows and columns in clustering order, tick labels coloured by kind."""
    from matplotlib.figure import Figure

    order = cluster_order(values)
    ordered = np.asarray(values)[np.ix_(order, order)]
    names = [labels[i] for i in order]
    n = len(names)
    side = min(22.0, max(5.0, 0.32 * n + 2.5))
    figure = Figure(figsize=(side + 1.2, side))
    axes = figure.add_subplot()
    image = axes.imshow(ordered, cmap="viridis", interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.03)
    colorbar.set_label(f"similarity ({metric})" if metric else "similarity")
    if n > NAMED_HEATMAP_MAX:
        _kind_strips(axes, names)
    else:
        fontsize = 9 if n <= 25 else 7
        axes.set_xticks(range(n), [_short(x) for x in names], rotation=60, ha="right", fontsize=fontsize)
        axes.set_yticks(range(n), [_short(x) for x in names], fontsize=fontsize)
        for ticks in (axes.get_xticklabels(), axes.get_yticklabels()):
            for tick, color in zip(ticks, colors_for(names), strict=True):
                tick.set_color(color)
    if n <= 14:
        low, high = float(np.min(ordered)), float(np.max(ordered))
        middle = (low + high) / 2
        for i in range(n):
            for j in range(n):
                color = "black" if ordered[i, j] > middle else "white"
                axes.text(j, i, f"{ordered[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
    title = "Similarity (rows and columns in average-linkage clustering order)"
    if n > NAMED_HEATMAP_MAX:
        title += f"\n{n} embeddings: strips show each one's kind; the Rankings table names each one's closest"
    axes.set_title(title, fontsize=11)
    return _png(figure)


def _kind_strips(axes: Any, names: Sequence[str]) -> None:
    """Left and top strips in each row's kind colour, in place of tick labels too dense to read."""
    from matplotlib.colors import to_rgb

    n = len(names)
    strip = np.array([to_rgb(color) for color in colors_for(names)])
    width = max(1.0, n / 50)
    axes.imshow(strip[:, None, :], extent=(-0.5 - width, -0.5, n - 0.5, -0.5))
    axes.imshow(strip[None, :, :], extent=(-0.5, n - 0.5, -0.5, -0.5 - width))
    axes.set_xlim(-0.5 - width, n - 0.5)
    axes.set_ylim(n - 0.5, -0.5 - width)
    axes.set_xticks([])
    axes.set_yticks([])


def map_png(labels: Sequence[str], coords: np.ndarray, axis_titles: tuple[str, str], note: str = "") -> bytes:
    """Every embedding as a point: datasets as circles, models as triangles, prompts as diamonds per LLM."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(8.5, 6.5))
    axes = figure.add_subplot()
    colors = colors_for(labels)
    markers = {"dataset": "o", "model": "^", "prompt": "D"}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault((colors[i], markers.get(kind_of(label), "o")), []).append(i)
    for (color, marker), members in groups.items():  # one collection per colour and marker, not one per point
        axes.scatter(coords[members, 0], coords[members, 1], s=70, c=color, marker=marker,
                     edgecolors="white", linewidths=0.8, zorder=3)  # fmt: skip
    for i in _labelled_points(coords) if len(labels) <= 80 else []:
        axes.annotate(_short(labels[i], 24), (coords[i, 0], coords[i, 1]), textcoords="offset points",
                      xytext=(5, 4), fontsize=7.5, color="#374151")  # fmt: skip
    legend: dict[str, Any] = {}
    for label, color in zip(labels, colors, strict=True):
        kind = kind_of(label)
        key = "datasets" if kind == "dataset" else "models" if kind == "model" else _llm(label) + " prompts"
        legend.setdefault(
            key, Line2D([], [], marker=markers.get(kind, "o"), color=color, linestyle="", markersize=8, label=key)
        )
    order = sorted(legend, key=lambda key: (key != "datasets", key != "models", key))
    axes.legend(handles=[legend[key] for key in order], loc="best", fontsize=8, frameon=False)
    axes.set_xlabel(axis_titles[0])
    axes.set_ylabel(axis_titles[1])
    axes.grid(alpha=0.25)
    axes.set_title("Map of all embeddings" + (f"\n{note}" if note else ""), fontsize=10)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return _png(figure)


def _labelled_points(coords: np.ndarray, gap: tuple[float, float] = (0.09, 0.035)) -> list[int]:
    """Points to name: greedily skip a point whose label would sit on one already placed."""
    span = np.ptp(coords, axis=0)
    scaled = (coords - coords.min(axis=0)) / np.where(span > 0, span, 1.0)
    placed: list[int] = []
    for i, point in enumerate(scaled):
        if all(abs(point[0] - scaled[j, 0]) > gap[0] or abs(point[1] - scaled[j, 1]) > gap[1] for j in placed):
            placed.append(i)
    return placed


def _llm(label: str) -> str:
    return label.partition(":")[2].split("/", 1)[0]


def evaluation_png(means: Mapping[str, Mapping[str, Any]], key: str) -> bytes:
    """Mean ``key`` (e.g. NDCG@3) of each method over the targets, as horizontal bars."""
    from matplotlib.figure import Figure

    methods = [m for m, v in means.items() if v.get(key) is not None]
    values = [float(means[m][key]) for m in methods]
    figure = Figure(figsize=(7.0, 0.42 * len(methods) + 1.2))
    axes = figure.add_subplot()
    colors = ["#2563eb" if m == "embedding" else "#9ca3af" if m == "random" else "#64748b" for m in methods]
    axes.barh(range(len(methods)), values, color=colors)
    axes.set_yticks(range(len(methods)), methods)
    axes.invert_yaxis()
    for i, v in enumerate(values):
        axes.text(v, i, f" {v:.3f}", va="center", fontsize=8)
    axes.set_xlabel(f"mean {key} over targets")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return _png(figure)
