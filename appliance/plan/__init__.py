"""Stage 2, plan:
validated answers + machine facts -> every file the appliance owns (pure renderers).
"""
