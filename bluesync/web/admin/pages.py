"""
The HTML of the admin page: plain server-rendered pages, usable without
JavaScript (every action is a form), every value escaped.  Pure functions
from data to bytes; the resource in resource.py does the I/O.
"""

from __future__ import annotations

from datetime import timezone
from html import escape
from urllib.parse import urlencode

from bluesync.devices.describe import details, ping_state
from bluesync.devices import state
from bluesync.devices.actions import DEVICE_ACTIONS
from bluesync.store.rules import FIELDS

# Actions that destroy something and need the "I am sure" box ticked.
CONFIRMED_ACTIONS = frozenset({"wipe", "account-wipe", "remove"})

STYLE = b"""
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; }
header { background: #1d3557; color: white; padding: 0.6em 1em; display: flex; gap: 1.5em; align-items: center; }
header a { color: white; }
header form { margin-left: auto; }
main { padding: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #eef; }
.state-allowed { color: #176117; }
.state-blocked, .state-autoblocked, .state-wiped, .state-account-wiped { color: #a4161a; font-weight: bold; }
.state-quarantined, .state-wipe-pending, .state-account-wipe-pending { color: #9a5b00; font-weight: bold; }
.message { background: #fff3bf; padding: 0.5em; border: 1px solid #e0c200; }
.error { background: #ffe3e3; padding: 0.5em; border: 1px solid #c92a2a; }
fieldset { margin: 1em 0; }
button { margin: 0.2em; }
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _time(value) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _state(access_state: str) -> str:
    return f'<span class="state-{_e(access_state.replace(" ", "-"))}">{_e(access_state)}</span>'


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(token)}">'


def layout(title: str, body: str, *, admin: str | None = None, csrf: str | None = None,
           messages=(), errors=()) -> bytes:
    nav = ""
    if admin is not None:
        nav = (
            '<a href="/">Devices</a> <a href="/rules">Access rules</a> <a href="/audit">Audit</a>'
            f'<form method="post" action="/logout">{csrf_field(csrf or "")}'
            f'{_e(admin)} <button type="submit">Log out</button></form>'
        )
    notes = "".join(f'<p class="message" role="status">{_e(m)}</p>' for m in messages)
    notes += "".join(f'<p class="error" role="alert">{_e(m)}</p>' for m in errors)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)} - bluesync admin</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/style.css"></head><body>'
        f"<header><strong>bluesync</strong>{nav}</header><main><h1>{_e(title)}</h1>{notes}{body}</main>"
        "</body></html>\n"
    ).encode("utf-8")


def message_page(title: str, message: str, *, admin: str | None = None, csrf: str | None = None,
                 back: bool = False) -> bytes:
    body = f"<p>{_e(message)}</p>" + ('<p><a href="/">Back to the devices</a></p>' if back else "")
    return layout(title, body, admin=admin, csrf=csrf)


def login_page(token: str, errors=()) -> bytes:
    body = (
        '<form method="post" action="/login">'
        f'<input type="hidden" name="login_token" value="{_e(token)}">'
        '<p><label>Name <input name="name" id="name" autocomplete="username" required></label></p>'
        '<p><label>Password <input name="password" id="password" type="password" '
        'autocomplete="current-password" required></label></p>'
        '<p><button type="submit" id="login">Log in</button></p></form>'
    )
    return layout("Log in", body, errors=errors)


def device_link(address: str, device_id: str) -> str:
    return "/device?" + urlencode({"account": address, "device": device_id})


def devices_page(admin: str, csrf: str, groups, query: str, now: float, messages=()) -> bytes:
    """
    @param groups: (account, [device, ...]) pairs, accounts in address order.
    """
    parts = [
        '<form method="get" action="/"><label>Find <input name="q" id="q" '
        f'value="{_e(query)}" placeholder="address, DeviceId, model, user agent"></label> '
        '<button type="submit" id="find">Find</button></form>'
    ]
    shown = 0
    for account, devices in groups:
        if not devices:
            continue
        shown += len(devices)
        parts.append(f"<h2>{_e(account.address)}</h2><table><thead><tr><th>Device ID</th><th>State</th>"
                     "<th>Why</th><th>Type</th><th>Model</th><th>OS</th><th>User agent</th><th>Last seen</th>"
                     "<th>Last command</th><th>Ping</th></tr></thead><tbody>")
        for device in devices:
            access = state.decide(device, now)
            parts.append(
                f'<tr><td><a href="{_e(device_link(account.address, device.device_id))}">'
                f"{_e(device.device_id)}</a></td><td>{_state(access.state)}</td><td>{_e(access.source)}</td>"
                f"<td>{_e(device.device_type)}</td><td>{_e(device.model)}</td><td>{_e(device.os)}</td>"
                f"<td>{_e(device.user_agent)}</td><td>{_time(device.last_seen)}</td>"
                f"<td>{_e(device.last_command)}</td><td>{_e(ping_state(device, now))}</td></tr>"
            )
        parts.append("</tbody></table>")
    if not shown:
        parts.append("<p>No device matches.</p>" if query else "<p>No device has connected yet.</p>")
    return layout("Devices", "".join(parts), admin=admin, csrf=csrf, messages=messages)


def device_page(admin: str, csrf: str, account, device, rule, now: float, messages=(), errors=()) -> bytes:
    rows = "".join(f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>"
                   for label, value in details(account, device, rule, now))
    buttons = "".join(
        f'<button type="submit" name="action" value="{_e(action)}" id="action-{_e(action)}">{_e(action)}</button>'
        for action in DEVICE_ACTIONS
    )
    body = (
        f"<table><tbody>{rows}</tbody></table>"
        '<form method="post" action="/device"><fieldset><legend>Actions</legend>'
        f"{csrf_field(csrf)}"
        f'<input type="hidden" name="account" value="{_e(account.address)}">'
        f'<input type="hidden" name="device" value="{_e(device.device_id)}">'
        '<p><label>Reason (for the audit trail) <input name="reason" id="reason" size="50"></label></p>'
        '<p><label><input type="checkbox" name="confirm" value="yes" id="confirm"> I am sure '
        "(needed to wipe or remove)</label></p>"
        f"<p>{buttons}</p></fieldset></form>"
        '<p><a href="/">Back to the devices</a></p>'
    )
    return layout(f"Device {device.device_id}", body, admin=admin, csrf=csrf, messages=messages, errors=errors)


def rules_page(admin: str, csrf: str, rules, messages=(), errors=()) -> bytes:
    parts = [
        "<p>For a device without an administrator's decision of its own, the first matching rule in "
        "priority order decides; without one, the decision taken when the device was first seen stands. "
        "Patterns match the whole value, ignoring case: * is any text, ? one character.</p>",
        "<table><thead><tr><th>Id</th><th>Priority</th><th>Field</th><th>Pattern</th><th>Action</th>"
        "<th>Created by</th><th></th></tr></thead><tbody>",
    ]
    for rule in rules:
        parts.append(
            f"<tr><td>{rule.id}</td><td>{rule.priority}</td><td>{_e(rule.field_name)}</td>"
            f"<td><code>{_e(rule.pattern)}</code></td><td>{_e(rule.action_name)}</td><td>{_e(rule.created_by)}</td>"
            f'<td><form method="post" action="/rules/delete">{csrf_field(csrf)}'
            f'<input type="hidden" name="id" value="{rule.id}">'
            f'<button type="submit" id="delete-rule-{rule.id}">Delete</button></form></td></tr>'
        )
    parts.append("</tbody></table>")
    if not rules:
        parts.append("<p>No access rule.</p>")
    field_options = "".join(f'<option value="{_e(name)}">{_e(name)}</option>' for name in FIELDS)
    action_options = "".join(f'<option value="{a}">{a}</option>' for a in ("block", "quarantine", "allow"))
    parts.append(
        '<form method="post" action="/rules/add"><fieldset><legend>Add a rule</legend>'
        f"{csrf_field(csrf)}"
        f'<label>Field <select name="field" id="field">{field_options}</select></label> '
        '<label>Pattern <input name="pattern" id="pattern" required placeholder="Outlook-iOS-Android/*"></label> '
        f'<label>Action <select name="action" id="rule-action">{action_options}</select></label> '
        '<label>Priority <input name="priority" id="priority" size="5" placeholder="last"></label> '
        '<label>Reason <input name="reason" size="30"></label> '
        '<button type="submit" id="add-rule">Add</button></fieldset></form>'
    )
    return layout("Access rules", "".join(parts), admin=admin, csrf=csrf, messages=messages, errors=errors)


def audit_page(admin: str, csrf: str, records, since: str, errors=()) -> bytes:
    parts = [
        f'<form method="get" action="/audit"><label>Since <input name="since" value="{_e(since)}" '
        'placeholder="7d, 2024-05-01"></label> <button type="submit">Show</button></form>',
        "<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Account</th><th>Device</th><th>Why</th>"
        "</tr></thead><tbody>",
    ]
    for record in reversed(records):
        parts.append(
            f"<tr><td>{_time(record.at)}</td><td>{_e(record.actor)}</td><td>{_e(record.action)}</td>"
            f"<td>{_e(record.account)}</td><td>{_e(record.device)}</td><td>{_e(record.detail)}</td></tr>"
        )
    parts.append("</tbody></table>")
    return layout("Audit trail", "".join(parts), admin=admin, csrf=csrf, errors=errors)
