"""Accounts domain: citizens, operators, partner sessions and tokens (a Piccolo app of its own).

Who may call the service and how: citizen accounts (phone + one-time code, bound to a registry person),
operator accounts, token grants, refresh rotation and revocation. HTTP lives in api/; this package takes
plain values and returns plain values or a `core.errors.DomainError`.
"""
