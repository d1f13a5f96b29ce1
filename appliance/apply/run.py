"""The one apply path: validate -> plan -> diff -> write -> check -> (re)start, else roll back.

Every way in (wizard TUI, ``wizard --apply``, ONEAPP_* context at boot) ends in
:func:`apply_answers`. Guarantees:

* nothing is written and nothing restarted when the plan matches the disk and services run;
* files are written atomically, after their old versions are journaled;
* ``nginx -t`` passes before nginx is (re)loaded; the engine restarts only when its inputs
  changed, and the apply waits until it is ready;
* on any failure every file is put back and what ran before runs again;
* an apply killed half-way leaves a journal that the next apply rolls back first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from appliance.answers.schema import Answers
from appliance.apply.bluegreen import plan_engine
from appliance.apply.journal import apply_lock, recover
from appliance.apply.runtime import Context, Event
from appliance.apply.transaction import ApplyResult, run_transaction
from appliance.errors import ApplyError
from appliance.keys.store import KeyChange
from appliance.plan.build import Plan
from appliance.plan.resolve import resolve
from appliance.plan.roles import with_role
from appliance.plan.secrets import gather_secrets
from appliance.plan.state import load_state
from appliance.tls.issue import ari_renewal_time
from appliance.tls.lineage import load_lineage, prune
from appliance.tls.obtain import Outcome, note_install_failure, obtain
from appliance.tls.precheck import make_resolver


def make_plan(answers: Answers, ctx: Context, source: str = "answers",
              keys: KeyChange | None = None) -> Plan:
    state = load_state(ctx.layout)
    r = resolve(answers, ctx.facts, ctx.site, ctx.layout, source, state.get("sha256_stamps"))
    sec = gather_secrets(r, ctx.facts, ctx.layout, state, ctx.now())
    if keys is not None:  # a named-key change, decided under the lock on the last good store
        sec = dataclasses.replace(sec, keys=keys(sec.keys, sec.api_key))
    return with_role(plan_engine(r, sec, state, ctx), ctx.site, ctx.layout, sec)


def apply_answers(answers: Answers, ctx: Context, source: str = "answers", *,
                  force_acme: bool = False, acme: bool = True,
                  keys: KeyChange | None = None) -> ApplyResult:
    """Validate, plan and apply; recovery of an interrupted apply comes first, so the plan
    starts from the last good files (e.g. the API key that was in force). In letsencrypt mode
    the certificate is obtained afterwards, against the nginx this apply left running."""
    with apply_lock(ctx.layout):
        recovered = recover(ctx)
        plan = make_plan(answers, ctx, source, keys)
        result = run_transaction(plan, ctx, recovered)
        if acme and answers.tls.mode == "letsencrypt":
            result.tls = acme_step(answers, ctx, source, force=force_acme)
        return result


def renew(answers: Answers, ctx: Context, *, force: bool = False) -> Outcome:
    """``wizard renew`` and its timer: order when ARI (or the lifetime rule) says so."""
    if answers.tls.mode != "letsencrypt" or not answers.tls.domain:
        return Outcome("skipped", "TLS mode is self-signed: nothing to renew")
    with apply_lock(ctx.layout):
        recover(ctx)
        lineage = load_lineage(ctx.layout, answers.tls.domain)
        ari = ari_renewal_time(answers, ctx.layout, lineage) if lineage else None
        return acme_step(answers, ctx, "renew", force=force, ari_time=ari)


def acme_step(answers: Answers, ctx: Context, source: str, *, force: bool = False,
              ari_time: dt.datetime | None = None) -> Outcome:
    """Obtain or reuse the certificate, then install it through the apply path. Never raises
    for ACME trouble: the previous certificate keeps serving and the outcome says why."""
    domain = answers.tls.domain or ""
    ctx.emit(Event("acme", "running", domain))
    outcome = obtain(
        answers, ctx.facts, ctx.layout, make_resolver(ctx.site.hosts),
        lambda step, detail: ctx.emit(Event(step, "done", detail)), ctx.now(),
        force=force, ari_time=ari_time)
    if outcome.state == "issued":
        try:
            run_transaction(make_plan(answers, ctx, source), ctx, False)
        except ApplyError as exc:
            note_install_failure(ctx.layout, domain, outcome.previous_meta,
                                             exc.reason, ctx.now())
            outcome = Outcome("failed", f"the new certificate could not be installed "
                              f"({exc.reason}); the previous one keeps serving")
        else:
            prune(ctx.layout, domain)
    if outcome.state in ("failed", "waiting"):
        run_transaction(make_plan(answers, ctx, source), ctx, False)  # report shows the failure
    ok = outcome.state in ("issued", "reused")
    ctx.emit(Event("acme", "done" if ok else "failed", outcome.message))
    return outcome
