import time
def test_caddy_err(engine, tmp_path):
    f = engine.disk / "bad"
    f.write_text(":9999 {\n\tnot_a_directive\n}\n")
    engine.docker("rm", "-f", "cbad", check=False)
    engine.docker("run", "-d", "--name", "cbad", "-v", "/srv/kit/bad:/etc/caddy/Caddyfile:ro", "caddy:2.11.7-alpine")
    time.sleep(2)
    r = engine.docker("logs", "cbad", check=False)
    print("OUT", r.stdout, "ERR", r.stderr)
    print(engine.docker("inspect", "--format", "{{.State.ExitCode}}", "cbad").stdout)
    engine.docker("rm", "-f", "cbad", check=False)
