"""DataFrames -> tables, matplotlib figures and the HTML report. Reports never reach into the engine."""
