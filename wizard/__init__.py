"""The operator's entry points: CLI and (soon) the Textual first-boot wizard. No business logic."""
