"""The attention study (issue 17): for one run, where each of its maps points, whether the score
depends on what the map shows, and what the mechanism costs; written to RUN/study.json.

- `run.py`: `run_study(run, data, limit)`, the body of `cxr-attention study` (the study.json
  fields are documented there);
- `blanking.py`: the faithfulness check (blank the attended region vs a random one of its size);
- `cost.py`: parameters and CPU latency against the same backbone without attention.

This package file imports nothing heavy: the report and the app read `STUDY` from here.
"""

STUDY = "study.json"  # RUN/study.json
