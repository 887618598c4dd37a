"""aif nets stage (import submodules directly; keep this file free of imports)."""
