"""
Device management: what each partnership may do (state.py), the email its
owner gets when that changes (notices.py), the administrator's actions
shared by the CLI and the admin page (actions.py), and the per-process
protections (guard.py: concurrency and autoblock; throttle.py: failed logins).
"""
