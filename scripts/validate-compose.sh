#!/usr/bin/env bash
# Validates docker-compose.yml with no Docker engine: Debian's docker-compose (v1, installed here when missing)
# checks it against the Compose schema; then a few lines of Python check the topology docs/demo.md promises.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "docker-compose not found: installing Debian's package (used as a validator; no engine is needed)" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 600 apt-get install -y -qq docker-compose >/dev/null
fi
docker-compose -f docker-compose.yml config -q
# Debian's docker-compose runs on the system python3, which therefore has PyYAML.
docker-compose -f docker-compose.yml config | /usr/bin/python3 -c '
import sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
problems = []
if set(services) != {"redis", "issuer", "sample_site"}:
    problems.append(f"services are {sorted(services)}, not redis, issuer and sample_site")
for name, service in services.items():
    if not service.get("healthcheck", {}).get("test"):
        problems.append(f"{name} has no healthcheck")
site = services.get("sample_site", {})
env = site.get("environment", {})
if not env.get("REDIS_URL"):
    problems.append("sample_site has no REDIS_URL")
if str(env.get("WEB_CONCURRENCY")) != "4":
    problems.append("sample_site does not run 4 gunicorn workers (WEB_CONCURRENCY)")
for dependency in ("redis", "issuer"):
    if site.get("depends_on", {}).get(dependency, {}).get("condition") != "service_healthy":
        problems.append(f"sample_site does not wait for a healthy {dependency}")
if problems:
    sys.exit("docker-compose.yml: " + "; ".join(problems))
'
grep -q "gunicorn" sample_site/Dockerfile || { echo "sample_site/Dockerfile does not start gunicorn" >&2; exit 1; }
echo "docker-compose.yml is valid (docker-compose $(docker-compose version --short))"
