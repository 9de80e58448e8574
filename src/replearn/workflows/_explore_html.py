"""The explorer page: one self-contained Bokeh HTML file (every script inlined, no network).

One data source holds every point (position, thumbnail, label, prediction, confidence, real or SYNTHETIC);
one tab per colouring shares it, so a lasso or box selection made in any tab is the same selection, and
the "Export selection as CSV" button downloads it. Each class is its own renderer, so clicking a legend
entry hides or shows that class.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from replearn.workflows._explore_data import NO_LABEL, Points

THUMB_PX = 96
"""Shown size of a thumbnail in the hover box (the crop itself, scaled up without smoothing)."""

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
GREY = "#b0b0b0"

EXPORT_JS = """
const d = source.data, rows = ["index,item,x,y,label,predicted,confidence,source"];
const q = (s) => '"' + String(s).replace(/"/g, '""') + '"';
for (const i of source.selected.indices) {
  rows.push([d.index[i], q(d.item[i]), d.x[i], d.y[i], q(d.label[i]), q(d.predicted[i]), d.confidence[i],
             d.source[i]].join(","));
}
const blob = new Blob([rows.join("\\n") + "\\n"], {type: "text/csv"});
const a = document.createElement("a");
a.href = URL.createObjectURL(blob); a.download = "selection.csv"; a.click();
"""
"""The one hand-written callback: the selected rows (index, item, 2-D position, ...) as CSV."""

TOOLTIP = f"""<div><img src="@thumb" width="{THUMB_PX}" height="{THUMB_PX}" style="image-rendering: pixelated;
border: 1px solid #888"></div><div><b>@item</b> (index @index)</div><div>label: @label</div>
<div>predicted: @predicted (@confidence{{0.00}})</div><div>@source</div>"""


def thumbnail(image: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of one (H, W) crop (uint8, or float in [0, 1])."""
    from PIL import Image

    pixels = image if image.dtype == np.uint8 else np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _names(values: np.ndarray, class_names: list[str], none: str) -> list[str]:
    return [none if v == NO_LABEL else (class_names[v] if v < len(class_names) else str(int(v))) for v in values]


def page(points: Points, xy: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, title: str,
         note: str) -> str:
    """The HTML text: the (N, 2) positions ``xy`` of ``points``, their predictions (N,) and confidences (N,)."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import (
        Button,
        CDSView,
        ColorBar,
        ColumnDataSource,
        CustomJS,
        Div,
        GroupFilter,
        HoverTool,
        LinearColorMapper,
        TabPanel,
        Tabs,
    )
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    names = list(points.class_names)
    data = {
        "x": xy[:, 0], "y": xy[:, 1], "index": points.index, "item": points.items,
        "thumb": [thumbnail(im) for im in points.images],
        "label": _names(points.labels, names, "unlabelled"),
        "predicted": _names(predicted, names, "none"),
        "confidence": np.nan_to_num(confidence, nan=-1.0),
        "source": ["SYNTHETIC" if s else "real" for s in points.synthetic],
    }
    source = ColumnDataSource(data, name="points")
    tools = "pan,wheel_zoom,box_select,lasso_select,reset,save"

    def panel(name: str) -> tuple[object, object]:
        fig = figure(width=760, height=600, tools=tools, active_drag="lasso_select", output_backend="webgl",
                     title=f"{title}: colour by {name}")
        fig.add_tools(HoverTool(tooltips=TOOLTIP))
        fig.xaxis.axis_label, fig.yaxis.axis_label = "view 1", "view 2"
        return fig, TabPanel(child=fig, title=name)

    def grouped(column_name: str, groups: list[str]) -> TabPanel:
        fig, tab = panel(column_name)
        for k, group in enumerate(groups):
            colour = GREY if group in ("unlabelled", "none") else PALETTE[k % len(PALETTE)]
            view = CDSView(filter=GroupFilter(column_name=column_name, group=group))
            fig.scatter("x", "y", source=source, view=view, size=6, alpha=0.7, color=colour,
                        legend_label=f"{group} ({data[column_name].count(group)})")
        fig.legend.click_policy = "hide"
        fig.legend.location = "top_left"
        return tab

    present = [n for n in names if n in set(data["label"])] + ["unlabelled"] * ("unlabelled" in data["label"])
    tabs = [grouped("label", present)]
    if (predicted != NO_LABEL).any():
        tabs.append(grouped("predicted", [n for n in names if n in set(data["predicted"])]))
        fig, tab = panel("confidence")
        mapper = LinearColorMapper(palette="Viridis256", low=float(np.nanmin(confidence)), high=1.0)
        fig.scatter("x", "y", source=source, size=6, alpha=0.7, color={"field": "confidence", "transform": mapper})
        fig.add_layout(ColorBar(color_mapper=mapper, title="confidence (top class probability)"), "right")
        tabs.append(tab)
    tabs.append(grouped("source", sorted(set(data["source"]))))

    button = Button(label="Export selection as CSV", button_type="primary", width=240)
    button.js_on_event("button_click", CustomJS(args={"source": source}, code=EXPORT_JS))
    header = Div(text=f"<h2>{title}</h2><p>{note}</p><p>Hover a point to see its crop; click a legend entry "
                      "to hide or show a class; select with the lasso or box tool (shift adds), then export the "
                      "selection as CSV (index, item, 2-D position, label, prediction, confidence, source).</p>",
                 width=760)
    return file_html(column(header, Tabs(tabs=tabs), button), INLINE, title)
