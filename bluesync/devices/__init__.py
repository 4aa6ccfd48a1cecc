"""
Device management: what each partnership may do (state.py), the email its
owner gets when that changes (notices.py), the administrator's actions
shared by the CLI and the admin page (actions.py), and the per-process
protection of the server from its phones (guard.py: concurrency and
autoblock).  Failed logins are throttled in bluesync.web.throttle.
"""
