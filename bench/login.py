"""`mcn login` from a cold process against a running sandbox server, per STS variant.

Run: python bench/login.py [RUNS]. Prints the median wall time of a login with the SoftHSM eID
(RSA card, RSA organisation key) over WS-Trust (two round trips: the request, then the answer
to the sign challenge) and over the SAML variant (one round trip), beside `mcn --version`, and
a renewal. Goal: a login under 1 s on this 2-core machine (a person waits for it once a day).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import mcn_script, median_ms, report, sandbox_server


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    mcn = mcn_script()
    with sandbox_server(mcn) as (home, env):
        config = home / "config.toml"
        rows = [("mcn --version", median_ms([mcn, "--version"], runs, env))]
        for protocol in ("wstrust", "saml"):
            config.write_text(f'sts_protocol = "{protocol}"\n')
            login = [mcn, "login"]
            subprocess.run(login, env=env, check=True, stdout=subprocess.DEVNULL)  # warm the disk cache
            rows.append((f"mcn login ({protocol})", median_ms(login, runs, env)))
        config.write_text('sts_protocol = "wstrust"\n')
        rows.append(("mcn login --renew (wstrust)", median_ms([mcn, "login", "--renew"], runs, env)))
        print(f"median of {runs} runs")
        report(rows)


if __name__ == "__main__":
    main()
