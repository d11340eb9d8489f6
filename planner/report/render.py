"""Figure -> bytes (SVG, PNG), deterministic: the same figure gives the same bytes.

SVG ids are hashed with a fixed ``svg.hashsalt`` and the date metadata is left out; PNG carries no
date either. Text stays text in the SVG (``svg.fonttype: none``), which keeps files small.
"""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure

_RC = {"svg.hashsalt": "pipeplan-report", "svg.fonttype": "none", "path.simplify": True}
PNG_DPI = 110


def svg_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "pipeplan"})
    return buffer.getvalue()


def png_bytes(fig: Figure, dpi: int = PNG_DPI) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": "pipeplan"})
    return buffer.getvalue()
