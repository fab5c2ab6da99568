"""`bench campaign compose`: the campaign's page (markdown) and its long CSV, every number read from the records
(the cells of the plan's passes, found by their sweep keys), the trained models' metadata, the state file or the
preset, never typed:

- a header: the plan, its reading (the plan's `reading` file: prose on the results, its figures cited), the
  commands that ran it, the commit, the machine, the measured wall time (state file) and
  computation time (records' and models' seconds), the time per pass and step, the training budget per model
  (campaigns.budget);
- the headline table (views.headline), a reference's numbers beside ours where the plan names one (views.beside)
  and the full matrix (views.leaderboard, wide);
- the plan's claims (campaigns.claims), each a paired test of two cells, all of the page's claims decided together
  at the page's share of results.stats.FAMILY_ALPHA (page_families: the claims, the diagnose findings and each
  table's bold marks are families that share the 5 %): "holds" (significant in the claimed direction), "does not
  hold" (significant in the opposite direction) or "within noise";
- the gradient-masking flags (views.diagnostics.diagnose) and the extra steps' outputs (copied beside the page);
- while cells or steps are missing, a PARTIAL banner listing them.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from varmixup_bench.campaigns.budget import time_section, training_rows, training_section
from varmixup_bench.campaigns.claims import claim_rows, claims_section, page_families, side_record
from varmixup_bench.campaigns.plan import Plan
from varmixup_bench.campaigns.state import CampaignState, git_commit
from varmixup_bench.campaigns.status import cell_text, pass_status, step_status
from varmixup_bench.campaigns.steps import STEPS


@dataclass
class Composed:
    page: Path
    csv: Path
    missing_cells: list[str] = field(default_factory=list)
    missing_steps: list[str] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_cells and not self.missing_steps


def _copy_out(src: Path, files: Path) -> Path:
    """A step's output (a report folder or a PNG) copied beside the page, so that the page is self-contained."""
    files.mkdir(parents=True, exist_ok=True)
    dest = files / src.name
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dest)
    return dest


def _steps_section(plan: Plan, steps, page_dir: Path, files: Path) -> str:
    if not steps:
        return ""
    out = ["## Extra steps", ""]
    for st in steps:
        if st.done is None:
            out += [f"- `{st.name}` ({st.kind}): not finished with the plan's current settings", ""]
            continue
        res = st.done.get("result") or {}
        head = f"- `{st.name}` ({st.kind}, finished {st.done['time']}, {float(st.done['seconds']):.1f} s)"
        links = [_copy_out(Path(p), files) for p in st.done.get("outputs", []) if Path(p).exists()]
        rel = [p.relative_to(page_dir) for p in links]
        out += STEPS.get(st.kind).describe(head, res, rel, st.name)
        out.append("")
    return "\n".join(out) + "\n"


def passes_of(passes: list, latest: dict[str, dict]) -> dict[tuple[str, str], list[str]]:
    """(defense, model config hash) -> the passes whose recorded cells evaluated it, in plan order."""
    out: dict[tuple[str, str], list[str]] = {}
    for st in passes:
        for key in st.keys.values():
            rec = latest.get(key)
            if rec is not None:
                names = out.setdefault((str(rec.get("defense")), str(rec.get("config_hash"))), [])
                names += [st.name] * (st.name not in names)
    return out


def finding_lines(findings: list, where: dict[tuple[str, str], list[str]]) -> list[str]:
    """One line per diagnose finding, naming the passes that evaluated its model: one defense and seed trained
    on several VAEs (a fidelity ladder) is several models, and the seed alone does not say which one fired."""
    lines = []
    for f in findings:
        names = where.get((f.defense, f.config_hash), [])
        at = f"; pass{'es' * (len(names) > 1)} {', '.join(f'`{n}`' for n in names)}" if names else ""
        lines.append(f"- ⚠ {f.dataset} {f.defense} (seed {f.seed}{at}) `{f.check}`: {f.message}")
    return lines


def compose(plan: Plan, workdir: Path, output: Path, command: str | None = None, device: str = "auto") -> Composed:
    """Write the page to `output` and the long CSV beside it (same name, .csv); returns what is still missing."""
    from varmixup_bench.core.atomic import atomic_write_text
    from varmixup_bench.results.stats import family_share, percent
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.views.diagnostics import comparisons_made
    from varmixup_bench.views.headline import render_headline
    from varmixup_bench.views.leaderboard import eps_text, flagged_frame, render, render_wide, wide_frame

    workdir, output = Path(workdir), Path(output)
    passes = pass_status(plan, workdir, device)
    steps = step_status(plan, workdir)
    latest = {r["sweep_key"]: r for r in ResultStore(workdir).records() if "sweep_key" in r}  # oldest first
    keys = {(st.name, c): k for st in passes for c, k in st.keys.items()}
    records = list({k: latest[k] for st in passes for k in st.keys.values() if k in latest}.values())
    share = family_share(page_families(plan))  # every family of the page's comparisons at its share of 5 %
    frame, findings = flagged_frame(records, alpha=share)  # findings decided once, at the page's share
    state = CampaignState(plan.state_path(workdir))
    events = state.events()
    runs = [e for e in events if e.get("event") == "run"]
    done = Composed(output, output.with_suffix(".csv"))
    done.missing_cells = [f"pass `{st.name}`: {cell_text(c, st.norm)}" for st in passes for c in st.missing]
    done.missing_steps = [f"step `{st.name}` ({st.kind})" for st in steps if st.done is None]
    vae_keys = {str((e.get("result") or {}).get("vae")) for e in state.ends() if e.get("kind") == "vae-figure"}
    models = training_rows(workdir, records, vae_keys)
    record_of = lambda name, cell: latest.get(keys.get((name, cell)))  # noqa: E731
    rows = claim_rows(plan, lambda ref: side_record(ref, record_of), share, record_of)
    done.claims = rows

    train_s = sum(m["seconds"] for m in models)
    eval_s = sum(float(r.get("seconds") or 0.0) for r in records)
    commands = list(dict.fromkeys(e["command"] for e in runs if e.get("command")))
    commands.append(command or f"bench campaign compose {plan.path} --workdir {workdir} --output {output}")
    commits = list(dict.fromkeys(str(e.get("commit")) for e in runs if e.get("commit")))
    machines = list(dict.fromkeys(f"{e.get('platform')}, {e.get('cpus')} CPUs" for e in runs if e.get("platform")))
    threads = sorted({int(r["threads"]) for r in records if r.get("threads") is not None})
    devices = sorted({str(r["device"]) for r in records if r.get("device")})
    n_images = sorted({int(r["n_examples"]) for r in records if r.get("n_examples") is not None})
    n_cells = sum(len(st.cells) for st in passes)

    parts = [f"# Campaign `{plan.name}`\n"]
    if plan.description:
        parts.append(plan.description.strip() + "\n")
    if not done.complete:
        missing = len(done.missing_cells)
        of_steps = f" and {len(done.missing_steps)} of {len(steps)} step(s)" if steps else ""
        parts.append(f"> **PARTIAL — {missing} of {n_cells} cell(s){of_steps} not recorded yet** (listed under "
                     f"\"Missing\" at the end). `bench campaign run` resumes "
                     f"and fills only those; until then the tables and verdicts below are provisional.\n")
    settings = plan.settings()
    sets = "; ".join([f"campaign: `{json.dumps(plan.overrides)}`"] * bool(plan.overrides) + [
        f"pass {p.name}: `{json.dumps({k: v for k, v in p.overrides.items() if plan.overrides.get(k) != v})}`"
        for p in plan.passes if any(plan.overrides.get(k) != v for k, v in p.overrides.items())])
    from varmixup_bench.attacks.spec import attack_class

    # a pass whose attacks take no radius (clean, corruptions, KID, ECE) has none to list
    radii = "; ".join(
        f"{p.name}: " + (", ".join(eps_text(e, p.norm) for e in p.eps) if p.eps else
                         f"{eps_text(p.settings.eps_for(None, plan.dataset), p.norm)} "
                         f"({p.settings.eps_source(None, plan.dataset)})") for p in plan.passes
        if any(attack_class(a).uses_eps for a in p.attacks))
    parts.append(
        f"Plan `{plan.path.name}` (sha256 `{plan.sha256[:12]}`): dataset `{plan.dataset}`, preset "
        f"`{settings.name}`" + (f", overrides {sets}" if sets else "") + f". Radius per pass: {radii or 'none'}. "
        f"{n_cells} cell(s) in {len(plan.passes)} pass(es), {len(records)} recorded; test images per cell: "
        f"{', '.join(map(str, n_images)) or '—'}.\n")
    parts.append("Commands:\n\n```\n" + "\n".join(commands) + "\n```\n")
    parts.append(f"Code: commit {', '.join(f'`{c}`' for c in commits) or '(none recorded)'} (runs); "
                 f"`{git_commit() or 'not a git checkout'}` (this page). Machine: {'; '.join(machines) or '—'}; "
                 f"torch threads {', '.join(map(str, threads)) or '—'}, device {', '.join(devices) or '—'} "
                 f"(the records' `threads` and `device`).\n")
    if plan.reading is not None:
        if plan.reading.is_file():
            text = plan.reading.read_text().strip()
            parts.append(text if text.startswith("## ") else "## Reading\n\n" + text)
            parts[-1] += "\n"
        else:
            parts.append(f"## Reading\n\n(not written yet: the plan names `{plan.reading.name}`)\n")
    median_s = (sum((m["median"] or 0.0) * (m["epochs"] or 0) if m.get("unclocked") else m["seconds"] for m in models)
                if any(m.get("unclocked") for m in models) else None)
    parts.append(time_section(state, len(runs), train_s, eval_s, median_s))
    table = ["| pass / step | cells | missing | runs | cells evaluated | seconds | last finished (UTC) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    table += [f"| pass `{st.name}` | {len(st.cells)} | {len(st.missing)} | {st.runs} | {st.cells_run} | "
              f"{st.seconds:.1f} | {st.last_end or '—'} |" for st in passes]
    table += [f"| step `{st.name}` | — | — | {st.runs} | — | {st.seconds:.1f} | "
              f"{st.done['time'] if st.done else '—'} |" for st in steps]
    parts.append("\n".join(table) + "\n")
    parts.append("## Training budget (measured)\n\n" + training_section(models))
    parts.append("## Headline\n\n" + (render_headline(frame, "md", alpha=share, findings=findings) if records else "(no cell recorded yet)\n"))
    wide = wide_frame(frame, alpha=share, findings=findings) if records else None
    if plan.reference and records:
        from varmixup_bench.views.beside import parse_reference, render_beside

        name, ref_dataset = parse_reference(plan.reference)
        parts.append(f"## Beside the reference (`{plan.reference}`)\n\n" + render_beside(wide, name, ref_dataset,
                                                                                            plan.settings()))
    parts.append("## Full matrix\n\n" + (render_wide(wide, "md") if records else "(no cell recorded yet)\n"))
    parts.append("## Claims\n\n" + claims_section(rows, share))
    compared = comparisons_made(frame) if records else 0
    diag = ("\n".join(finding_lines(findings, passes_of(passes, latest)))
            if findings else f"No warning sign ({compared} comparison(s) decided together, family-wise {percent(share)}).")
    parts.append("## Gradient-masking flags (`bench diagnose`'s checks on these cells, at the page's share)\n\n"
                 + diag + "\n")
    parts.append(_steps_section(plan, steps, output.parent, output.parent / f"{output.stem}-files"))
    if not done.complete:
        parts.append("## Missing\n\n" + "\n".join(f"- {m}" for m in done.missing_cells + done.missing_steps) + "\n")
    parts.append(f"The long CSV (every record field, one row per cell): [`{done.csv.name}`]({done.csv.name}).\n")
    atomic_write_text(output, "\n".join(p for p in parts if p))
    atomic_write_text(done.csv, render(frame, "csv") if records else "")
    return done
