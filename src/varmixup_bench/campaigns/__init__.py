"""Benchmark campaigns as data: a TOML plan (dataset, preset, passes in priority order, extra steps, claims) that
`bench campaign run` executes through the sweep machinery (resumable), `status` measures, and `compose` turns
into a page whose every number is read from the records, the models or the preset.

- plan.py: the typed plan, loaded and validated before any work;
- state.py: the campaign's state file in the workdir (each pass's and step's start, end and seconds);
- steps.py: the extra steps (report pages, convergence grids, VAE figures);
- engine.py: `run_campaign`, the passes in order and then the steps;
- status.py: missing cells and measured time per pass;
- cells.py, estimate.py, probe.py: the forecast of what the missing cells cost, and probes for what it cannot
  estimate from stored records;
- rehearse.py: the whole plan at toy budgets in a workdir of its own, before a long run;
- claims.py: the plan's claims decided on the records (paired tests, Holm, per-seed verdicts);
- budget.py: the measured wall time and each model's training seconds;
- compose.py: the page (markdown) and its long CSV.
"""
