"""Fails at import: a syntax error (Runtime.UserCodeSyntaxError)."""

def handler(event, context)
    return event
