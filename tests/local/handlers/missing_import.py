"""Fails at import: a module that does not exist (Runtime.ImportModuleError)."""

import no_such_module_for_the_local_runtime  # noqa: F401


def handler(event, context):
    return event
