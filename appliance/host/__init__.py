"""The seams to the machine:
paths under --root, atomic files, the runner, services, facts, downloads.
"""
