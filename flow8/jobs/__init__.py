"""Jobs: the scheduler and the periodic jobs, children of the ``jobs`` supervisor.

    jobs                 one_for_one
    ├── scheduler        cron schedules -> plays, each tick claimed exactly once
    └── ...              retention, audit-cache, ttl-cache, oauth-refresh

``jobs_child(*children)`` builds the supervisor; ``flow8.app.build_tree`` lists its children.
"""

from ._cleanup import CleanupJobs, cleanup_jobs
from ._oauth import oauth_refresh_job
from ._periodic import JobStats, PeriodicJob
from ._retention import Retention
from ._scheduler import Scheduler
from ._wiring import jobs_child, scheduler_child

__all__ = [
    "CleanupJobs",
    "JobStats",
    "PeriodicJob",
    "Retention",
    "Scheduler",
    "cleanup_jobs",
    "jobs_child",
    "oauth_refresh_job",
    "scheduler_child",
]
