"""The comparison figures of notebook 04: melody kept against timbre moved, and probability grids."""
from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.figure import Figure

from labutils import plots
from labutils.metrics import CALIBRATION_ROWS


def _png_size(fig: Figure) -> tuple[int, int]:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    import matplotlib.image as mpimg

    buffer.seek(0)
    image = mpimg.imread(buffer)
    return image.shape[1], image.shape[0]


def _scores(x: float, y: float) -> dict[str, float]:
    return {"probe_style_prob": x, "chroma_to_content": y}


def test_scatter_marks_calibration_rows_as_stars_on_a_given_axes():
    triples = [{"attempt": _scores(0.2, 0.9), "content copied": _scores(0.0, 1.0), "truth": _scores(0.95, 0.9),
                "equaliser": _scores(0.3, math.nan)},
               {"attempt": _scores(0.6, 0.7), "content copied": _scores(0.01, 1.0), "truth": _scores(0.9, 0.92),
                "equaliser": _scores(0.2, 0.6)}]
    fig = Figure(layout="constrained")
    ax = fig.add_subplot()
    out = plots.melody_timbre_scatter(triples, xlabel="timbre moved", ax=ax)
    assert out is fig
    by_label = {c.get_label(): c for c in ax.collections}
    assert set(by_label) == {"attempt", "content copied", "truth", "equaliser"}
    assert len(by_label["attempt"].get_offsets()) == 2
    assert len(by_label["equaliser"].get_offsets()) == 1  # the NaN point is left out
    assert by_label["truth"].get_sizes()[0] > by_label["attempt"].get_sizes()[0]  # stars stand out
    assert ax.get_xlabel() == "timbre moved"
    assert any(abs(line.get_ydata()[0] - 0.8) < 1e-9 for line in ax.get_lines())  # the success threshold
    assert set(CALIBRATION_ROWS) >= {"content copied", "truth", "equaliser"}
    w, h = _png_size(fig)
    assert w > 100 and h > 100


def test_scatter_accepts_one_comparison_and_makes_its_own_figure():
    fig = plots.melody_timbre_scatter({"a": _scores(0.5, 0.5), "style copied": _scores(0.9, 0.3)})
    assert isinstance(fig, Figure) and len(fig.axes[0].collections) == 2


def test_probability_grid_writes_values_and_outlines_the_highlighted_column():
    values = {"attempt": {"piano": 0.7, "violin": 0.3}, "truth": {"piano": 0.05, "violin": 0.95},
              "equaliser": {"piano": 0.9}}
    fig = Figure(layout="constrained")
    ax = fig.add_subplot()
    assert plots.probability_grid(values, highlight="violin", ax=ax) is fig
    image = ax.images[0].get_array()
    assert image.shape == (3, 2) and np.ma.is_masked(image[2, 1])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["attempt", "truth", "equaliser"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["0.70", "0.30", "0.05", "0.95", "0.90"])
    assert len(ax.patches) == 1 and ax.patches[0].get_x() == 0.5  # the violin column
    assert len(fig.axes) == 2  # the colour bar
    w, h = _png_size(fig)
    assert w > 100 and h > 100


def test_figure_html_embeds_a_png_with_its_class():
    import base64
    import re

    fig = Figure(figsize=(3, 2), layout="constrained")
    plots.loss_curve([{"step": 1, "total": [2.0]}, {"step": 2, "total": [1.0]}], ax=fig.add_subplot(), title="t")
    out = plots.figure_html(fig, css_class="lab-compare-loss", alt="loss curves")
    m = re.search(r"<img class='lab-compare-loss' alt='loss curves' src='data:image/png;base64,([^']+)'", out.data)
    assert m, out.data[:200]
    assert base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
