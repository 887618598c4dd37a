"""aif color stage (import submodules directly; keep this file free of imports)."""
