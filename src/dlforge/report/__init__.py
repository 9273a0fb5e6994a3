"""The run report: plots (`plots`) and one self-contained HTML page (`html`)."""

from dlforge.report.html import ReportData, render_report, write_report

__all__ = ["ReportData", "render_report", "write_report"]
