"""man/ is generated from the CLI; this fails when someone changed the CLI and not man/."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_man_pages_are_current():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_man.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr + "\nrun: python scripts/gen_man.py"


def test_every_command_has_a_page():
    pages = {p.name for p in (ROOT / "man").glob("*.1")}
    assert "aif.1" in pages
    text = (ROOT / "man" / "aif.1").read_text()
    for p in pages - {"aif.1"}:
        cmd = p[len("aif-"):-2]
        assert f"aif {cmd}" in text.replace("\\-", "-"), f"{cmd} missing from aif.1"
