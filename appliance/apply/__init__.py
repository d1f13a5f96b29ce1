"""Stage 3, apply:
the transaction that makes the disk and the services match a plan, or rolls back.
"""
