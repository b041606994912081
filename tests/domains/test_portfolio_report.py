"""The company temperature score report: extremes tables and the distribution chart shown in the UI."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import dagster as dg
import pandas as pd
import pytest
from domain_inputs import BENCHMARK_ID

from domains.portfolio_alignment import assets, report
from mesh_assets.ingest.cleaning import Cleaned

SVG_NS = "{http://www.w3.org/2000/svg}"


def _scores(values: list[float | None], sources: list[str] | None = None, **columns: list) -> pd.DataFrame:
    n = len(values)
    frame = pd.DataFrame(
        {
            "company_id": [f"C{i:02d}" for i in range(n)],
            "base_company_id": [f"C{i:02d}" for i in range(n)],
            "company_name": [f"Company {i:02d}" for i in range(n)],
            "sector": ["Steel"] * n,
            "scope": ["S1S2"] * n,
            "benchmark_id": [BENCHMARK_ID] * n,
            "temperature_score_c": pd.array(values, dtype="Float64"),
            "score_source": sources or ["trend"] * n,
        }
    )
    for name, values_ in columns.items():
        frame[name] = values_
    return frame


def _table_rows(markdown: str) -> list[list[str]]:
    """Body rows of every markdown table in ``markdown``, cells stripped (header and rule rows dropped)."""
    lines = markdown.splitlines()
    rule = [line.startswith("|") and set(line) <= set("|-: ") for line in lines]
    rows = []
    for i, line in enumerate(lines):
        if not line.startswith("|") or rule[i] or (i + 1 < len(lines) and rule[i + 1]):
            continue
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def _decode_svg(markdown: str) -> ET.Element:
    match = re.match(r"!\[([^\]]*)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:200]
    return ET.fromstring(base64.b64decode(match.group(2)).decode("utf-8"))


# ---- extremes ------------------------------------------------------------------------------------
def test_extremes_rank_the_highest_and_lowest_scores() -> None:
    frame = _scores([1.0 + 0.1 * i for i in range(25)])  # Company 24 is the hottest, Company 00 the coolest
    top = report.extremes_markdown(frame, n=10, end="highest")
    bottom = report.extremes_markdown(frame, n=10, end="lowest")
    assert top.startswith("**10 highest of 25 scores (least aligned)**")
    assert bottom.startswith("**10 lowest of 25 scores (best aligned)**")
    top_rows, bottom_rows = _table_rows(top), _table_rows(bottom)
    assert [r[0] for r in top_rows] == [str(i) for i in range(1, 11)]
    assert [r[1] for r in top_rows] == [f"Company {i:02d}" for i in range(24, 14, -1)]
    assert [r[0] for r in bottom_rows] == [str(i) for i in range(16, 26)]
    assert [r[1] for r in bottom_rows] == [f"Company {i:02d}" for i in range(9, -1, -1)]
    assert top_rows[0][2:] == ["Steel", "3.40", "trend"]
    assert bottom_rows[-1][2:] == ["Steel", "1.00", "trend"]
    assert "| # | company | sector | score °C | source |" in top  # one scope: no scope column


def test_extremes_of_fewer_companies_than_asked_list_them_all() -> None:
    frame = _scores([2.0, 3.0, 1.5])
    top = _table_rows(report.extremes_markdown(frame, n=10))
    bottom = _table_rows(report.extremes_markdown(frame, n=10, end="lowest"))
    assert [r[:2] for r in top] == [["1", "Company 01"], ["2", "Company 00"], ["3", "Company 02"]]
    assert bottom == top
    with pytest.raises(ValueError, match="highest"):
        report.extremes_markdown(frame, end="middle")


def test_extremes_break_ties_by_name_and_skip_missing_scores() -> None:
    frame = _scores([3.2, 3.2, None, 2.0], ["default", "default", "trend", "target"])
    frame["company_name"] = pd.array(["Zeta", "Alpha", "Gamma", "Mid"], dtype="string")
    text = report.extremes_markdown(frame)
    assert [r[1] for r in _table_rows(text)] == ["Alpha", "Zeta", "Mid"]  # C01 before C00: by name
    assert "of 3 scores" in text


def test_extremes_cells_are_escaped_named_marked_and_shortened() -> None:
    frame = _scores([4.0, 3.0, 2.0, 1.5])
    frame["company_name"] = pd.array(
        ["Pipe | Co *bold*", None, "Split Co", "A Very Long Company Name Holdings International"],
        dtype="string",
    )
    frame.loc[2, "company_id"] = "C02+Gas Utilities"
    frame.loc[2, "base_company_id"] = "C02"
    rows = _table_rows(report.extremes_markdown(frame))
    assert rows[0][1] == r"Pipe \| Co \*bold\*"  # a pipe would otherwise split the table row
    assert rows[1][1] == "C01"  # no name: the id
    assert rows[2][1] == "Split Co (split)"
    assert rows[3][1] == "A Very Long Company Name Holdin…"
    assert len(rows[3][1]) == report.NAME_CHARS
    assert all(len(r) == 5 for r in rows)


def test_extremes_show_the_scope_when_there_are_several() -> None:
    frame = _scores([2.0, 3.0], scope=["S1S2", "S1S2S3"])
    text = report.extremes_markdown(frame)
    assert "| # | company | sector | scope | score °C | source |" in text
    assert _table_rows(text)[0] == ["1", "Company 01", "Steel", "S1S2S3", "3.00", "trend"]


def test_extremes_of_nothing() -> None:
    assert report.extremes_markdown(_scores([None])) == "no scored companies"


# ---- histogram -----------------------------------------------------------------------------------
def test_histogram_counts_every_score_once_per_source() -> None:
    frame = _scores([1.26, 1.49, 1.5, 3.2, 3.2, 4.5, None], ["target", "trend", "trend"] + ["default"] * 4)
    bins = report.histogram(frame, width=0.25)
    assert (bins[0].low, bins[-1].high, len(bins)) == (1.0, 4.5, 14)
    assert sum(b.total for b in bins) == 6  # the missing score is not counted
    by_low = {b.low: b.counts for b in bins}
    assert by_low[1.25] == {"target": 1, "trend": 1, "default": 0}
    assert by_low[1.5] == {"target": 0, "trend": 1, "default": 0}
    assert by_low[3.0]["default"] == 2
    assert bins[-1].counts["default"] == 1  # the upper edge falls in the last bin


def test_histogram_widens_to_take_in_outliers() -> None:
    bins = report.histogram(_scores([0.6, 5.1]), width=0.5, low=1.0, high=4.5)
    assert (bins[0].low, bins[-1].high) == (0.5, 5.5)
    assert bins[0].total == 1 and bins[-1].total == 1 and sum(b.total for b in bins) == 2


def test_histogram_svg_draws_one_bar_segment_per_source_and_bin() -> None:
    frame = _scores([1.3, 1.4, 1.4, 3.2], ["target", "trend", "trend", "default"])
    svg = ET.fromstring(report.histogram_svg(report.histogram(frame), reference_c=1.5, title="T & t"))
    segments = [r for r in svg.iter(f"{SVG_NS}rect") if r.find(f"{SVG_NS}title") is not None]
    titles = sorted(r.find(f"{SVG_NS}title").text for r in segments)
    assert titles == ["1.25–1.50 °C, target: 1", "1.25–1.50 °C, trend: 2", "3.00–3.25 °C, default: 1"]
    fills = {r.find(f"{SVG_NS}title").text.split(", ")[1].split(":")[0]: r.get("fill") for r in segments}
    assert fills == {
        "target": report.SOURCES["target"],
        "trend": report.SOURCES["trend"],
        "default": "#b0b7bf",
    }
    # stacked: the trend segment sits on top of the target segment of the same bar
    seg = {r.find(f"{SVG_NS}title").text: r for r in segments}
    target, trend = seg["1.25–1.50 °C, target: 1"], seg["1.25–1.50 °C, trend: 2"]
    assert float(trend.get("y")) + float(trend.get("height")) == pytest.approx(
        float(target.get("y")), abs=0.11
    )
    assert float(trend.get("height")) == pytest.approx(2 * float(target.get("height")), abs=0.2)
    texts = [t.text for t in svg.iter(f"{SVG_NS}text")]
    assert "T & t" in texts and "benchmark 1.5 °C" in texts
    assert {"target (1)", "trend (2)", "default (1)"} <= set(texts)


def test_distribution_bars_stack_one_character_per_source() -> None:
    frame = _scores(
        [1.3, 1.3, 1.4, 1.4, 1.45, 1.6, 3.2, 3.2, None],
        ["target", "target", "trend", "trend", "trend", "target", "default", "default", "default"],
    )
    text = report.distribution_bars_markdown(frame)
    table, summary = text.split("\n\n")
    lines = table.splitlines()
    assert lines[0] == "| °C | n | █ target ▓ trend ░ default |"
    rows = _table_rows(table)
    # from the first to the last non-empty bin, empty bins in between kept
    assert [r[0] for r in rows] == [
        f"{lo:.2f}–{lo + 0.25:.2f}" for lo in (1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0)
    ]
    assert rows[0][1:] == ["5", "█" * 10 + "▓" * 14]  # the fullest bin: BAR_CHARS characters
    assert rows[1][1:] == ["1", "█" * 5]
    assert rows[2][1:] == ["0", ""]
    assert rows[-1][1:] == ["2", "░" * 10]
    assert summary.startswith("8 scores · median ")
    assert summary.endswith("target 3, trend 3, default 2 · 1 without a score")


def test_distribution_bars_show_a_rare_source() -> None:
    frame = _scores([1.3] * 60 + [1.4], ["target"] * 60 + ["default"])
    rows = _table_rows(report.distribution_bars_markdown(frame))
    assert rows[0][2] == "█" * 24 + "░"  # 1 of 61 still gets a character


def test_distribution_markdown_is_an_inline_svg_image_and_a_summary() -> None:
    frame = _scores([1.3, 1.4, 2.0, 3.2, None], ["target", "trend", "trend", "default", "default"])
    frame["benchmark_temperature_c"] = 1.5
    text = report.distribution_markdown(frame)
    image, summary = text.split("\n\n")
    svg = _decode_svg(image)
    assert svg.get("width") == "640"
    assert f"Company temperature scores against {BENCHMARK_ID}: 4 entities" in [
        t.text for t in svg.iter(f"{SVG_NS}text")
    ]
    assert image.startswith("![histogram of 4 temperature scores")
    assert summary == (
        "4 scores · median 1.70 °C · mean 1.98 °C · range 1.30–3.20 °C · target 1, trend 2, default 1"
        " · 1 without a score"
    )


def test_distribution_of_nothing() -> None:
    assert report.distribution_markdown(_scores([None])) == "no scored companies"
    assert report.distribution_bars_markdown(_scores([None])) == "no scored companies"
    assert set(report.score_report_metadata(_scores([None]))) == {
        "mesh/score_highest",
        "mesh/score_lowest",
        "mesh/score_distribution",
        "mesh/score_chart",
    }


# ---- on the real sample and on the asset ---------------------------------------------------------
def test_report_of_the_sample_scores(company_scores: Cleaned) -> None:
    # the asset reports the S1S2 scores (one row per company)
    scores = company_scores.data[company_scores.data["scope"] == "S1S2"].reset_index(drop=True)
    metadata = report.score_report_metadata(scores)
    assert set(metadata) == {
        "mesh/score_highest",
        "mesh/score_lowest",
        "mesh/score_distribution",
        "mesh/score_chart",
        "mesh/score_median_c",
        "mesh/score_default_share",
    }
    # The Dagster UI draws markdown under 1,000 characters in the metadata table itself.
    for key in ("mesh/score_highest", "mesh/score_lowest", "mesh/score_distribution"):
        assert len(metadata[key].value) < 1000, key
    top = _table_rows(metadata["mesh/score_highest"].value)
    bottom = _table_rows(metadata["mesh/score_lowest"].value)
    assert len(top) == len(bottom) == 10
    assert float(top[0][3]) == pytest.approx(scores["temperature_score_c"].max(), abs=0.005)
    assert float(bottom[-1][3]) == pytest.approx(scores["temperature_score_c"].min(), abs=0.005)
    assert bottom[-1][0] == str(len(scores))
    bars = _table_rows(metadata["mesh/score_distribution"].value)
    assert sum(int(r[1]) for r in bars) == len(scores)
    svg = _decode_svg(metadata["mesh/score_chart"].value)
    legend = {t.text for t in svg.iter(f"{SVG_NS}text")}
    counts = scores["score_source"].value_counts()
    assert {f"{s} ({int(counts[s])})" for s in counts.index} <= legend
    assert "benchmark 1.5 °C" in legend
    assert sum(b.total for b in report.histogram(scores)) == len(scores)
    assert metadata["mesh/score_median_c"].value == pytest.approx(
        scores["temperature_score_c"].median(), abs=1e-4
    )
    share = (scores["score_source"] == "default").mean()
    assert metadata["mesh/score_default_share"].value == pytest.approx(share, abs=1e-4)


def test_company_temperature_scores_asset_publishes_the_report(
    company_master: Cleaned,
    reported_emissions: Cleaned,
    production: Cleaned,
    company_targets: Cleaned,
    intensity_pathways: Cleaned,
    portfolio_holdings: Cleaned,
    emission_intensities: Cleaned,
) -> None:
    from domain_inputs import read_bench_json

    from domains.benchmarks import transforms as benchmarks

    production_pathways = benchmarks.production_pathways(read_bench_json("benchmark_production_OECM.json"))
    output = assets.company_temperature_scores(
        assets.ScoringConfig(benchmark_id=BENCHMARK_ID),
        company_master=company_master.data,
        reported_emissions=reported_emissions.data,
        production=production.data,
        company_targets=company_targets.data,
        intensity_pathways=intensity_pathways.data,
        production_pathways=production_pathways.data,
        emission_intensities=emission_intensities.data,
        portfolio_holdings=portfolio_holdings.data,
    )
    assert isinstance(output, dg.Output)
    # every portfolio figure lists the holdings that drive it, with their share of the figure
    contributors = output.metadata["mesh/portfolio_top_contributors"].value
    rows = _table_rows(contributors)
    assert {(r[0], r[1]) for r in rows} >= {(s, m) for s in ("S1S2", "S3") for m in ("WATS", "ECOTS", "TETS")}
    assert all("%" in r[3] for r in rows)
    assert output.metadata["mesh/scores_capped"].value >= 0
    md = output.metadata["mesh/score_highest"]
    assert isinstance(md, dg.MarkdownMetadataValue) and "highest of" in md.value
    assert output.metadata["mesh/score_chart"].value.startswith("![histogram of")
    assert "mesh/rejected_rows" in output.metadata and output.metadata["benchmark_id"].value == BENCHMARK_ID
