"""Caller-ID policy over a compiled account snapshot: pure functions, no I/O, no clock."""

from .geo import Destination, GeoTable, compile_geo
from .model import (
    AccountConfig,
    AreaCodeRule,
    AvailableCallerIds,
    CallSettings,
    CountryRule,
    Department,
    DepartmentsMode,
    GeoConfig,
    Group,
    NumberStatus,
    Outcome,
    PhoneNumber,
    Reason,
    Rule,
    SipCredential,
    User,
)
from .permissions import ALL_PERMISSIONS, BUCKETS, Permission, effective_permissions
from .resolve import Resolution, TraceStep, resolve, resolve_emergency, sticky_numbers
from .snapshot import AccountSnapshot, UserView, compile_account

__all__ = [
    "ALL_PERMISSIONS",
    "BUCKETS",
    "AccountConfig",
    "AccountSnapshot",
    "AreaCodeRule",
    "AvailableCallerIds",
    "CallSettings",
    "CountryRule",
    "Department",
    "DepartmentsMode",
    "Destination",
    "GeoConfig",
    "GeoTable",
    "Group",
    "NumberStatus",
    "Outcome",
    "Permission",
    "PhoneNumber",
    "Reason",
    "Resolution",
    "Rule",
    "SipCredential",
    "TraceStep",
    "User",
    "UserView",
    "compile_account",
    "compile_geo",
    "effective_permissions",
    "resolve",
    "resolve_emergency",
    "sticky_numbers",
]
