"""Departments: create (optionally from another's permissions), change, set permissions,
make default, delete (its users move to the default department). A department's caller-ID
pool is the numbers assigned to it (``/numbers``); its members are the users in it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, Department, Permission
from engine import changes
from engine.store import AuditEntry

from .context import Call, Operation, Reply, find, matching, page, tagged, versioned
from .presets import with_preset
from .rules import Actor, check_edit_department, check_grant, require
from .schemas import (
    DepartmentCreate,
    DepartmentOut,
    DepartmentParams,
    DepartmentPatch,
    DepartmentPermissions,
    Page,
    PresetApply,
)
from .users import changed_users

__all__ = ["OPERATIONS"]

P = Permission


def department_out(config: AccountConfig, department: Department) -> DepartmentOut:
    return versioned(DepartmentOut(
        **msgspec.structs.asdict(department),
        is_default=department.id == config.default_department,
        members=tuple(sorted(u.id for u in config.users if u.department == department.id)),
        numbers=tuple(sorted(n.number for n in config.numbers if n.department == department.id)),
        etag="",
    ))


def _department(config: AccountConfig, department_id: str) -> Department:
    return find(config.departments, lambda d: d.id, department_id, "department")


def _version(config: AccountConfig, department: Department) -> str:
    return department_out(config, department).etag


def _department_to_change(
    call: Call, actor: Actor, config: AccountConfig, department_id: str, needed: Permission
) -> Department:
    """Department ``department_id`` as every change to an existing one starts: the actor
    holds ``needed``, and If-Match is the department's version."""
    require(actor, needed)
    department = _department(config, department_id)
    call.check_match(_version(config, department))
    return department


def _as_department(config: AccountConfig, department_id: str) -> Reply:
    return tagged(department_out(config, _department(config, department_id)))


async def _set_permissions(
    call: Call, choose: Callable[[Department], frozenset[Permission]], action: str, *,
    field: str,
) -> Reply:
    """The department of the path holding ``choose`` of what it holds instead: the actor
    holds what it newly grants, and each member's new permissions are ones the actor could
    give them alone (rules 1-3). Each member whose permissions change gets an entry of their
    own. Setting the permissions and applying a preset differ only in ``choose``."""
    department_id = call.param("department_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _department_to_change(call, actor, config, department_id, P.USERS_SETTINGS)
        chosen = choose(before)
        new = changes.set_department_permissions(department_id, chosen)(config)
        check_edit_department(actor, config, new, department_id, field=field)
        check_grant(actor, chosen - set(before.permissions), field=field)
        after = _department(new, department_id)
        return new, [*changed_users(call, actor, action, config, new),
                     call.audit(actor, action, f"department:{department_id}", before, after)]

    return _as_department(await call.write(edit), department_id)


async def list_departments(call: Call) -> Reply:
    params = call.query(DepartmentParams)
    config, _ = await call.read(P.USERS_MANAGE, P.USERS_SETTINGS)
    departments = matching(config.departments, params.q, lambda d: d.id, lambda d: d.name)
    chosen = page(departments, lambda d: d.id, params.cursor, params.limit)
    return Reply(Page(items=[department_out(config, d) for d in chosen.items],
                      next_cursor=chosen.next_cursor))


async def create_department(call: Call) -> Reply:
    body = await call.body(DepartmentCreate)

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        field = "template" if body.template is not None else "permissions"
        if body.template is not None or body.permissions:
            # Choosing what a department grants is setting permissions: as for
            # PUT /departments/{id}/permissions.
            require(actor, P.USERS_SETTINGS)
        department = Department(
            id=body.id, name=body.name, description=body.description,
            default_caller_id=body.default_caller_id, permissions=body.permissions,
            calling_hours=body.calling_hours,
        )
        new = changes.create_department(department, template=body.template)(config)
        created = _department(new, body.id)
        check_grant(actor, created.permissions, field=field)
        return new, [call.audit(actor, "department.create", f"department:{body.id}", None,
                                created)]

    config = await call.write(edit)
    return tagged(department_out(config, _department(config, body.id)), 201)


async def get_department(call: Call) -> Reply:
    config, _ = await call.read(P.USERS_MANAGE, P.USERS_SETTINGS)
    return _as_department(config, call.param("department_id"))


async def update_department(call: Call) -> Reply:
    body = await call.body(DepartmentPatch)
    department_id = call.param("department_id")
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _department_to_change(call, actor, config, department_id, P.USERS_MANAGE)
        new = changes.update_department(department_id, fields)(config)
        return new, [call.audit(actor, "department.update", f"department:{department_id}",
                                before, _department(new, department_id))]

    return _as_department(await call.write(edit), department_id)


async def set_department_permissions(call: Call) -> Reply:
    body = await call.body(DepartmentPermissions)
    chosen = frozenset(body.permissions)
    return await _set_permissions(call, lambda _: chosen, "department.permissions",
                                  field="permissions")


async def apply_department_preset(call: Call) -> Reply:
    body = await call.body(PresetApply)
    return await _set_permissions(
        call, lambda before: with_preset(frozenset(before.permissions), body.preset),
        "department.preset", field="preset")


async def make_default_department(call: Call) -> Reply:
    department_id = call.param("department_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        department = _department_to_change(call, actor, config, department_id, P.USERS_MANAGE)
        new = changes.make_default_department(department_id)(config)
        return new, [call.audit(actor, "department.default", f"department:{department_id}",
                                department_out(config, department),
                                department_out(new, department))]

    return _as_department(await call.write(edit), department_id)


async def delete_department(call: Call) -> Reply:
    department_id = call.param("department_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _department_to_change(call, actor, config, department_id, P.USERS_MANAGE)
        new = changes.delete_department(department_id)(config)
        # Its members move to the default department and hold its permissions from now on:
        # only what that changes for them matters (an empty department is anyone's to
        # delete with users.manage).
        check_edit_department(actor, config, new, department_id, field="department")
        action = "department.delete"
        return new, [*changed_users(call, actor, action, config, new),
                     *_numbers_unpooled(call, actor, config, new),
                     call.audit(actor, action, f"department:{department_id}",
                                department_out(config, before), None)]

    await call.write(edit)
    return Reply(status=204)


def _numbers_unpooled(
    call: Call, actor: Actor, config: AccountConfig, new: AccountConfig
) -> list[AuditEntry]:
    """A ``department.delete`` entry for each number that left the deleted department's pool
    (it stays active, in no pool: this is not a release)."""
    after = {n.number: n for n in new.numbers}
    return [call.audit(actor, "department.delete", f"number:{n.number}", n, after[n.number])
            for n in config.numbers if after.get(n.number, n) != n]


_READ = "`users.manage` or `users.settings`"
_PERMS = ("`users.settings`; you hold what it grants, and every member is below you, not "
          "you, and still below you after")

OPERATIONS = [
    Operation("GET", "/departments", list_departments, "List departments", _READ,
              "departments", query=DepartmentParams, response=Page[DepartmentOut]),
    Operation("POST", "/departments", create_department,
              "Create a department (optionally copying another's permissions)",
              "`users.manage`; with `permissions` or a `template` also `users.settings`, and "
              "its permissions must be yours to grant", "departments",
              body=DepartmentCreate, response=DepartmentOut, status=201),
    Operation("GET", "/departments/{department_id}", get_department, "Read a department",
              _READ, "departments", response=DepartmentOut),
    Operation("PATCH", "/departments/{department_id}", update_department,
              "Change a department's name, description or default caller ID",
              "`users.manage`", "departments", body=DepartmentPatch, response=DepartmentOut,
              conditional=True),
    Operation("PUT", "/departments/{department_id}/permissions", set_department_permissions,
              "Set a department's permissions", _PERMS, "departments",
              body=DepartmentPermissions, response=DepartmentOut, conditional=True),
    Operation("POST", "/departments/{department_id}/preset", apply_department_preset,
              "Apply a permission preset to a department", _PERMS, "departments",
              body=PresetApply, response=DepartmentOut, conditional=True),
    Operation("POST", "/departments/{department_id}/default", make_default_department,
              "Make a department the default", "`users.manage`", "departments",
              response=DepartmentOut, conditional=True),
    Operation("DELETE", "/departments/{department_id}", delete_department,
              "Delete a department (its users move to the default one)",
              "`users.manage`; its members must be below you and not you, and stay below you "
              "in the default one", "departments",
              status=204, conditional=True),
]
