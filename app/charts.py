"""Plotly figure builders for the live progress and comparison views.

Pure functions: plain data in (lists / dicts as the services return them), a figure out.
An empty input gives a figure that says "no data yet" instead of an empty frame.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

HEIGHT = 320
_LAYOUT = dict(height=HEIGHT, margin=dict(l=40, r=10, t=40, b=40), legend=dict(orientation="h"))


def _empty(title: str, note: str = "No data yet") -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **_LAYOUT)
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="gray"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def round_name(r: int) -> str:
    return "teacher" if r == 0 else f"round {r}"


def metrics_figure(metrics: list[dict], title: str = "Evaluation after each round") -> go.Figure:
    """Accuracy and macro-F1 per round (round 0 = the teacher)."""
    rows = [m for m in metrics if m.get("accuracy") is not None or m.get("macro_f1") is not None]
    if not rows:
        return _empty(title, "No evaluation yet (or no evaluation set)")
    x = [round_name(m["round"]) for m in rows]
    fig = go.Figure()
    for key, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        fig.add_trace(go.Scatter(x=x, y=[m.get(key) for m in rows], mode="lines+markers", name=name))
    fig.update_layout(title=title, yaxis=dict(range=[0, 1.02], tickformat=".0%"), **_LAYOUT)
    return fig


LOSS_MARKERS_UP_TO = 200  # points of one phase's loss line drawn with markers


def loss_figure(losses: list[dict], title: str = "Training loss") -> go.Figure:
    """Loss against the global step, one line per phase (teacher, kd, meta, labeled)."""
    if not losses:
        return _empty(title)
    fig = go.Figure()
    phases: dict[str, list[dict]] = {}
    for row in losses:
        phases.setdefault(str(row.get("phase")), []).append(row)
    for phase, rows in phases.items():
        fig.add_trace(go.Scatter(
            x=[r["global_step"] for r in rows], y=[r["loss"] for r in rows],
            # a marker is an SVG node the browser redraws: none on a long curve
            mode="lines+markers" if len(rows) <= LOSS_MARKERS_UP_TO else "lines",
            marker=dict(size=4), name=phase,
            customdata=[r.get("round") for r in rows],
            hovertemplate="step %{x}<br>loss %{y:.4f}<br>round %{customdata}<extra>" + phase + "</extra>",
        ))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss", **_LAYOUT)
    return fig


def weights_figure(weights: dict[int, list[float]], title: str = "Meta weights of pseudo-labels") -> go.Figure:
    """Overlaid histograms of the meta weights, one per round."""
    if not any(weights.values()):
        return _empty(title, "No meta weights yet")
    fig = go.Figure()
    for r, values in sorted(weights.items()):
        fig.add_trace(go.Histogram(x=values, name=round_name(r), opacity=0.6, nbinsx=30))
    fig.update_layout(title=title, barmode="overlay", xaxis_title="mean meta weight",
                      yaxis_title="documents", **_LAYOUT)
    return fig


def pseudo_accuracy_figure(rows: list[dict], title: str = "Pseudo-label accuracy vs gold",
                           empty_note: str = "No pseudo-labels yet") -> go.Figure:
    """Share of pseudo-labels that agree with the imported gold label, per round;
    `empty_note` says why there is nothing to show (the page knows which case it is)."""
    rows = [r for r in rows if r.get("accuracy") is not None]
    if not rows:
        return _empty(title, empty_note)
    fig = go.Figure(go.Bar(
        x=[round_name(r["round"]) for r in rows], y=[r["accuracy"] for r in rows],
        text=[f"{100 * r['accuracy']:.1f}%" for r in rows], textposition="auto",
        name="pseudo-label accuracy",
    ))
    fig.update_layout(title=title, yaxis=dict(range=[0, 1.02], tickformat=".0%"), **_LAYOUT)
    return fig


def _plain(name: object) -> str:
    """A class name as text: Plotly renders a subset of HTML (links, bold) in axis labels,
    and class names are user input."""
    return html.escape(str(name), quote=False)


def class_distribution_figure(dist: dict, title: str = "Classes: pseudo-labels vs labels") -> go.Figure:
    """Share of each class among the training labels and among the round's pseudo-labels."""
    labels, pseudo = dist.get("labels") or {}, dist.get("pseudo") or {}
    classes = list(dict.fromkeys([*labels, *pseudo]))
    shown = [_plain(c) for c in classes]
    if not classes or not (sum(labels.values()) or sum(pseudo.values())):
        return _empty(title)
    fig = go.Figure()
    for name, counts in (("labels", labels), (f"pseudo-labels ({round_name(dist['round'])})"
                                               if dist.get("round") is not None else "pseudo-labels", pseudo)):
        total = sum(counts.values()) or 1
        fig.add_trace(go.Bar(
            x=shown, y=[counts.get(c, 0) / total for c in classes], name=name,
            customdata=[counts.get(c, 0) for c in classes],
            hovertemplate="%{x}: %{customdata} (%{y:.0%})<extra></extra>",
        ))
    fig.update_layout(title=title, barmode="group", yaxis=dict(tickformat=".0%"), **_LAYOUT)
    return fig


def confusion_figure(conf: dict | None, title: str = "Confusion matrix") -> go.Figure:
    """Rows = true class, columns = predicted class, of the latest evaluation."""
    if not conf:
        return _empty(title, "No evaluation yet")
    labels, matrix = [_plain(c) for c in conf["labels"]], conf["matrix"]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=labels, y=labels, colorscale="Blues", text=matrix, texttemplate="%{text}",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>", showscale=False,
    ))
    fig.update_layout(
        title=f"{title} ({round_name(conf['round'])})", xaxis_title="predicted",
        yaxis_title="true", yaxis=dict(autorange="reversed"), **_LAYOUT,
    )
    return fig


def compare_figure(series: dict[str, list[dict]], key: str = "accuracy",
                   title: str = "Accuracy per round") -> go.Figure:
    """One line per run: `series` maps a run name to its round metrics."""
    fig = go.Figure()
    any_data = False
    for name, metrics in series.items():
        rows = [m for m in metrics if m.get(key) is not None]
        if rows:
            any_data = True
            fig.add_trace(go.Scatter(x=[round_name(m["round"]) for m in rows],
                                     y=[m[key] for m in rows], mode="lines+markers", name=name))
    if not any_data:
        return _empty(title, "No evaluation yet")
    fig.update_layout(title=title, yaxis=dict(range=[0, 1.02], tickformat=".0%"), **_LAYOUT)
    return fig


def reliability_figure(bins: list[dict] | None, ece: float | None,
                       title: str = "Reliability (calibration)") -> go.Figure:
    """Accuracy against mean confidence per confidence bin, with the diagonal of a perfectly
    calibrated model; bar width shows nothing, the hover gives each bin's count."""
    rows = [b for b in bins or [] if b["count"]]
    if not rows:
        return _empty(title, "No per-example evaluation stored for this run")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dash", color="gray")))
    fig.add_trace(go.Scatter(
        x=[b["confidence"] for b in rows], y=[b["accuracy"] for b in rows],
        mode="lines+markers", name="this model",
        marker=dict(size=[6 + 14 * b["count"] / max(r["count"] for r in rows) for b in rows]),
        customdata=[[b["count"], b["lo"], b["hi"]] for b in rows],
        hovertemplate="confidence %{customdata[1]:.1f}–%{customdata[2]:.1f}<br>mean "
                      "confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata[0]} examples"
                      "<extra></extra>",
    ))
    shown = f"{title}: ECE {100 * ece:.1f} %" if ece is not None else title
    fig.update_layout(title=shown, xaxis=dict(range=[0, 1.02], title="confidence (top class)",
                                              tickformat=".0%"),
                      yaxis=dict(range=[0, 1.02], title="accuracy", tickformat=".0%"), **_LAYOUT)
    return fig
