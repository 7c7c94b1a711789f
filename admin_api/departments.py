"""Departments: create (optionally from another's permissions), change, set permissions,
make default, delete (its users move to the default department). A department's caller-ID
pool is the numbers assigned to it (``/numbers``); its members are the users in it."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, Department, Permission
from engine import changes
from engine.store import AuditEntry

from .context import Call, Operation, Reply, etag, find, page, tagged
from .presets import with_preset
from .rules import Actor, check_edit_department, check_grant, require
from .schemas import (
    DepartmentCreate,
    DepartmentOut,
    DepartmentPatch,
    DepartmentPermissions,
    ListParams,
    Page,
    PresetApply,
)

__all__ = ["OPERATIONS"]

P = Permission
_replace = msgspec.structs.replace


def department_out(config: AccountConfig, department: Department) -> DepartmentOut:
    return DepartmentOut(
        **msgspec.structs.asdict(department),
        is_default=department.id == config.default_department,
        members=tuple(sorted(u.id for u in config.users if u.department == department.id)),
        numbers=tuple(sorted(n.number for n in config.numbers if n.department == department.id)),
        etag=etag(department),
    )


def _department(config: AccountConfig, department_id: str) -> Department:
    return find(config.departments, lambda d: d.id, department_id, "department")


def _as_department(config: AccountConfig, department_id: str) -> Reply:
    department = _department(config, department_id)
    return tagged(department_out(config, department), resource=department)


def _replaced(
    call: Call, config: AccountConfig, actor: Actor, before: Department, after: Department,
    action: str,
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    departments = tuple(after if d.id == before.id else d for d in config.departments)
    new = _replace(config, departments=departments)
    return new, [call.audit(actor, action, f"department:{before.id}", before, after)]


async def list_departments(call: Call) -> Reply:
    params = call.query(ListParams)
    config, _ = await call.read(P.USERS_MANAGE, P.USERS_SETTINGS)
    chosen = page(config.departments, lambda d: d.id, params.cursor, params.limit)
    return Reply(Page(items=[department_out(config, d) for d in chosen.items],
                      next_cursor=chosen.next_cursor))


async def create_department(call: Call) -> Reply:
    body = await call.body(DepartmentCreate)

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        department = Department(
            id=body.id, name=body.name, description=body.description,
            default_caller_id=body.default_caller_id,
            permissions=tuple(sorted(set(body.permissions))),
        )
        new = changes.create_department(department, template=body.template)(config)
        created = _department(new, body.id)
        check_grant(actor, created.permissions, field="permissions")
        return new, [call.audit(actor, "department.create", f"department:{body.id}", None,
                                created)]

    config = await call.write(edit)
    department = _department(config, body.id)
    return tagged(department_out(config, department), 201, resource=department)


async def get_department(call: Call) -> Reply:
    config, _ = await call.read(P.USERS_MANAGE, P.USERS_SETTINGS)
    return _as_department(config, call.param("department_id"))


async def update_department(call: Call) -> Reply:
    body = await call.body(DepartmentPatch)
    department_id = call.param("department_id")
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _department(config, department_id)
        call.check_match(before)
        require(actor, P.USERS_MANAGE)
        return _replaced(call, config, actor, before, _replace(before, **fields),
                         "department.update")

    return _as_department(await call.write(edit), department_id)


async def set_department_permissions(call: Call) -> Reply:
    body = await call.body(DepartmentPermissions)
    department_id = call.param("department_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _department(config, department_id)
        call.check_match(before)
        require(actor, P.USERS_SETTINGS)
        chosen = frozenset(body.permissions)
        check_edit_department(actor, config, department_id, chosen - set(before.permissions))
        after = _replace(before, permissions=tuple(sorted(chosen)))
        return _replaced(call, config, actor, before, after, "department.permissions")

    return _as_department(await call.write(edit), department_id)


async def apply_department_preset(call: Call) -> Reply:
    body = await call.body(PresetApply)
    department_id = call.param("department_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _department(config, department_id)
        call.check_match(before)
        require(actor, P.USERS_SETTINGS)
        chosen = with_preset(frozenset(before.permissions), body.preset)
        check_edit_department(actor, config, department_id, chosen - set(before.permissions))
        after = _replace(before, permissions=tuple(sorted(chosen)))
        return _replaced(call, config, actor, before, after, "department.preset")

    return _as_department(await call.write(edit), department_id)


async def make_default_department(call: Call) -> Reply:
    department_id = call.param("department_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        department = _department(config, department_id)
        call.check_match(department)
        require(actor, P.USERS_MANAGE)
        new = changes.make_default_department(department_id)(config)
        return new, [call.audit(actor, "department.default", f"department:{department_id}",
                                department_out(config, department),
                                department_out(new, department))]

    return _as_department(await call.write(edit), department_id)


async def delete_department(call: Call) -> Reply:
    department_id = call.param("department_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _department(config, department_id)
        call.check_match(before)
        require(actor, P.USERS_MANAGE)
        # Its members move to the default department: their permissions change to its.
        default = _department(config, config.default_department)
        check_edit_department(actor, config, department_id, default.permissions)
        new = changes.delete_department(department_id)(config)
        return new, [call.audit(actor, "department.delete", f"department:{department_id}",
                                department_out(config, before), None)]

    await call.write(edit)
    return Reply(status=204)


_READ = "`users.manage` or `users.settings`"
_PERMS = ("`users.settings`; you hold what it grants, and every member is below you and not "
          "you")

OPERATIONS = [
    Operation("GET", "/departments", list_departments, "List departments", _READ,
              "departments", query=ListParams, response=Page[DepartmentOut]),
    Operation("POST", "/departments", create_department,
              "Create a department (optionally copying another's permissions)",
              "`users.manage`; its permissions must be yours to grant", "departments",
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
              "`users.manage`; its members must be below you and not you", "departments",
              status=204, conditional=True),
]
