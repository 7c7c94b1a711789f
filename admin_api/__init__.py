"""The admin REST API: supervisors configure accounts under ``/admin/v1``."""

from .app import OPERATIONS, PREFIX, build_admin_app, openapi_document, permission_table

__all__ = ["OPERATIONS", "PREFIX", "build_admin_app", "openapi_document", "permission_table"]
