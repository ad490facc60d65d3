"""Drill reports: the JSON report and its text (report.py), the HTML page
(htmlpage.py) and the history of past runs (history.py)."""
