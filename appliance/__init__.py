"""UI-free core of the SLM appliance: answers, rendering, apply, TLS, engines, services.

Nothing here imports Textual: the wizard (TUI, CLI) and the one-apps lifecycle script
all go through :func:`appliance.apply.apply_answers`.
"""

APP = "slm-appliance"
