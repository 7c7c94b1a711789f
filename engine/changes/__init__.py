"""Configuration changes as pure functions: an account in, the changed account out.

Every change to an account's configuration is a ``Change`` built here, one module per
resource (``account``, ``users``, ``departments``, ``numbers``, ``groups``, ``sip_logins``):
the admin API and the command line make their changes with these, and ``callgate import``,
which replaces an account whole, is the change ``replace_account`` (a new SIP domain meets
the rule it meets through ``update_account``) and meets the same invariants. Each change
carries the rule of its own transition (moving a legacy user into a department keeps what
the department lacks as extras; deleting a department moves its users to the default;
deleting a group narrows its supervisors' view), and refuses what cannot apply with
``NotFound`` or ``Conflict`` naming the field at fault (``Forbidden`` for own permissions
asked for a user in a department; ``InvalidField`` for a weak SIP password).

What a change does not decide:

- who may make it: the actor's rules are the admin API's (``admin_api.rules``), which
  compares the account before and after a change to see whom it touched;
- what must hold of any account, however it was reached: ``invariants.check``, which the
  domain service (``engine.service``) runs after every change, before anything is saved.
"""

from __future__ import annotations

from .account import create_account, replace_account, update_account
from .departments import (
    create_department,
    delete_department,
    make_default_department,
    set_department_permissions,
    update_department,
)
from .groups import create_group, delete_group, rename_group, set_group_members
from .numbers import add_number, assign_number, release_number, update_number
from .parts import Change, Fields
from .sip_logins import remove_sip_login, set_sip_enabled, set_sip_login, set_sip_password
from .users import (
    add_user,
    copy_geo,
    delete_user,
    edit_own_permissions,
    move_user,
    set_geo,
    set_user_permissions,
    update_user,
    update_user_settings,
)

__all__ = [
    "Change",
    "Fields",
    "add_number",
    "add_user",
    "assign_number",
    "copy_geo",
    "create_account",
    "create_department",
    "create_group",
    "delete_department",
    "delete_group",
    "delete_user",
    "edit_own_permissions",
    "make_default_department",
    "move_user",
    "release_number",
    "remove_sip_login",
    "rename_group",
    "replace_account",
    "set_department_permissions",
    "set_geo",
    "set_group_members",
    "set_sip_enabled",
    "set_sip_login",
    "set_sip_password",
    "set_user_permissions",
    "update_account",
    "update_department",
    "update_number",
    "update_user",
    "update_user_settings",
]
