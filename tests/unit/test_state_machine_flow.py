"""The stateful test of ``test_state_machine`` with tenants crowding one queue and
priority, limits, queue settings, claims and ticks drawn several times as often, so
that turns, weights, limits and their waiters meet each other."""

from __future__ import annotations

from hypothesis import settings
from test_state_machine import StateMachine


class FlowHeavy(StateMachine):
    crowd_2 = crowd_3 = crowd_4 = StateMachine.crowd
    rate_limit_2 = StateMachine.rate_limit
    concurrency_limit_2 = StateMachine.concurrency_limit
    put_queue_2 = StateMachine.put_queue
    claim_2 = claim_3 = StateMachine.claim
    finish_2 = StateMachine.finish
    tick_2 = StateMachine.tick


FlowHeavy.TestCase.settings = settings(max_examples=40, stateful_step_count=50,
                                       deadline=None)
TestFlowHeavy = FlowHeavy.TestCase
