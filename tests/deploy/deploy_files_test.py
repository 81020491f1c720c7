#!/usr/bin/env python3
"""Static checks of the deployment files under deploy/.

No container engine, cluster or systemd instance is needed: the files are
parsed and checked for the properties deploy/README.md promises (replicas,
non-root, probes, ports, durability of Redis, sandboxing, metric names), and
every flag they give challenge-authority (and every challengectl flag in
deploy/README.md) is compared with what the real binaries print for --help.

Run by CTest as deploy_files_test, with SCEPCA_BIN_DIR set to the build
directory; by hand:

    SCEPCA_BIN_DIR=build python3 tests/deploy/deploy_files_test.py -v

Needs Python 3 and python3-yaml (Debian package; deploy/dev.sh installs it).
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

try:
    import yaml
except ImportError:  # Reported as a failure by every test that needs it.
    yaml = None

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
COMPONENT = K8S / "components" / "grpc-probes"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "docker" / "compose.yaml"
UNIT = DEPLOY / "systemd" / "challenge-authority.service"
FLAGFILE = DEPLOY / "config" / "challenge-authority.flags"
AUTHZ = DEPLOY / "config" / "authz.json"
DASHBOARD = DEPLOY / "grafana" / "scep-challenge-authority.json"
REDIS_CONF = DEPLOY / "redis" / "redis.conf"
DEV_SH = DEPLOY / "dev.sh"
README = DEPLOY / "README.md"

GRPC_PORT = 50051
HTTP_PORT = 8080
SERVICE_NAME = "scep.challenge.v1.ChallengeAuthority"
NON_ROOT_UID = 10001

# The metrics challenge-authority exports, with their labels.
METRICS = {
    "scepca_rpc_requests_total": {"method", "code"},
    "scepca_rpc_latency_seconds_bucket": {"method", "le"},
    "scepca_validations_total": {"reason"},
    "scepca_store_errors_total": {"operation"},
    "scepca_outstanding_challenges": set(),
    "scepca_key_ring_generation": set(),
    "scepca_up": set(),
}
# Labels Prometheus adds to every series.
TARGET_LABELS = {"job", "instance"}

# deploy/dev.sh PACKAGES that only the tests and tools need; the Dockerfile's
# build stage installs all the others.
TEST_ONLY_PACKAGES = {
    "libgtest-dev", "libgmock-dev", "libbenchmark-dev", "redis-server",
    "redis-tools", "clang-format", "scep", "python3", "python3-yaml",
}
# Shared libraries the runtime stage must install (Debian 12 names).
RUNTIME_PACKAGES = {
    "libgrpc++1.51", "libprotobuf32", "libhiredis0.14", "libssl3",
    "libabsl20220623", "libcpp-httplib0.11", "ca-certificates",
}
# In every Debian image already.
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}

# Redis settings the store's guarantees rest on (deploy/redis/README.md);
# every Redis configuration shipped here must match deploy/redis/redis.conf.
REDIS_DURABILITY_KEYS = [
    "appendonly", "appendfsync", "no-appendfsync-on-rewrite",
    "aof-load-truncated", "aof-use-rdb-preamble", "save",
    "stop-writes-on-bgsave-error", "maxmemory", "maxmemory-policy", "user",
    "enable-debug-command", "enable-module-command",
    "enable-protected-configs",
]

FLAG_RE = re.compile(r"--[a-z][a-z0-9-]+")
TOOLS = ("challenge-authority", "challengectl", "challenge-verify")


# ----------------------------------------------------------------- helpers


def require_yaml(test):
    if yaml is None:
        test.fail("python3-yaml is missing: apt-get install python3-yaml "
                  "(deploy/dev.sh deps installs it)")


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def bin_dir():
    return Path(os.environ.get("SCEPCA_BIN_DIR") or ROOT / "build")


def tool_path(name):
    sub = "service" if name == "challenge-authority" else "client"
    return bin_dir() / sub / name


_help_cache = {}


def help_flags(argv):
    """Runs argv + ["--help"]; returns {flag: takes_value}."""
    key = tuple(argv)
    if key not in _help_cache:
        exe = tool_path(argv[0])
        if not os.access(exe, os.X_OK):
            raise AssertionError(
                f"{exe} is missing: build it, or set SCEPCA_BIN_DIR to the "
                "CMake build directory")
        proc = subprocess.run([str(exe), *argv[1:], "--help"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} --help exited "
                                 f"{proc.returncode}: {proc.stderr.strip()}")
        flags = {}
        for line in proc.stdout.splitlines():
            m = re.match(r"^\s+(--[a-z][a-z0-9-]+)(\s+\S+)?\s*$", line)
            if m:
                flags[m.group(1)] = m.group(2) is not None
        if not flags:
            raise AssertionError(f"{' '.join(argv)} --help lists no flags")
        _help_cache[key] = flags
    return _help_cache[key]


def flagfile_flags(text):
    """Flags of a --flagfile: one per line, "--name=value" or "name=value"."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("--"):
            line = "--" + line
        m = FLAG_RE.match(line)
        out.append(m.group(0) if m else line)
    return out


def flagfile_args(text):
    """The flags of a --flagfile as command-line arguments."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line if line.startswith("--") else "--" + line)
    return out


def args_flags(args):
    out = []
    for a in args:
        m = FLAG_RE.match(str(a))
        if m:
            out.append(m.group(0))
    return out


def logical_lines(text):
    """Joins backslash-continued lines."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
        else:
            out.append(cur + line)
            cur = ""
    if cur:
        out.append(cur)
    return out


def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)] with continuations joined and heredoc
    bodies skipped."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.rstrip().endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            line = line.rstrip()[:-1] + " " + nxt.strip()
        parts = line.strip().split(None, 1)
        instr, rest = parts[0].upper(), (parts[1] if len(parts) > 1 else "")
        out.append((instr, rest))
        m = re.search(r"<<-?'?\"?([A-Za-z_][A-Za-z0-9_]*)", rest)
        if m:  # Heredoc: skip to its terminator.
            while i < len(lines) and lines[i].strip() != m.group(1):
                i += 1
            i += 1
    return out


def dockerfile_stages(text):
    """{"args": {...}, "stages": [{"from": image, "name": n, "instr": [...]}]}"""
    args, stages = {}, []
    for instr, rest in dockerfile_instructions(text):
        if instr == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif instr == "FROM":
            tokens = rest.split()
            image = re.sub(r"\$\{?([A-Za-z_]+)\}?",
                           lambda m: args.get(m.group(1), m.group(0)),
                           tokens[0])
            name = tokens[2] if len(tokens) >= 3 and tokens[1].upper() == "AS" else None
            stages.append({"from": image, "name": name, "instr": []})
        elif stages:
            stages[-1]["instr"].append((instr, rest))
    return {"args": args, "stages": stages}


def apt_installed(run_args):
    """Packages named after "apt-get install" in a RUN line."""
    m = re.search(r"apt-get install((?:\s+[^&;|]+)+)", run_args)
    if not m:
        return set()
    return {t for t in m.group(1).split() if not t.startswith("-")}


def dev_sh_packages():
    text = DEV_SH.read_text(encoding="utf-8")
    m = re.search(r"^PACKAGES=\((.*?)^\)", text, re.S | re.M)
    assert m, "deploy/dev.sh has no PACKAGES=( ... )"
    return set(m.group(1).split())


def redis_directives(text):
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), []).append(" ".join(value.split()))
    return out


def parse_unit(text):
    """{section: [(key, value)]}, continuations joined, repeated keys kept."""
    sections, current = {}, None
    for line in logical_lines(text):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            current = sections.setdefault(s[1:-1], [])
            continue
        key, sep, value = s.partition("=")
        if sep and current is not None:
            current.append((key.strip(), " ".join(value.split())))
    return sections


def unit_values(sections, section, key):
    return [v for k, v in sections.get(section, []) if k == key]


def markdown_code_lines(text):
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.append(line)
    return logical_lines("\n".join(lines))


_TOOL_TOKEN = re.compile(
    r"^(?:(?P<prefix>\S*)/)?(?P<tool>challenge-authority|challengectl|"
    r"challenge-verify)(?::[\w.-]+)?$")
_K8S_PREFIXES = {"deployment", "deploy", "pod", "po", "svc", "service",
                 "statefulset", "sts", "configmap", "cm", "secret"}


def tool_invocations(line):
    """[(tool, args)] for the commands of one shell line. After
    "--entrypoint X" (docker run, docker compose run) the arguments after the
    image or service belong to X. A tool's arguments run to the next shell
    operator; a tool name among them (a flag's value) starts nothing."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        tokens = line.split()
    separators = ("|", "||", "&&", ";", "&")
    out = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        m = _TOOL_TOKEN.match(tok)
        if (not m or (m.group("prefix") or "").lower() in _K8S_PREFIXES or
                (i > 0 and tokens[i - 1] in ("-u", "--entrypoint", "-n", "--name"))):
            i += 1
            continue
        tool = m.group("tool")
        start = i
        while start > 0 and tokens[start - 1] not in separators:
            start -= 1
        for j in range(start, i):
            if tokens[j] == "--entrypoint" and j + 1 < i:
                tool = Path(tokens[j + 1]).name
            elif tokens[j].startswith("--entrypoint="):
                tool = Path(tokens[j].split("=", 1)[1]).name
        rest = []
        i += 1
        while i < len(tokens) and tokens[i] not in separators:
            if tokens[i].startswith((">", "<")):
                break
            rest.append(tokens[i])
            i += 1
        if tool in TOOLS:
            out.append((tool, rest))
    return out


# ------------------------------------------------------------------ tests


class YamlFilesTest(unittest.TestCase):
    def test_every_yaml_file_parses(self):
        require_yaml(self)
        files = sorted(p for p in DEPLOY.rglob("*")
                       if p.suffix in (".yaml", ".yml") and p.is_file())
        self.assertGreaterEqual(len(files), 10, files)
        for path in files:
            with self.subTest(file=str(path.relative_to(ROOT))):
                docs = load_yaml_docs(path)
                self.assertTrue(docs, "no YAML document")
                for doc in docs:
                    self.assertIsInstance(doc, (dict, list))

    def test_json_files_parse(self):
        for path in (AUTHZ, DASHBOARD):
            with self.subTest(file=str(path.relative_to(ROOT))):
                json.loads(path.read_text(encoding="utf-8"))


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if yaml is None:
            return
        cls.kustomization = load_yaml_docs(K8S / "kustomization.yaml")[0]
        cls.objects = []
        for res in cls.kustomization.get("resources", []):
            cls.objects += load_yaml_docs(K8S / res)
        cls.templates = load_yaml_docs(K8S / "secrets.template.yaml")
        cls.component = load_yaml_docs(COMPONENT / "kustomization.yaml")[0]

    def setUp(self):
        require_yaml(self)

    def find(self, kind, name=None):
        found = [o for o in self.objects if o.get("kind") == kind and
                 (name is None or o["metadata"]["name"] == name)]
        self.assertTrue(found, f"no {kind} {name or ''} in kustomization")
        return found

    def deployment(self):
        return self.find("Deployment", "challenge-authority")[0]

    def pod(self):
        return self.deployment()["spec"]["template"]

    def container(self):
        for c in self.pod()["spec"]["containers"]:
            if c["name"] == "challenge-authority":
                return c
        self.fail("no container challenge-authority")

    def test_kustomization_lists_every_manifest_but_the_secret_templates(self):
        listed = set(self.kustomization["resources"])
        for res in listed:
            self.assertTrue((K8S / res).is_file(), res)
        present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        self.assertNotIn("secrets.template.yaml", listed,
                         "applying the kustomization would overwrite Secrets")
        self.assertEqual(present - {"secrets.template.yaml"}, listed)
        self.assertEqual(self.kustomization.get("namespace"), "scepca")

    def test_deployment_replicas_and_selector(self):
        d = self.deployment()
        self.assertGreaterEqual(d["spec"]["replicas"], 2)
        sel = d["spec"]["selector"]["matchLabels"]
        labels = self.pod()["metadata"]["labels"]
        self.assertTrue(sel and sel.items() <= labels.items())

    def test_pods_run_as_non_root_read_only_without_capabilities(self):
        workloads = [self.deployment()] + self.find("StatefulSet")
        for w in workloads:
            spec = w["spec"]["template"]["spec"]
            with self.subTest(workload=w["metadata"]["name"]):
                psc = spec["securityContext"]
                self.assertIs(psc.get("runAsNonRoot"), True)
                self.assertNotEqual(psc.get("runAsUser", 0), 0)
                self.assertEqual(psc["seccompProfile"]["type"], "RuntimeDefault")
                self.assertIs(spec.get("automountServiceAccountToken"), False)
                for c in spec.get("initContainers", []) + spec["containers"]:
                    sc = c["securityContext"]
                    self.assertIs(sc.get("readOnlyRootFilesystem"), True, c["name"])
                    self.assertIs(sc.get("allowPrivilegeEscalation"), False, c["name"])
                    self.assertIn("ALL", sc["capabilities"]["drop"], c["name"])
                    res = c["resources"]
                    for kind in ("requests", "limits"):
                        self.assertIn("cpu", res[kind], c["name"])
                        self.assertIn("memory", res[kind], c["name"])
        self.assertEqual(self.pod()["spec"]["securityContext"]["runAsUser"],
                         NON_ROOT_UID)

    def test_pods_spread_over_nodes(self):
        spec = self.pod()["spec"]
        spread = spec.get("topologySpreadConstraints", [])
        anti = spec.get("affinity", {}).get("podAntiAffinity")
        self.assertTrue(spread or anti)
        if spread:
            keys = {c["topologyKey"] for c in spread}
            self.assertIn("kubernetes.io/hostname", keys)
            labels = self.pod()["metadata"]["labels"]
            for c in spread:
                self.assertLessEqual(c["labelSelector"]["matchLabels"].items(),
                                     labels.items())

    def container_port(self, port):
        for p in self.container()["ports"]:
            if port in (p["containerPort"], p.get("name")):
                return p["containerPort"]
        self.fail(f"container has no port {port}")

    def test_container_ports(self):
        self.assertEqual(self.container_port("grpc"), GRPC_PORT)
        self.assertEqual(self.container_port("http"), HTTP_PORT)

    def test_base_probes_use_the_https_health_endpoints(self):
        # The kubelet's gRPC probe cannot pass the mutual-TLS handshake, so
        # the base uses the HTTPS listener: /healthz = alive, /readyz = store.
        c = self.container()
        expect = {"livenessProbe": "/healthz", "readinessProbe": "/readyz",
                  "startupProbe": "/healthz"}
        for probe, path in expect.items():
            with self.subTest(probe=probe):
                get = c[probe]["httpGet"]
                self.assertEqual(get["path"], path)
                self.assertEqual(get["scheme"], "HTTPS")
                self.assertEqual(self.container_port(get["port"]), HTTP_PORT)
        self.assertIn("--tls-cert=/run/scepca/secrets/tls.crt", c["args"])
        self.assertIn("--client-ca=/run/scepca/secrets/ca.crt", c["args"])

    def component_ops(self):
        self.assertEqual(self.component["kind"], "Component")
        ops = {}
        for patch in self.component["patches"]:
            self.assertEqual(patch["target"]["kind"], "Deployment")
            self.assertEqual(patch["target"]["name"], "challenge-authority")
            for op in yaml.safe_load(patch["patch"]):
                ops[op["path"]] = op
        return ops

    def test_grpc_probes_component(self):
        ops = self.component_ops()
        base = "/spec/template/spec/containers/0/"
        self.assertEqual(self.pod()["spec"]["containers"][0]["name"],
                         "challenge-authority")
        readiness = ops[base + "readinessProbe"]["value"]["grpc"]
        self.assertEqual(readiness["port"], GRPC_PORT)
        self.assertEqual(readiness["service"], SERVICE_NAME)
        # Liveness must not follow the store: grpc.health.v1 reports ""
        # NOT_SERVING too while Redis is down.
        for probe in ("livenessProbe", "startupProbe"):
            value = ops[base + probe]["value"]
            if "grpc" in value:
                self.assertEqual(value["grpc"]["port"], GRPC_PORT)
                self.assertEqual(value["grpc"].get("service", ""), "")
            else:
                self.assertEqual(value["tcpSocket"]["port"], GRPC_PORT)
        args = ops[base + "args"]["value"]
        self.assertIn("--allow-insecure-listen", args)
        self.assertFalse([a for a in args if a.startswith(
            ("--tls-cert", "--tls-key", "--client-ca"))])
        self.assertTrue(any(a.startswith("--flagfile=") for a in args))

    def test_service_ports(self):
        svc = self.find("Service", "challenge-authority")[0]
        ports = {p["name"]: p for p in svc["spec"]["ports"]}
        self.assertEqual(ports["grpc"]["port"], GRPC_PORT)
        self.assertEqual(ports["http"]["port"], HTTP_PORT)
        self.assertEqual(self.container_port(ports["grpc"]["targetPort"]), GRPC_PORT)
        self.assertEqual(self.container_port(ports["http"]["targetPort"]), HTTP_PORT)
        self.assertLessEqual(svc["spec"]["selector"].items(),
                             self.pod()["metadata"]["labels"].items())

    def test_pod_disruption_budget_selects_the_pods(self):
        pdb = self.find("PodDisruptionBudget")[0]
        self.assertEqual(pdb["spec"]["minAvailable"], 1)
        sel = pdb["spec"]["selector"]["matchLabels"]
        self.assertTrue(sel)
        self.assertLessEqual(sel.items(), self.pod()["metadata"]["labels"].items())
        self.assertGreater(self.deployment()["spec"]["replicas"],
                           pdb["spec"]["minAvailable"])

    def test_network_policy(self):
        pols = [p for p in self.find("NetworkPolicy")
                if p["spec"]["podSelector"]["matchLabels"].items()
                <= self.pod()["metadata"]["labels"].items()]
        self.assertEqual(len(pols), 1)
        spec = pols[0]["spec"]
        self.assertEqual(set(spec["policyTypes"]), {"Ingress", "Egress"})
        for rule in spec["ingress"]:
            self.assertTrue(rule.get("from"), "ingress from anywhere")
            for peer in rule["from"]:
                self.assertIn("namespaceSelector", peer)
                self.assertTrue(peer["namespaceSelector"], "all namespaces")
            ports = {p["port"] for p in rule["ports"]}
            self.assertTrue(ports and ports <= {GRPC_PORT, HTTP_PORT})
        egress_ports = {p["port"] for r in spec["egress"] for p in r["ports"]}
        self.assertEqual(egress_ports, {6379, 53})

    def test_config_map_and_secrets_exist_for_every_reference(self):
        spec = self.pod()["spec"]
        cms = {o["metadata"]["name"]: o for o in self.find("ConfigMap")}
        secrets = {s["metadata"]["name"]: s for s in self.templates}
        for s in secrets.values():
            self.assertEqual(s["kind"], "Secret")
        workloads = [self.deployment()] + self.find("StatefulSet")
        for w in workloads:
            for vol in w["spec"]["template"]["spec"].get("volumes", []):
                sources = vol.get("projected", {}).get("sources", [])
                if "secret" in vol:
                    sources = [{"secret": {"name": vol["secret"]["secretName"],
                                           "items": vol["secret"].get("items", [])}}]
                for src in sources:
                    s = src["secret"]
                    self.assertIn(s["name"], secrets)
                    data = secrets[s["name"]].get("stringData", {})
                    for item in s.get("items", []):
                        self.assertIn(item["key"], data, s["name"])
                if "configMap" in vol:
                    self.assertIn(vol["configMap"]["name"], cms)
        config = cms["challenge-authority-config"]["data"]
        self.assertIn("challenge-authority.flags", config)
        authz = json.loads(config["authz.json"])
        self.assertEqual(authz, json.loads(AUTHZ.read_text(encoding="utf-8")))
        self.assertTrue(any(v.get("configMap", {}).get("name") ==
                            "challenge-authority-config" for v in spec["volumes"]))

    def test_redis_statefulset_keeps_the_durability_settings(self):
        sts = self.find("StatefulSet", "scepca-redis")[0]
        self.assertEqual(sts["spec"]["replicas"], 1)
        self.assertTrue(sts["spec"]["volumeClaimTemplates"])
        conf = redis_directives(self.find("ConfigMap", "scepca-redis-config")[0]
                                ["data"]["redis.conf"])
        want = redis_directives(REDIS_CONF.read_text(encoding="utf-8"))
        self.assertEqual(conf["appendonly"], ["yes"])
        self.assertEqual(conf["appendfsync"], ["always"])
        self.assertEqual(conf["maxmemory-policy"], ["noeviction"])
        for key in REDIS_DURABILITY_KEYS:
            self.assertEqual(conf.get(key), want.get(key), key)


class ComposeTest(unittest.TestCase):
    def setUp(self):
        require_yaml(self)
        self.compose = load_yaml_docs(COMPOSE)[0]
        self.services = self.compose["services"]

    def test_services(self):
        self.assertIn("challenge-authority", self.services)
        self.assertIn("redis", self.services)
        for name, svc in self.services.items():
            with self.subTest(service=name):
                self.assertIn("healthcheck", svc)
                self.assertIs(svc.get("read_only"), True)
                self.assertEqual(svc.get("cap_drop"), ["ALL"])

    def test_authority(self):
        svc = self.services["challenge-authority"]
        self.assertEqual(str(svc["user"]).split(":")[0], str(NON_ROOT_UID))
        self.assertEqual(svc["build"]["dockerfile"], "deploy/docker/Dockerfile")
        self.assertEqual((COMPOSE.parent / svc["build"]["context"]).resolve(), ROOT)
        published = {str(p).rsplit(":", 1)[-1] for p in svc["ports"]}
        self.assertEqual(published, {str(GRPC_PORT), str(HTTP_PORT)})
        self.assertEqual(svc["depends_on"]["redis"]["condition"], "service_healthy")
        store = [a for a in svc["command"] if a.startswith("--store=")]
        self.assertEqual(store, ["--store=redis://scepca@redis:6379/0"])

    def test_redis_uses_the_deploy_config_with_appendonly(self):
        svc = self.services["redis"]
        mounts = {}
        for v in svc["volumes"]:
            src, dst = str(v).split(":")[:2]
            mounts[dst] = src
        conf = (COMPOSE.parent / mounts["/usr/local/etc/redis/redis.conf"]).resolve()
        self.assertEqual(conf, REDIS_CONF.resolve())
        directives = redis_directives(conf.read_text(encoding="utf-8"))
        self.assertEqual(directives["appendonly"], ["yes"])
        self.assertEqual(directives["appendfsync"], ["always"])
        self.assertIn("/data", mounts)
        command = " ".join(svc["command"])
        self.assertIn("redis-server /run/redis/redis.conf", command)
        for key in REDIS_DURABILITY_KEYS:
            self.assertNotRegex(command, rf"--{re.escape(key)}\b",
                                f"{key} overridden on the command line")
        self.assertNotIn("ports", svc, "Redis must not be published")


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        self.parsed = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))
        self.stages = self.parsed["stages"]
        self.final = self.stages[-1]

    def instr(self, stage, name):
        return [rest for i, rest in stage["instr"] if i == name]

    def test_multi_stage_on_bookworm_slim(self):
        self.assertGreaterEqual(len(self.stages), 2)
        for s in self.stages:
            self.assertEqual(s["from"], "debian:bookworm-slim")

    def test_final_stage_runs_as_non_root(self):
        users = self.instr(self.final, "USER")
        self.assertTrue(users, "final stage has no USER")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("0", "root"))
        self.assertEqual(user, str(NON_ROOT_UID))

    def test_final_stage_entrypoint_ports_healthcheck(self):
        entry = json.loads(self.instr(self.final, "ENTRYPOINT")[-1])
        self.assertEqual(entry, ["/usr/local/bin/challenge-authority"])
        ports = set(" ".join(self.instr(self.final, "EXPOSE")).split())
        self.assertEqual(ports, {str(GRPC_PORT), str(HTTP_PORT)})
        self.assertTrue(self.instr(self.final, "HEALTHCHECK"))
        cmd = json.loads(self.instr(self.final, "CMD")[-1])
        self.assertIn("--listen=0.0.0.0:50051", cmd)
        self.assertIn("--tls-cert=/etc/scepca/tls/tls.crt", cmd)
        self.assertIn("--tls-key=/etc/scepca/tls/tls.key", cmd)
        copies = " ".join(self.instr(self.final, "COPY"))
        self.assertIn("--from=build", copies)

    def test_build_stage_packages_follow_dev_sh(self):
        build = self.stages[0]
        installed = set()
        for run in self.instr(build, "RUN"):
            installed |= apt_installed(run)
        self.assertEqual(installed, dev_sh_packages() - TEST_ONLY_PACKAGES)
        runs = " ".join(self.instr(build, "RUN"))
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", runs)
        self.assertIn("-DBUILD_TESTING=OFF", runs)
        for tool in TOOLS:
            self.assertIn(f"/usr/local/bin/{tool}", runs)

    def test_runtime_stage_packages(self):
        installed = set()
        for run in self.instr(self.final, "RUN"):
            installed |= apt_installed(run)
        self.assertLessEqual(RUNTIME_PACKAGES, installed)
        self.assertFalse({p for p in installed if p.endswith("-dev")})
        self.assertNotIn("build-essential", installed)

    def test_runtime_packages_cover_the_linked_libraries(self):
        if not (shutil.which("ldd") and shutil.which("dpkg-query")):
            self.skipTest("needs ldd and dpkg (Debian)")
        installed = set()
        for run in self.instr(self.final, "RUN"):
            installed |= apt_installed(run)
        # Everything the runtime stage gets: its packages and their Depends
        # (as the local dpkg database knows them).
        depends = {}
        q = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Depends}\n"],
                           capture_output=True, text=True, check=True)
        for line in q.stdout.splitlines():
            pkg, _, deps = line.partition("\t")
            depends[pkg] = {d.strip().split(" ")[0].split(":")[0]
                            for d in re.split(r"[,|]", deps) if d.strip()}
        closure, todo = set(BASE_PACKAGES), list(installed)
        while todo:
            pkg = todo.pop()
            if pkg not in closure:
                closure.add(pkg)
                todo += depends.get(pkg, ())
        libs = {}
        for tool in TOOLS:
            exe = tool_path(tool)
            self.assertTrue(exe.exists(), f"{exe} is missing")
            ldd = subprocess.run(["ldd", str(exe)], capture_output=True,
                                 text=True, check=True)
            for lib in re.findall(r"=> (/\S+)", ldd.stdout):
                # Sanitizer runtimes come from a sanitizer build of the
                # tests (SCEPCA_SANITIZE), never from the image's Release
                # build.
                if re.search(r"/lib(asan|ubsan|tsan|lsan)\.so", lib):
                    continue
                libs.setdefault(os.path.realpath(lib), set()).add(tool)
        # The file names the closure's packages ship (dpkg's file lists).
        shipped = set()
        info = Path("/var/lib/dpkg/info")
        for pkg in closure:
            for pattern in (f"{pkg}.list", f"{pkg}:*.list"):
                for lst in info.glob(pattern):
                    shipped |= {Path(l).name for l in lst.read_text().splitlines()}
        for lib, tools in sorted(libs.items()):
            name = Path(lib).name
            if name in shipped:
                continue
            q = subprocess.run(["dpkg-query", "-S", name],
                               capture_output=True, text=True)
            if q.returncode != 0:
                continue  # Not from a package (e.g. a local build).
            with self.subTest(lib=lib, tools=sorted(tools)):
                self.fail(f"{lib} comes from {q.stdout.split(': ')[0]}, "
                          "which the runtime stage does not install")

    def test_dockerignore_keeps_the_context_to_sources(self):
        ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8")
        rules = [l.strip() for l in ignore.splitlines()
                 if l.strip() and not l.startswith("#")]
        self.assertEqual(rules[0], "*")
        allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
        self.assertNotIn("deploy", allowed)
        self.assertNotIn(".git", allowed)
        for needed in ("CMakeLists.txt", "cmake", "proto", "service", "client"):
            self.assertIn(needed, allowed)
        top = re.findall(r"add_subdirectory\((\w+)\)",
                         (ROOT / "CMakeLists.txt").read_text(encoding="utf-8"))
        for sub in top:
            if sub != "tests":  # Only with BUILD_TESTING.
                self.assertIn(sub, allowed, f"CMake needs {sub}/")


class GrafanaTest(unittest.TestCase):
    def setUp(self):
        self.dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    def exprs(self):
        out = []
        for p in self.dash["panels"]:
            out += [t["expr"] for t in p.get("targets", [])]
            for sub in p.get("panels", []):
                out += [t["expr"] for t in sub.get("targets", [])]
        for v in self.dash["templating"]["list"]:
            q = v.get("query")
            if isinstance(q, dict):
                q = q.get("query")
            if v["type"] == "query":
                out.append(q)
        return out

    def test_dashboard_shape(self):
        self.assertGreaterEqual(self.dash["schemaVersion"], 36)
        self.assertTrue(self.dash["uid"])
        ids = [p["id"] for p in self.dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        titles = {p["title"] for p in self.dash["panels"]}
        for want in ("Request rate by method", "Error rate by code",
                     "Latency p50 / p99 by method", "Validations by reason",
                     "Store errors by operation", "Outstanding challenges",
                     "Key ring generation"):
            self.assertIn(want, titles)
        stacked = [p for p in self.dash["panels"] if p["title"] == "Validations by reason"][0]
        self.assertEqual(stacked["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"], "normal")
        latency = " ".join(t["expr"] for p in self.dash["panels"]
                           if p["title"].startswith("Latency") for t in p["targets"])
        self.assertIn("histogram_quantile(0.5,", latency)
        self.assertIn("histogram_quantile(0.99,", latency)

    def test_only_known_metrics_and_labels(self):
        exprs = self.exprs()
        self.assertTrue(exprs)
        used = set()
        for expr in exprs:
            with self.subTest(expr=expr):
                names = set(re.findall(r"\bscepca_[a-z0-9_]+", expr))
                self.assertTrue(names, "no scepca_ metric")
                self.assertLessEqual(names, set(METRICS))
                used |= names
                labels = set(TARGET_LABELS)
                for n in names:
                    labels |= METRICS[n]
                for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                    for label in filter(None, (l.strip() for l in group.split(","))):
                        self.assertIn(label, labels)
                for sel in re.findall(r"\{([^}]*)\}", expr):
                    for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", sel):
                        self.assertIn(label, labels)
        # The whole text names no other scepca_ metric either.
        text = DASHBOARD.read_text(encoding="utf-8")
        self.assertLessEqual(set(re.findall(r"\bscepca_[a-z0-9_]+", text)), set(METRICS))
        self.assertEqual(used, set(METRICS), "every metric has a panel")


class SystemdTest(unittest.TestCase):
    def setUp(self):
        self.unit = parse_unit(UNIT.read_text(encoding="utf-8"))

    def value(self, key):
        values = unit_values(self.unit, "Service", key)
        self.assertTrue(values, f"[Service] has no {key}=")
        return values[-1]

    def test_sandboxing(self):
        expect = {
            "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
            "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
            "MemoryDenyWriteExecute": "yes", "Restart": "on-failure",
            "RestrictNamespaces": "yes", "LockPersonality": "yes",
        }
        for key, want in expect.items():
            with self.subTest(key=key):
                self.assertEqual(self.value(key), want)
        self.assertEqual(set(self.value("RestrictAddressFamilies").split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX"})
        filters = unit_values(self.unit, "Service", "SystemCallFilter")
        self.assertIn("@system-service", filters)
        user = unit_values(self.unit, "Service", "User")
        dynamic = unit_values(self.unit, "Service", "DynamicUser")
        self.assertTrue(dynamic == ["yes"] or (user and user[-1] != "root"))

    def test_reload_and_credentials(self):
        self.assertEqual(self.value("ExecReload"), "/bin/kill -HUP $MAINPID")
        creds = {v.split(":", 1)[0] for v in
                 unit_values(self.unit, "Service", "LoadCredential")}
        self.assertTrue(creds)
        start = self.value("ExecStart")
        self.assertTrue(start.startswith("/usr/local/bin/challenge-authority "))
        self.assertIn("--flagfile=/etc/scepca/challenge-authority.flags", start)
        used = set(re.findall(r"%d/([\w.-]+)", start))
        self.assertEqual(used, creds, "every credential is loaded and used")
        self.assertEqual(unit_values(self.unit, "Install", "WantedBy"),
                         ["multi-user.target"])


class FlagsTest(unittest.TestCase):
    """Every flag the deploy files give a binary is one it knows."""

    def authority_args(self):
        """{source: ["--name=value", ...]} given to challenge-authority."""
        uses = {}
        uses[str(FLAGFILE.relative_to(ROOT))] = flagfile_args(
            FLAGFILE.read_text(encoding="utf-8"))
        final = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))["stages"][-1]
        cmd = [json.loads(r) for i, r in final["instr"] if i == "CMD"][-1]
        uses["deploy/docker/Dockerfile CMD"] = list(cmd)
        unit = parse_unit(UNIT.read_text(encoding="utf-8"))
        start = unit_values(unit, "Service", "ExecStart")[-1]
        uses["deploy/systemd/challenge-authority.service ExecStart"] = \
            shlex.split(start.replace("%d", "/run/credentials/challenge-authority.service"))[1:]
        if yaml is not None:
            compose = load_yaml_docs(COMPOSE)[0]
            uses["deploy/docker/compose.yaml"] = list(
                compose["services"]["challenge-authority"]["command"])
            objs = []
            for res in load_yaml_docs(K8S / "kustomization.yaml")[0]["resources"]:
                objs += load_yaml_docs(K8S / res)
            for o in objs:
                if o["kind"] == "ConfigMap" and "challenge-authority.flags" in o["data"]:
                    uses["deploy/kubernetes/configmap.yaml"] = flagfile_args(
                        o["data"]["challenge-authority.flags"])
                if o["kind"] == "Deployment":
                    for c in o["spec"]["template"]["spec"]["containers"]:
                        uses["deploy/kubernetes/deployment.yaml args"] = list(
                            c.get("args", []))
            comp = load_yaml_docs(COMPONENT / "kustomization.yaml")[0]
            for patch in comp["patches"]:
                for op in yaml.safe_load(patch["patch"]):
                    if op["path"].endswith("/args"):
                        uses["deploy/kubernetes/components/grpc-probes"] = \
                            list(op["value"])
        return uses

    def authority_uses(self):
        """{source: [flags]} for challenge-authority."""
        return {src: args_flags(args) for src, args in self.authority_args().items()}

    def readme_uses(self):
        """[(tool, subcommand or None, flag, line)] from deploy/README.md."""
        out = []
        for line in markdown_code_lines(README.read_text(encoding="utf-8")):
            for tool, args in tool_invocations(line):
                sub = None
                if tool == "challengectl":
                    globals_ = help_flags(["challengectl"])
                    i = 0
                    while i < len(args) and args[i].startswith("--"):
                        flag = args[i].split("=", 1)[0]
                        if globals_.get(flag) and "=" not in args[i]:
                            i += 1
                        i += 1
                    sub = args[i] if i < len(args) else None
                for a in args:
                    m = FLAG_RE.match(a)
                    if m:
                        out.append((tool, sub, m.group(0), line.strip()))
        return out

    def test_challenge_authority_knows_every_flag(self):
        if yaml is None:
            require_yaml(self)
        known = help_flags(["challenge-authority"])
        unknown = {}
        for source, flags in self.authority_uses().items():
            self.assertTrue(flags, f"{source}: no flags found")
            for f in flags:
                if f not in known:
                    unknown.setdefault(f, []).append(source)
        for tool, _, flag, line in self.readme_uses():
            if tool == "challenge-authority" and flag not in known:
                unknown.setdefault(flag, []).append("deploy/README.md: " + line[:60])
        if unknown:
            self.fail("flags that `challenge-authority --help` does not list:\n"
                      + "\n".join(f"  {f}  ({'; '.join(sorted(set(s)))})"
                                   for f, s in sorted(unknown.items())))

    def test_flagfiles_set_each_flag_once(self):
        texts = {str(FLAGFILE.relative_to(ROOT)): FLAGFILE.read_text(encoding="utf-8")}
        if yaml is not None:
            for o in load_yaml_docs(K8S / "configmap.yaml"):
                if "challenge-authority.flags" in o.get("data", {}):
                    texts["deploy/kubernetes/configmap.yaml"] = \
                        o["data"]["challenge-authority.flags"]
        for name, text in texts.items():
            flags = flagfile_flags(text)
            dups = sorted({f for f in flags if flags.count(f) > 1})
            self.assertFalse(dups, f"{name} sets {dups} more than once")

    def test_known_flags_have_valid_values(self):
        # The server parses (and checks) every value before it looks at
        # --help, so this catches "--default-ttl=60x" without starting it.
        # Flags it does not know yet are left out (the test above names them).
        known = help_flags(["challenge-authority"])
        exe = str(tool_path("challenge-authority"))
        for source, args in self.authority_args().items():
            keep = [a for a in args if a.startswith("--") and
                    a.split("=", 1)[0] in known and
                    not a.startswith("--flagfile")]
            with self.subTest(source=source):
                proc = subprocess.run([exe, *keep, "--help"], capture_output=True,
                                      text=True, timeout=30)
                self.assertEqual(proc.returncode, 0, proc.stderr.strip())

    def test_readme_client_commands(self):
        unknown = []
        uses = self.readme_uses()
        self.assertTrue(any(t == "challengectl" for t, _, _, _ in uses),
                        "deploy/README.md shows no challengectl command")
        for tool, sub, flag, line in uses:
            if tool == "challenge-authority":
                continue
            known = dict(help_flags([tool]))
            if sub:
                known.update(help_flags([tool, sub]))
            if flag not in known:
                unknown.append(f"{tool} {sub or ''} {flag}: {line[:70]}")
        if unknown:
            self.fail("flags the tools' --help does not list:\n" + "\n".join(unknown))


class ToolsTest(unittest.TestCase):
    """Checks with tools our CI machines lack; skipped where they are missing."""

    def test_kustomize_renders_the_base_and_the_component(self):
        require_yaml(self)
        kubectl = shutil.which("kubectl")
        if not kubectl:
            self.skipTest("kubectl is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp) / "base"
            shutil.copytree(K8S, base)
            overlay = Path(tmp) / "overlay"
            overlay.mkdir()
            (overlay / "kustomization.yaml").write_text(
                "apiVersion: kustomize.config.k8s.io/v1beta1\n"
                "kind: Kustomization\n"
                "resources: [../base]\n"
                "components: [../base/components/grpc-probes]\n")
            for directory, probe in ((base, "httpGet"), (overlay, "grpc")):
                with self.subTest(kustomization=directory.name):
                    proc = subprocess.run([kubectl, "kustomize", str(directory)],
                                          capture_output=True, text=True, timeout=120)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
                    self.assertTrue(all(d["metadata"].get("namespace") == "scepca"
                                        for d in docs if d["kind"] != "Namespace"))
                    dep = [d for d in docs if d["kind"] == "Deployment"][0]
                    container = dep["spec"]["template"]["spec"]["containers"][0]
                    self.assertIn(probe, container["readinessProbe"])

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is not installed")
        exe = tool_path("challenge-authority")
        self.assertTrue(exe.exists(), f"{exe} is missing")
        with tempfile.TemporaryDirectory() as tmp:
            unit = Path(tmp) / UNIT.name
            unit.write_text(UNIT.read_text(encoding="utf-8").replace(
                "/usr/local/bin/challenge-authority", str(exe)))
            proc = subprocess.run([analyze, "verify", "--man=no", str(unit)],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stderr)


def main():
    print(f"deploy_files_test: repository {ROOT}, binaries in {bin_dir()}")
    program = unittest.main(exit=False, verbosity=2)
    result = program.result
    failed = len(result.failures) + len(result.errors)
    status = "FAILED" if failed or not result.wasSuccessful() else "PASSED"
    print(f"deploy_files_test: {status}: {result.testsRun} tests, "
          f"{len(result.failures)} failures, {len(result.errors)} errors, "
          f"{len(result.skipped)} skipped")
    sys.exit(0 if status == "PASSED" else 1)


if __name__ == "__main__":
    main()
