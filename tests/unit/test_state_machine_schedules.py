"""The stateful test of ``test_state_machine`` with fires, schedule changes, claims,
completions and ticks drawn several times as often, so that every overlap and
catch-up policy meets running tasks, missed ticks and pauses."""

from __future__ import annotations

from hypothesis import settings
from test_state_machine import StateMachine


class ScheduleHeavy(StateMachine):
    fire_2 = fire_3 = fire_4 = fire_5 = StateMachine.fire
    put_schedule_2 = StateMachine.put_schedule
    claim_2 = StateMachine.claim
    finish_2 = StateMachine.finish
    tick_2 = StateMachine.tick


ScheduleHeavy.TestCase.settings = settings(max_examples=100, stateful_step_count=60,
                                           deadline=None)
TestScheduleHeavy = ScheduleHeavy.TestCase
