"""UI-free core of the SLM appliance. The pipeline, one package per stage:

    answers/  the one schema gate (``schema.parse``), ONEAPP_* context, catalog, HOST:PORT
    plan/     answers + machine -> resolved settings -> secrets -> every file, rendered (pure)
    apply/    plan -> diff -> journaled atomic writes -> checks -> restarts, else roll back
    tls/      self-signed certificate, ACME policy, pre-checks, issuance, lineage storage
    perf/     benchmark and thread tuning (through the apply path)
    host/     the seams: paths under --root, atomic files, runner, services, facts, downloads

``session`` and ``status`` are what the CLI and the TUI call; ``errors`` is the one error
tree. Nothing here imports Textual: the wizard (TUI, CLI) and the one-apps lifecycle script all
go through :func:`appliance.apply.run.apply_answers`.
"""

APP = "slm-appliance"
