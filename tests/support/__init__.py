"""Helpers shared by the test suites (on pytest's pythonpath: ``from support.waits import ...``).

* ``virtual_time``: Trio's autojump clock for tests that wait (leases, delays, polls, TTLs),
  with the wall clock following it; how a test directory makes it the default.
* ``waits``: waiting for a condition or a play's state, in virtual or real time.
"""
