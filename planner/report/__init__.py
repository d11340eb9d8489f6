"""Reports: one pure function per figure, the plan explanation, the what-ifs and one HTML page.

``build_report(ReportInputs(plan, ...)) -> Report``; ``planner.io.report.write_report`` writes it.
"""

from planner.report.build import Report, ReportFigure, ReportInputs, build_report, frontier_points

__all__ = ["Report", "ReportFigure", "ReportInputs", "build_report", "frontier_points"]
