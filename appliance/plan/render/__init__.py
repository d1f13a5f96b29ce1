"""Pure renderers, one per kind of file: text in, text out, no I/O.

Every file the appliance owns starts with :data:`MANAGED_BY`, which is also how an apply
recognises its own files (e.g. LocalAI model configs it may delete).
"""

MANAGED_BY = "# Managed by slm-appliance"
MANAGED = f"{MANAGED_BY}: the next apply overwrites changes made here."
