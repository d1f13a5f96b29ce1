"""Pure renderers: (resolved answers, layout, site, secrets) -> file contents."""
