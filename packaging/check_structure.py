"""Structural checks of the packaging that the linters do not make: what the project promises
about its Dockerfile, systemd unit and Kubernetes manifests (non-root, read-only root file
system, probes on /healthz and /readyz over HTTPS, the master key from a Secret, ...).

Usage: python check_structure.py PACKAGING_DIR [SENTRACE_BIN]
With SENTRACE_BIN, the configuration in the ConfigMap is also run through
`sentrace config check`, so it names only keys the server knows.
"""

import os
import re
import subprocess
import sys
import tempfile

import yaml

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def dockerfile(path):
    text = open(path, encoding="utf-8").read()
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    froms = [l.split()[1] for l in lines if l.upper().startswith("FROM ")]
    check(len(froms) >= 2, "Dockerfile: multi-stage (at least two FROM)")
    for image in froms:
        check(":" in image and not image.endswith(":latest"), f"Dockerfile: FROM {image} pinned to a tag, not latest")
    users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
    check(bool(users), "Dockerfile: a USER instruction")
    if users:
        user = users[-1].split(":")[0]
        check(user not in ("root", "0"), f"Dockerfile: final USER {user} is not root")
    check(any(l.upper().startswith("VOLUME") and "/var/lib/sentrace" in l for l in lines), "Dockerfile: data dir is a VOLUME")
    check(any("SENTRACE_DATA_DIR=/var/lib/sentrace" in l for l in lines), "Dockerfile: SENTRACE_DATA_DIR points at the volume")
    for port in ("4317", "4318", "16686"):
        check(any(l.upper().startswith("EXPOSE") and port in l.split() for l in lines), f"Dockerfile: EXPOSE {port}")
    check(not any(l.upper().startswith("HEALTHCHECK") for l in lines), "Dockerfile: no HEALTHCHECK (no HTTP client in the image)")
    check(any("--locked" in l for l in lines), "Dockerfile: cargo build --locked")


def dockerignore(path, repo):
    # Every path the Dockerfile COPYs from the context must exist and not be ignored.
    text = open(path, encoding="utf-8").read()
    allowed = [l[1:].rstrip("/") for l in text.splitlines() if l.startswith("!")]
    for p in ("Cargo.toml", "Cargo.lock", "crates"):
        check(p in allowed, f"Dockerfile.dockerignore: {p} is let through")
        check(os.path.exists(os.path.join(repo, p)), f"repository has {p}")


def unit(path):
    settings = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("["):
            continue
        k, _, v = line.partition("=")
        settings.setdefault(k, []).append(v)
    want = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "CapabilityBoundingSet": "", "StateDirectory": "sentrace",
        "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallArchitectures": "native",
    }
    for k, v in want.items():
        check(settings.get(k, [None])[-1] == v, f"sentrace.service: {k}={v}")
    check("@system-service" in settings.get("SystemCallFilter", []), "sentrace.service: SystemCallFilter=@system-service")
    check(settings.get("User", ["root"])[-1] not in ("root", "0") or settings.get("DynamicUser") == ["yes"],
          "sentrace.service: runs as a non-root user")
    check(any("/var/lib/sentrace" in v for v in settings.get("ReadWritePaths", [])), "sentrace.service: ReadWritePaths holds the data dir")


def manifests(kdir):
    docs = []
    for root, _, files in os.walk(kdir):
        for f in sorted(files):
            if f.endswith(".yaml"):
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    docs += [d for d in yaml.safe_load_all(fh) if d]
    by_kind = {}
    for d in docs:
        check(d.get("metadata", {}).get("name"), f"{d.get('kind')}: metadata.name")
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == "sentrace", f"{d['kind']}/{d['metadata']['name']}: in namespace sentrace")
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ("Namespace", "ServiceAccount", "Secret", "ConfigMap", "StatefulSet", "Service"):
        check(kind in by_kind, f"manifests: a {kind}")
    if "StatefulSet" not in by_kind:
        return None
    sts = by_kind["StatefulSet"][0]
    pod = sts["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "StatefulSet: pod runAsNonRoot")
    check(pod.get("automountServiceAccountToken") is False, "StatefulSet: no service account token")
    c = pod["containers"][0]
    csc = c.get("securityContext", {})
    check(csc.get("readOnlyRootFilesystem") is True, "StatefulSet: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, "StatefulSet: allowPrivilegeEscalation false")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], "StatefulSet: drops ALL capabilities")
    check(not c["image"].endswith(":latest") and ":" in c["image"], "StatefulSet: image pinned to a tag")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports == {"otlp-grpc": 4317, "otlp-http": 4318, "query": 16686}, f"StatefulSet: ports {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = c.get(probe, {}).get("httpGet", {})
        check(g.get("path") == path and g.get("scheme") == "HTTPS" and ports.get(g.get("port"), g.get("port")) == 16686,
              f"StatefulSet: {probe} httpGet HTTPS {path} on 16686")
    env = {e["name"]: e for e in c.get("env", [])}
    mk = env.get("SENTRACE_MASTER_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
    secrets = {s["metadata"]["name"]: s for s in by_kind.get("Secret", [])}
    check(mk.get("name") in secrets and mk.get("key") in secrets.get(mk.get("name"), {}).get("stringData", {}),
          "StatefulSet: SENTRACE_MASTER_KEY from the Secret's key")
    data_dir = env.get("SENTRACE_DATA_DIR", {}).get("value")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    claims = [t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])]
    check(data_dir is not None and any(mounts.get(n) == data_dir for n in claims),
          "StatefulSet: the data dir is a PersistentVolumeClaim mount")
    svc_ports = {p["port"] for s in by_kind.get("Service", []) for p in s["spec"]["ports"]}
    check({4317, 4318, 16686} <= svc_ports, f"Service: ports 4317, 4318, 16686 (have {sorted(svc_ports)})")
    cfg_path = env.get("SENTRACE_CONFIG", {}).get("value", "")
    for cm in by_kind.get("ConfigMap", []):
        for key, text in cm.get("data", {}).items():
            if cfg_path.endswith("/" + key):
                return text
    check(False, "StatefulSet: SENTRACE_CONFIG names a file of the ConfigMap")
    return None


def config_check(text, binary):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        r = subprocess.run([binary, "config", "check", f.name], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, f"ConfigMap sentrace.toml: `sentrace config check` said {r.stdout}{r.stderr}".strip())
    finally:
        os.unlink(f.name)


def main():
    pdir = sys.argv[1]
    binary = sys.argv[2] if len(sys.argv) > 2 else ""
    repo = os.path.dirname(os.path.abspath(pdir))
    dockerfile(os.path.join(pdir, "Dockerfile"))
    dockerignore(os.path.join(pdir, "Dockerfile.dockerignore"), repo)
    unit(os.path.join(pdir, "systemd", "sentrace.service"))
    cfg = manifests(os.path.join(pdir, "kubernetes"))
    if cfg is not None and binary:
        config_check(cfg, binary)
    elif cfg is not None:
        print("structure: no sentrace binary given; the ConfigMap's TOML was not run through `config check`")
    for f in failures:
        print(f"FAIL {f}")
    if failures:
        sys.exit(1)
    print("structure: Dockerfile, systemd unit and Kubernetes manifests ok")


if __name__ == "__main__":
    main()
