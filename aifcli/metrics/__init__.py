"""aif metrics stage (import submodules directly; keep this file free of imports)."""
