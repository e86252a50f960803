"""A small fixed-seed chaos run on the local stack: every fault kind meets a payment, every invariant holds."""

from local.chaos.plan import ALL_KINDS, plan
from local.chaos.run import format_report, run


def test_the_same_seed_gives_the_same_fault_schedule():
    first, again, other = plan(7, 40), plan(7, 40), plan(8, 40)
    assert [(p.request, p.faults) for p in first] == [(p.request, p.faults) for p in again]
    assert [p.faults for p in first] != [p.faults for p in other]


def test_a_seeded_chaos_run_keeps_every_invariant(stack):
    report = run(seed=11, payments=30, concurrency=8, stack=stack)

    assert report.holds, format_report(report)
    assert set(ALL_KINDS) <= {k for k, n in report.injected_faults.items() if n > 0}, format_report(report)
    assert sum(report.outcomes.values()) == 30
