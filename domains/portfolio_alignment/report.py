"""What the Dagster UI shows about company temperature scores: tables and charts, not raw numbers.

Pure rendering functions (a scores frame in, markdown or SVG text out) behind the metadata of the
``company_temperature_scores`` asset (``score_report_metadata``):

* ``mesh/score_highest`` and ``mesh/score_lowest`` (``extremes_markdown``): the 10 least and the 10
  best aligned companies, as markdown tables;
* ``mesh/score_distribution`` (``distribution_bars_markdown``): the histogram as a markdown table of
  unicode bars, one character per source (█ target, ▓ trend, ░ default);
* ``mesh/score_chart`` (``distribution_markdown``): the same histogram drawn as an SVG chart, stacked
  by ``score_source``, inlined in markdown as a ``data:`` URI image;
* ``mesh/score_median_c`` and ``mesh/score_default_share``: numbers the UI plots across materializations.

What the Dagster UI (1.13) renders, checked in a browser (tests/ui): markdown shorter than 1,000
characters is drawn in the asset's metadata table, longer markdown behind a "[Show Markdown]"
dialog; ``data:`` URI images are displayed, inline ``<svg>`` markup is stripped and Vega-Lite JSON
is shown as text. So the tables and the bar histogram are kept under 1,000 characters (they show at
a glance), and the SVG chart (about 8 kB) opens in the dialog. No plotting library is needed.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

import dagster as dg
import pandas as pd

SCORE = "temperature_score_c"
SOURCE = "score_source"
# Stack order (bottom to top) and colours of the score sources; unknown sources go last, in grey.
SOURCES = {"target": "#2a9d8f", "trend": "#457b9d", "default": "#b0b7bf"}
OTHER_COLOUR = "#8d99ae"
# One bar character per source in the text histogram (same stack order as the chart).
BLOCKS = {"target": "█", "trend": "▓", "default": "░"}
OTHER_BLOCK = "▒"
BAR_CHARS = 24  # the longest bar of the text histogram
NAME_CHARS = 32  # company names are cut to this length in the tables
_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\|*_`[]<>#"})


def _md(value: object) -> str:
    """One markdown table cell: special characters escaped, blanks shown as an en dash."""
    if _missing(value):
        return "–"
    text = " ".join(str(value).split())
    return text.translate(_MD_SPECIAL) if text else "–"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _name(row: pd.Series) -> object:
    """``company_name`` (else ``company_id``), marked when the row is a sector split of a company."""
    name = row.get("company_name")
    name = row.get("company_id") if _missing(name) else name
    company, base = row.get("company_id"), row.get("base_company_id")
    if not _missing(company) and not _missing(base) and company != base:
        return f"{name} (split)"
    return name


def ranked(scores: pd.DataFrame) -> pd.DataFrame:
    """Scored rows (no missing score), highest score first; ties in company name then id order."""
    frame = scores[scores[SCORE].notna()].copy()
    frame["_name"] = frame.apply(_name, axis=1).astype("string")
    keys = [SCORE, "_name"] + (["company_id"] if "company_id" in frame else [])
    order = [False] + [True] * (len(keys) - 1)
    return frame.sort_values(keys, ascending=order, kind="mergesort").reset_index(drop=True)


def _table(rows: pd.DataFrame, ranks: list[int], scoped: bool) -> str:
    has_sector = "sector" in rows
    header = ["#", "company"] + (["sector"] if has_sector else []) + (["scope"] if scoped else [])
    header += ["score °C", "source"]
    align = ["---:", ":---"] + [":---"] * (has_sector + scoped) + ["---:", ":---"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for rank, (_, row) in zip(ranks, rows.iterrows(), strict=True):
        cells = [str(rank), _md(_shorten(str(row["_name"]), NAME_CHARS))]
        if has_sector:
            cells.append(_md(row["sector"]))
        if scoped:
            cells.append(_md(row["scope"]))
        cells += [f"{float(row[SCORE]):.2f}", _md(row.get(SOURCE))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def extremes_markdown(scores: pd.DataFrame, n: int = 10, end: str = "highest") -> str:
    """The ``n`` highest (least aligned) or lowest (best aligned) scores as a markdown table.

    ``end`` is ``"highest"`` or ``"lowest"``. Columns: rank (1 = hottest), company
    (``company_name``, else ``company_id``; "(split)" for a sector split), sector, scope (only when
    the frame holds several scopes), score in °C and score source. The lowest table lists the
    companies ranked last, best aligned last.
    """
    if end not in ("highest", "lowest"):
        raise ValueError(f"end must be 'highest' or 'lowest', not {end!r}")
    frame = ranked(scores)
    if frame.empty:
        return "no scored companies"
    scoped = "scope" in frame and frame["scope"].nunique(dropna=True) > 1
    total = len(frame)
    rows = frame.head(n) if end == "highest" else frame.tail(n)
    first = 1 if end == "highest" else total - len(rows) + 1
    caption = "least aligned" if end == "highest" else "best aligned"
    title = f"**{len(rows)} {end} of {total} scores ({caption})**"
    return title + "\n\n" + _table(rows, list(range(first, first + len(rows))), scoped)


@dataclass(frozen=True)
class Bin:
    """A histogram bar: scores in [low, high) (the last bar includes ``high``) counted per source."""

    low: float
    high: float
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def histogram(scores: pd.DataFrame, width: float = 0.25, low: float = 1.0, high: float = 4.5) -> list[Bin]:
    """Scores counted in bins of ``width`` °C from ``low`` to ``high``, per score source.

    The range widens (by whole bins) to take in any score outside it; missing scores are not
    counted. Every bin carries every source seen, with zero counts, so bars stack the same way.
    """
    frame = scores[scores[SCORE].notna()]
    values = frame[SCORE].astype(float)
    if not values.empty:
        low = min(low, math.floor(values.min() / width) * width)
        high = max(high, math.ceil(values.max() / width) * width)
    n_bins = max(1, round((high - low) / width))
    sources = frame[SOURCE].astype("string").fillna("unknown") if SOURCE in frame else None
    seen = _source_order(sources.unique().tolist() if sources is not None else [])
    counts = [dict.fromkeys(seen, 0) for _ in range(n_bins)]
    for i, value in enumerate(values):
        index = min(max(int((value - low) // width), 0), n_bins - 1)
        source = str(sources.iloc[i]) if sources is not None else "unknown"
        counts[index][source] = counts[index].get(source, 0) + 1
    return [Bin(round(low + i * width, 6), round(low + (i + 1) * width, 6), counts[i]) for i in range(n_bins)]


def _source_order(sources: list[str]) -> list[str]:
    known = [s for s in SOURCES if s in sources]
    return known + sorted(s for s in sources if s not in SOURCES)


def _nice_step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if top / step <= 6:
            return step
    return int(10 ** math.ceil(math.log10(top)))


def histogram_svg(bins: list[Bin], *, reference_c: float | None = None, title: str = "") -> str:
    """A stacked bar chart of ``bins`` as a standalone SVG document (640 x 280, scalable).

    ``reference_c`` draws a dashed line at that temperature (e.g. the benchmark's 1.5 °C).
    """
    w, h = 640, 280
    left, right, top, bottom = 44, 150, 30, 40
    plot_w, plot_h = w - left - right, h - top - bottom
    low, high = bins[0].low, bins[-1].high
    peak = max((b.total for b in bins), default=0)
    step = _nice_step(max(peak, 1))
    y_max = max(step, math.ceil(max(peak, 1) / step) * step)

    def x(temp: float) -> float:
        return left + (temp - low) / (high - low) * plot_w

    def y(count: float) -> float:
        return top + plot_h - count / y_max * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
    ]
    if title:
        out.append(f'<text x="{left}" y="18" font-size="13" font-weight="bold">{xml_escape(title)}</text>')
    for tick in range(0, y_max + 1, step):
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e7eb"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    sources = _source_order(sorted({s for b in bins for s in b.counts}))
    for b in bins:
        x0, x1 = x(b.low) + 1, x(b.high) - 1
        stacked = 0
        for source in sources:
            count = b.counts.get(source, 0)
            if not count:
                continue
            colour = SOURCES.get(source, OTHER_COLOUR)
            out.append(
                f'<rect x="{x0:.1f}" y="{y(stacked + count):.1f}" width="{x1 - x0:.1f}" '
                f'height="{y(stacked) - y(stacked + count):.1f}" fill="{colour}">'
                f"<title>{b.low:.2f}–{b.high:.2f} °C, {xml_escape(source)}: {count}</title></rect>"
            )
            stacked += count
        if b.total:
            out.append(
                f'<text x="{(x0 + x1) / 2:.1f}" y="{y(b.total) - 3:.1f}" text-anchor="middle" '
                f'fill="#374151">{b.total}</text>'
            )
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#374151"/>')
    first_tick = math.ceil(low * 2) / 2
    tick = first_tick
    while tick <= high + 1e-9:
        out.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{y(0):.1f}" y2="{y(0) + 4:.1f}" stroke="#374151"/>'
        )
        out.append(f'<text x="{x(tick):.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">{tick:.1f}</text>')
        tick += 0.5
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{h - 6}" text-anchor="middle">temperature score (°C)</text>'
    )
    if reference_c is not None and low <= reference_c <= high:
        rx = x(reference_c)
        out.append(
            f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{top}" y2="{y(0):.1f}" stroke="#e63946" '
            'stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{rx + 4:.1f}" y="{top + 10}" fill="#e63946">benchmark {reference_c:.1f} °C</text>'
        )
    legend_x = left + plot_w + 20
    for i, source in enumerate(sources):
        ly = top + 10 + i * 20
        total = sum(b.counts.get(source, 0) for b in bins)
        out.append(
            f'<rect x="{legend_x}" y="{ly - 9}" width="12" height="12" '
            f'fill="{SOURCES.get(source, OTHER_COLOUR)}"/>'
        )
        out.append(f'<text x="{legend_x + 18}" y="{ly + 1}">{xml_escape(source)} ({total})</text>')
    out.append("</svg>")
    return "\n".join(out)


def svg_image_markdown(svg: str, alt: str) -> str:
    """Markdown showing ``svg`` as an image, inlined as a base64 ``data:`` URI."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    alt = alt.replace("[", "(").replace("]", ")").replace("\n", " ")
    return f"![{alt}](data:image/svg+xml;base64,{data})"


def _reference(scores: pd.DataFrame) -> float | None:
    if "benchmark_temperature_c" not in scores:
        return None
    values = scores["benchmark_temperature_c"].dropna().unique()
    return float(values[0]) if len(values) == 1 else None


def _scored(scores: pd.DataFrame) -> pd.Series:
    return scores[SCORE].dropna().astype(float) if SCORE in scores else pd.Series(dtype=float)


def summary_line(scores: pd.DataFrame) -> str:
    """``140 scores · median 1.85 °C · mean 2.24 °C · range 1.26–4.40 °C · target 66, ...``."""
    values = _scored(scores)
    if values.empty:
        return "no scored companies"
    by_source = ""
    if SOURCE in scores:
        counts = scores.loc[values.index, SOURCE].astype("string").fillna("unknown").value_counts()
        by_source = " · " + ", ".join(f"{s} {int(counts[s])}" for s in _source_order(counts.index.tolist()))
    line = (
        f"{len(values)} scores · median {values.median():.2f} °C · "
        f"mean {values.mean():.2f} °C · range {values.min():.2f}–{values.max():.2f} °C{by_source}"
    )
    missing = int(scores[SCORE].isna().sum())
    return line + (f" · {missing} without a score" if missing else "")


def _bar(counts: dict[str, int], peak: int) -> str:
    """A bar of at most BAR_CHARS characters, one run per source; a non-zero count shows at least one."""
    parts = []
    for source in _source_order(list(counts)):
        count = counts[source]
        if count:
            chars = max(1, round(count / peak * BAR_CHARS))
            parts.append(BLOCKS.get(source, OTHER_BLOCK) * chars)
    return "".join(parts)


def distribution_bars_markdown(scores: pd.DataFrame, width: float = 0.25) -> str:
    """The histogram as a markdown table of unicode bars (under 1,000 characters), and the summary.

    One row per bin from the first to the last non-empty one; the bar stacks the sources
    (█ target, ▓ trend, ░ default), scaled so the fullest bin is BAR_CHARS characters long.
    """
    if _scored(scores).empty:
        return "no scored companies"
    bins = histogram(scores, width=width)
    filled = [i for i, b in enumerate(bins) if b.total]
    bins = bins[filled[0] : filled[-1] + 1]
    peak = max(b.total for b in bins)
    sources = _source_order(sorted({s for b in bins for s, c in b.counts.items() if c}))
    legend = " ".join(f"{BLOCKS.get(s, OTHER_BLOCK)} {s}" for s in sources)
    lines = [f"| °C | n | {legend} |", "| :--- | ---: | :--- |"]
    lines += [f"| {b.low:.2f}–{b.high:.2f} | {b.total} | {_bar(b.counts, peak)} |" for b in bins]
    return "\n".join(lines) + "\n\n" + summary_line(scores)


def distribution_markdown(scores: pd.DataFrame, width: float = 0.25) -> str:
    """The score histogram as an SVG chart stacked by source (a ``data:`` URI image) and the summary."""
    values = _scored(scores)
    if values.empty:
        return "no scored companies"
    bins = histogram(scores, width=width)
    benchmark = ""
    if "benchmark_id" in scores and scores["benchmark_id"].nunique(dropna=True) == 1:
        benchmark = f" against {scores['benchmark_id'].dropna().iloc[0]}"
    title = f"Company temperature scores{benchmark}: {len(values)} entities"
    alt = f"histogram of {len(values)} temperature scores in {width:g} °C bins: " + ", ".join(
        f"{b.low:.2f}-{b.high:.2f}: {b.total}" for b in bins if b.total
    )
    svg = histogram_svg(bins, reference_c=_reference(scores), title=title)
    return svg_image_markdown(svg, alt) + "\n\n" + summary_line(scores)


def score_report_metadata(scores: pd.DataFrame, n: int = 10) -> dict[str, dg.MetadataValue]:
    """Asset metadata for a scores frame: extremes tables, histogram (bars and chart), plotted numbers."""
    metadata: dict[str, dg.MetadataValue] = {
        "mesh/score_highest": dg.MetadataValue.md(extremes_markdown(scores, n, "highest")),
        "mesh/score_lowest": dg.MetadataValue.md(extremes_markdown(scores, n, "lowest")),
        "mesh/score_distribution": dg.MetadataValue.md(distribution_bars_markdown(scores)),
        "mesh/score_chart": dg.MetadataValue.md(distribution_markdown(scores)),
    }
    values = _scored(scores)
    if not values.empty:
        metadata["mesh/score_median_c"] = dg.MetadataValue.float(round(float(values.median()), 4))
        if SOURCE in scores:
            defaults = scores.loc[values.index, SOURCE].astype("string").eq("default").sum()
            metadata["mesh/score_default_share"] = dg.MetadataValue.float(
                round(int(defaults) / len(values), 4)
            )
    return metadata


def top_contributors_markdown(
    holdings: pd.DataFrame, scores: pd.DataFrame, company_master: pd.DataFrame, n: int = 5
) -> str:
    """The holdings that weigh most in each portfolio figure (per scope and aggregation method).

    A holding's contribution is its share of the figure, ``w_i T_i / sum(w T)``, with the method's
    weights (see ``transforms.method_weights``): an analyst sees at once which position drives WATS or
    ECOTS and by how much, e.g. one mis-reported company that pushes a figure up.
    """
    from domains.portfolio_alignment import transforms

    if scores.empty or holdings.empty:
        return "no portfolio figures"
    master = company_master.drop_duplicates("company_id").set_index("company_id")
    lines = [
        "| scope | method | figure °C | top holdings (score °C, share of the figure) |",
        "| :--- | :--- | ---: | :--- |",
    ]
    for (_, scope), sc in scores.drop_duplicates(["company_id", "scope", "benchmark_id"]).groupby(
        ["benchmark_id", "scope"]
    ):
        h = transforms.holding_scores(holdings, sc, master)
        for method, weights in transforms.method_weights(h).items():
            ok = weights.notna() & (weights > 0)
            if not ok.any():
                continue
            part = weights[ok] * h.loc[ok, "temperature_score_c"]
            figure = float(part.sum() / weights[ok].sum())
            share = (part / part.sum()).sort_values(ascending=False).head(n)
            top = "; ".join(
                f"{_md(h.at[i, 'company_id'])} ({h.at[i, 'temperature_score_c']:.2f}, {share[i]:.0%})"
                for i in share.index
            )
            lines.append(f"| {scope} | {method} | {figure:.2f} | {top} |")
    return "\n".join(lines)
