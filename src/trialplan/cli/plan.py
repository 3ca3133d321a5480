"""``trialplan plan``: the whole trial's sample-size plan from a trial file."""

from __future__ import annotations

import click

from trialplan.numfmt import count as _n


@click.command("plan")
@click.argument("trial_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the plan as JSON to this file (e.g. plan.json).")
@click.option("--figures", type=click.Path(file_okay=False),
              help="Write the figures (svg and png) into this directory.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def plan_cmd(trial_file, as_json, output, figures, force):
    """Sample size, mechanism power, recruitment, pilot and sensitivity for TRIAL_FILE.

    \b
    Examples:
      trialplan plan trial.yaml
      trialplan plan trial.yaml --figures figs/ -o plan.json
    """
    from trialplan.cli._output import json_text
    from trialplan.fileio import check_directory, check_target
    from trialplan.model.checks import load_trial
    from trialplan.planning import build_plan
    from trialplan.render.plan_figures import figure_names

    if output:  # refuse an unusable output before any work
        check_target(output, force=force)
    if figures:
        check_directory(figures, figure_names(), force=force)
    trial = load_trial(trial_file)
    plan = build_plan(trial)
    text = json_text(plan)
    written = []
    if output:
        from trialplan.fileio import write_output

        write_output(output, text, force=force)
        written.append(output)
    if figures:
        from trialplan.render.plan_figures import write_plan_figures

        written += write_plan_figures(trial, plan, figures, force=force)
    if as_json:
        click.echo(text, nl=False)
    else:
        click.echo(summary(plan))
    for path in written:
        click.echo(f"wrote {path}", err=True)


def _assurance_lines(asr) -> list[str]:
    if not asr:
        return []
    lines = ["", "ASSURANCE  expected power over the priors (O'Hagan et al. 2005)"]
    for r in asr["priors"]:
        lines.append(f"  {r['field']}: {r['distribution']}, value used {r['centre']:.4g}, "
                     f"95% of the prior {r['interval_95'][0]:.3g} to {r['interval_95'][1]:.3g}")
    pr = asr.get("primary")
    if pr:
        lines.append(f"  primary: assurance {pr['assurance']:.3f} +/- {pr['mc_se']:.3f} MC SE "
                     f"({pr['draws']:,} draws, seed {pr['seed']}) against power "
                     f"{asr['power_at_point_values']:.3f}; P(effect favours the intervention) "
                     f"{pr['prob_effect_favourable']:.3f}")
        lines.append("  n to recruit -> power, assurance: " + "; ".join(
            f"{c['n_to_recruit']:,} -> "
            + (f"{c['power']:.3f}" if c["power"] is not None else "-")
            + f", {c['assurance']:.3f}" for c in asr["curve"]))
    target = asr.get("n_for_target")
    if target:
        lines.append(f"  assurance {asr['target']:g}: " + (
            f"recruit {target['n_to_recruit']:,} (assurance {target['assurance']:.3f})"
            if target.get("n_to_recruit") else target["reason"]))
    mcid = asr.get("mcid")
    if mcid and mcid.get("power") is not None:
        lines.append(f"  MCID {mcid['value']:g} ({mcid['scale']}): power {mcid['power']:.3f}; "
                     f"assumed effect {mcid['assumed_effect']:.4g}")
    for m in asr.get("mechanisms", []):
        if m.get("assurance") is not None:
            name = m["mechanism"] + (f" ({m['mediator']})" if m.get("mediator") else "")
            lines.append(f"  {name}: assurance {m['assurance']:.3f} +/- "
                         f"{m['mc_se']:.3f} ({m['draws']:,} draws) against power "
                         f"{m['power_at_planned_n']:.3f}")
    return lines


def summary(plan: dict) -> str:
    """A readable account of the plan: every number with what it assumes."""
    a = plan["assumptions"]
    p = plan["primary"]
    r = p["result"]
    f = plan["final"]
    title = plan["trial"]["acronym"] or plan["trial"]["title"]
    lines = [f"Sample-size plan: {title}", ""]
    lines.append(f"PRIMARY OUTCOME  {p['label']} ({p['type']}, {', '.join(p['timepoints'])})")
    lines.append(f"  {r['method']}")
    eff = ", ".join(f"{k} {v:.4g}" for k, v in r["effect"].items())
    att = p["attrition"]
    lines.append(f"  effect: {eff}; alpha {a['alpha']:g}; power {a['power']:g}; attrition "
                 f"{att['rate']:g} (from {att['source']})")
    cl = a["clustering"]
    if cl["kind"] == "partial":
        lines.append(f"  partially nested by peer worker: ICC {cl['icc']:g}, caseload "
                     f"{cl['cluster_size']:g} allocated ({f['cluster_size_analysed']:.3g} "
                     f"analysed); design effect (intervention arm) "
                     f"{r['design_effect']['intervention']:.4g}; "
                     + (f"control arm variance: {cl['control_variance']}"
                        if p["type"] == "continuous"
                        else "ICC on the intervention arm's total variance"))
    elif cl["kind"] == "cluster":
        lines.append(f"  cluster randomised: ICC {cl['icc']:g}, {cl['cluster_size']:g} "
                     f"recruited and {f['cluster_size_analysed']:.3g} analysed per cluster, CV "
                     f"of cluster size {f['cluster_cv']:g}; design effect "
                     f"{r['design_effect']['control']:.4g}")
    lines.append(f"  analysed per arm: control {_n(r['n_analysed_per_arm']['control'])}, "
                 f"intervention {_n(r['n_analysed_per_arm']['intervention'])}; recruit "
                 f"{_n(r['n_total'])} (achieved power {r['power']:.4f})")
    lines.append(f"  same as: {p['command']}")
    lines += ["", f"MECHANISMS  target power {a['mediation_power']:g} for each indirect effect"
              if a["mediation_power"] else "MECHANISMS"]
    nested = next((m for m in plan["mechanisms"] if m.get("design") == "partially nested"), None)
    if nested:
        lines.append(f"  partial nesting: paths in control-arm SDs, control-arm variance "
                     f"{nested['arguments']['control_variance']}; --icc-y is the outcome's ICC "
                     "given the process variable (conditional)")
    if not plan["mechanisms"]:
        lines.append("  no path assumptions in the file (assumptions.paths)")
    for m in plan["mechanisms"]:
        head = f"  {m['mechanism']}: {m['mediator']} -> {m['outcome']} (a {m['a']:g}, b {m['b']:g})"
        if m.get("status") != "computed":
            lines.append(f"{head}: not computed ({m['reason']})")
            continue
        verdict = "detectable" if m["detectable"] else "NOT detectable"
        se = f" +/- {m['mc_se']:.3f} MC SE" if m.get("mc_se") else ""
        if m.get("planned_clusters") is not None:
            lines.append(f"{head}: {m['design']} {m['test']} power "
                         f"{m['power_at_planned_n']:.3f} at {m['planned_clusters']:,} clusters "
                         f"-> {verdict}; needs {m['clusters_needed']:,} clusters")
        else:
            lines.append(f"{head}: {m['test']} power {m['power_at_planned_n']:.3f}{se} at "
                         f"n = {m['planned_n']:,} -> {verdict}; needs "
                         f"{m['n_needed_analysed']:,} analysed ({m['n_needed_to_recruit']:,} "
                         "to recruit)")
        lines.append(f"    analysed: {m['mediator']} at {m['mediator_timepoint']}, "
                     f"{m['outcome']} at {m['outcome_timepoint']}"
                     + (f" (landmark: events after month {m['landmark']['from_month']:g})"
                        if m.get("landmark") else "")
                     + ("; no baseline R2 assumed (r2_m = r2_y = 0)"
                        if not any(m["covariate_r2"][k] for k in ("r2_m", "r2_y")) else
                        f"; baseline R2 {m['covariate_r2']['r2_m']:g} (process variable), "
                        f"{m['covariate_r2']['r2_y']:g} (outcome)"))
        effect = f"    indirect effect ab {m['indirect_effect']:.4g}"
        if m.get("total_effect") is not None:
            effect += (f"; total effect {m['total_effect']:.4g} ({m['total_effect_from']}); "
                       f"proportion mediated {m['proportion_mediated']:.2f}")
        else:
            effect += "; total effect not given (add 'total:' to the path)"
        lines.append(effect)
        if m.get("warning"):
            lines.append("    WARNING: " + next(n for n in m["notes"]
                                                if "implies" in n or "imply" in n))
        lines.append(f"    same as: {m['command']}")
    for g in plan.get("parallel_mechanisms", []):
        head = f"  {g['mechanism']} together: {' + '.join(g['mediators'])} -> {g['outcome']}"
        if g["status"] != "computed":
            lines.append(f"{head}: not computed ({g['reason']})")
            continue
        t = g["total_indirect"]
        lines.append(f"{head} (residual correlation {g['correlation']:g}): total indirect "
                     f"effect {t['estimate']:.4g}, power {t['power']:.3f}; every specific "
                     f"effect {g['power_all']:.3f} at n = {g['planned_n']:,}")
        lines.append(f"    same as: {g['command']}")
    lines += ["", "FINAL SAMPLE SIZE"]
    driver = "the primary outcome" if f["driven_by"] == "primary" else (
        f"mechanism {f['driven_by']}")
    lines.append(f"  recruit {f['n_to_recruit']:,} ({f['n_to_recruit_per_arm']['control']:,} "
                 f"control, {f['n_to_recruit_per_arm']['intervention']:,} intervention), "
                 f"analyse {f['n_analysed']:,}; set by {driver}")
    if f.get("peer_workers"):
        lines.append(f"  peer workers needed: {f['peer_workers']} (intervention participants "
                     "allocated / caseload)")
    if f.get("clusters_per_arm"):
        few = (f"; fewer than {f['few_clusters_threshold']} per arm: small-sample analysis"
               if f["few_clusters"] else "")
        lines.append(f"  clusters per arm: control {f['clusters_per_arm']['control']}, "
                     f"intervention {f['clusters_per_arm']['intervention']}{few}")
    st = plan.get("staffing")
    if st:
        how = "derived from staffing" if st["derived"] else "assumed"
        lines.append(f"  staffing: {st['sites']} sites x {st['peer_workers_per_site']:g} peer "
                     f"workers; {st['cumulative_caseload']:.1f} participants allocated per peer "
                     f"worker over the trial (caseload {st['caseload_used']:g} {how}); about "
                     f"{st['concurrent_caseload']:.1f} supported at once ({st['support_months']:g}"
                     " months each)")
    if f["mechanisms_detectable"]:
        lines.append(f"  the trial can expect to detect: {', '.join(f['mechanisms_detectable'])}")
    if f["mechanisms_not_detectable"]:
        lines.append("  the trial cannot expect to detect: "
                     f"{', '.join(f['mechanisms_not_detectable'])}")
    rec = plan["recruitment"]
    if rec:
        fl = rec["flow"]
        lines += ["", "RECRUITMENT"]
        lines.append(f"  {rec['sites']} sites x {rec['screened_per_site_month']:g} screened per "
                     f"month, {rec['eligible']:g} eligible, {rec['consent']:g} consent -> "
                     f"{rec['randomised_per_site_month']:.3g} randomised per site-month")
        lines.append(f"  target {rec['target']:,} reached after {rec['months_to_target']:.1f} "
                     f"months (ramp-up {rec['ramp_up_months']:g} months, a site every "
                     f"{rec['site_opening_interval_months']:g} months)")
        pc = rec.get("per_cluster")
        if pc:
            lines.append(f"  per cluster: each of {pc['clusters']} clusters recruits "
                         f"{pc['per_cluster_target']:g} in {pc['months_to_fill_one']:.1f} months "
                         f"from its opening; the last opens at month "
                         f"{pc['last_opening_month']:g}")
        lines.append(f"  flow: screened {fl['screened']:,} -> eligible {fl['eligible']:,} -> "
                     f"randomised {fl['randomised']:,} (control {fl['allocated']['control']:,}, "
                     f"intervention {fl['allocated']['intervention']:,}) -> analysed control "
                     f"{fl['analysed']['control']:,}, intervention "
                     f"{fl['analysed']['intervention']:,}")
    lines += _assurance_lines(plan.get("assurance"))
    fe = plan["feasibility"]
    if fe:
        kind = ("FEASIBILITY STUDY" if fe.get("purpose") == "external-feasibility"
                else "INTERNAL PILOT")
        lines += ["", f"{kind}  {fe['pilot_n']} randomised ({fe['pilot_n_from']}); "
                  f"{fe['confidence']:.0%} intervals"]
        for c in fe["criteria"]:
            if c["half_width_at_green"] is None:
                lines.append(f"  {c['id']} ({c['kind']}): not observable within the pilot")
                continue
            ok = "" if c["separates_green_from_red"] else "  (interval wider than amber band)"
            lines.append(f"  {c['id']} ({c['kind']}): green >= {c['green']:g}, amber >= "
                         f"{c['amber']:g}, red below; n = {c['denominator']}, +/- "
                         f"{c['half_width_at_green']:.3f} at green{ok}")
            for row in c.get("oc_table", []):
                lines.append(f"    true {row['true']:.3g} ({row['at']}): P(green) "
                             f"{row['green']:.3f}, P(amber) {row['amber']:.3f}, P(red) "
                             f"{row['red']:.3f}")
            if c.get("n_for_target_half_width"):
                lines.append(f"    +/- {fe['target_half_width']:g} at green needs n = "
                             f"{c['n_for_target_half_width']}")
            main = "definitive" if kind == "FEASIBILITY STUDY" else "main"
            for row in c.get("implied", []):
                if row.get("power") is not None:
                    lines.append(f"    at the {row['threshold']} threshold the {main} trial's "
                                 f"power is {row['power']:.3f}: {row['command']}")
    sens = plan["sensitivity"]
    lines += ["", "SENSITIVITY  participants to recruit, one assumption varied at a time"]
    by: dict = {}
    for row in sens["one_way"]:
        by.setdefault(row["parameter"], []).append(
            f"{row['value']:g}: {_n(row['n_to_recruit'])}")
    for k, vals in by.items():
        lines.append(f"  {k}: " + "; ".join(vals))
    pv = plan["provenance"]
    lines += ["", f"PROVENANCE  trialplan {pv['versions']['trialplan']}, numpy "
              f"{pv['versions']['numpy']}, scipy {pv['versions']['scipy']}, statsmodels "
              f"{pv['versions']['statsmodels']}; input sha256 {str(pv['input_sha256'])[:16]}"]
    if plan["notes"]:
        lines += ["", "NOTES"] + [f"  - {n}" for n in plan["notes"]]
    return "\n".join(lines)


__all__ = ["plan_cmd"]
