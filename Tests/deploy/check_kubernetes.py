#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/kubernetes (issue 16, item 2).

    python3 Tests/deploy/check_kubernetes.py [--root DIR] [--alerts FILE]
                                             [--write-configs DIR [--rewrite-paths-to DIR]]
                                             [--sync-prometheus-rule]

Renders deploy/kubernetes/base, every overlay under overlays/, and every overlay again with every
component under components/ added to its kustomization (as README.md tells operators to), with
`kubectl kustomize` (or `kustomize build`), parses the rendered YAML and checks:

  - every container image is pinned (a version tag, never `latest`, or a digest);
  - no privileged container, no added capability, no hostPath, hostNetwork, hostPID or hostIPC;
  - every container: readOnlyRootFilesystem, allowPrivilegeEscalation false, capabilities drop
    ALL, runAsNonRoot (pod or container), seccomp RuntimeDefault (pod or container), requests and
    limits for cpu and memory; service account tokens not mounted;
  - the edge node: readinessProbe GET /readyz and livenessProbe GET /healthz on the admin port of
    its config (named ports resolved; HTTPS when listen.admin_tls is set), container ports and
    Services matching listen.http / listen.admin; the origin: readiness and liveness probes on
    its listen port over HTTPS;
  - terminationGracePeriodSeconds >= preStop sleep + limits.drain_s (from the node config in its
    ConfigMap) + 5 s margin;
  - ConfigMaps hold no secret material (private key PEM blocks, URLs with passwords, long
    key-like values or values under token/password/secret/kek/key names);
  - Secret volumes are never mounted with subPath, and the repository renders no Secret;
  - every file the node and origin configs name is under a volume mount of their container, the
    state_dir on a writable one;
  - a NetworkPolicy admits the node's admin port only from named peers; a PodDisruptionBudget and
    a HorizontalPodAutoscaler exist for the edge nodes;
  - the origin's config lists every region overlay's nodes (ids <region>-<ordinal> and their pod
    URLs up to the autoscaler's maxReplicas); a node's Redis address is in its own namespace;
  - the region overlays' rendered objects differ only in the namespace, the region name and the
    Redis address (each normalised to a placeholder, with generated ConfigMap hash suffixes);
  - the PrometheusRule in components/prometheus-rules holds exactly the groups of
    deploy/prometheus/tenantedge-alerts.yml.

Prints one line per problem and exits 1 if there is any; exits 0 with a summary otherwise; exits 2
on a usage error or when kustomize cannot render.

--write-configs DIR writes the node and origin config of every overlay, taken from the rendered
ConfigMaps, to DIR as <overlay>-edge-node.yaml / <overlay>-edge-origin.yaml (with the pod ordinal
placeholder @ORDINAL@ replaced by 0, as pod 0 runs it), so `edge-node check-config` and
`edge-origin check-config` can run on them, plus secret-files.json: for each written config, every
file it names (key, path, kind of content, and the Secret and key that provide it).
--rewrite-paths-to DIR replaces /etc/tenantedge/ with DIR/ in the written configs (and in
secret-files.json), for a test that creates stand-in secret files there.

--sync-prometheus-rule rewrites components/prometheus-rules/prometheus-rule.yaml from the alert
rules file, then checks as usual.

Needs Python 3 and PyYAML (`import yaml`), and kubectl (or kustomize) on PATH.
"""

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.stderr.write("check_kubernetes.py needs PyYAML (python3 -m pip install pyyaml, or apt-get install python3-yaml)\n")
    sys.exit(2)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ROOT = os.path.join(REPO, "deploy", "kubernetes")
DEFAULT_ALERTS = os.path.join(REPO, "deploy", "prometheus", "tenantedge-alerts.yml")

ORDINAL = "@ORDINAL@"
GRACE_MARGIN_S = 5
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
NODE_DEFAULTS = {"listen.http": "127.0.0.1:8080", "listen.admin": "127.0.0.1:9090", "limits.drain_s": 10}

# Files the configs name, with what they hold (for secret-files.json): (dotted key, kind).
NODE_FILE_KEYS = [
    ("listen.admin_tls.cert_file", "tls-cert-pem"),
    ("listen.admin_tls.key_file", "tls-key-pem"),
    ("security.kek_file", "key-32-bytes"),
    ("security.master_key_file", "key-32-bytes"),
    ("security.config_public_key", "ed25519-public-pem"),
    ("security.admin_tokens_file", "admin-tokens-yaml"),
    ("origin.ca_file", "ca-cert-pem"),
    ("origin.token_file", "bearer-token"),
    ("geoip.database", "maxmind-db"),
    ("cache.redis.sentinel.password_file", "password"),
    ("cache.redis.sentinel.sentinel_password_file", "password"),
]
ORIGIN_FILE_KEYS = [
    ("tls.cert_file", "tls-cert-pem"),
    ("tls.key_file", "tls-key-pem"),
    ("tls.node_ca_file", "ca-cert-pem"),
    ("signing_key_file", "ed25519-private-pem"),
    ("tokens_file", "origin-tokens-yaml"),
    ("storage.postgres.ca_file", "ca-cert-pem"),
]

SECRETISH_NAME = re.compile(r"(token|passw|secret|kek|key|credential|private)", re.I)
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.I)
HEX_RUN = re.compile(r"\b[0-9a-fA-F]{32,}\b")
B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")
PINNED_TAG = re.compile(r"^v?\d+(\.\d+)*([-+.][0-9A-Za-z.-]+)?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


class Problems:
    def __init__(self):
        self.lines = []

    def add(self, where, message):
        line = f"{where}: {message}"
        if line not in self.lines:
            self.lines.append(line)


# ---------------------------------------------------------------------------------------------
# Rendering


def kustomize_command():
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    sys.stderr.write("check_kubernetes.py: neither kubectl nor kustomize is on PATH\n")
    sys.exit(2)


def render(path):
    command = kustomize_command() + [path]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(f"check_kubernetes.py: `{' '.join(command)}` failed:\n{result.stderr}")
        sys.exit(2)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def with_components(root, overlay, components, workdir):
    """A copy of the tree whose overlay lists every component, as README.md tells operators to."""
    tree = os.path.join(workdir, overlay)
    shutil.copytree(root, tree)
    path = os.path.join(tree, "overlays", overlay, "kustomization.yaml")
    with open(path) as handle:
        kustomization = yaml.safe_load(handle)
    kustomization["components"] = list(kustomization.get("components") or []) + [
        f"../../components/{name}" for name in components]
    with open(path, "w") as handle:
        yaml.safe_dump(kustomization, handle)
    return os.path.join(tree, "overlays", overlay)


# ---------------------------------------------------------------------------------------------
# Helpers over rendered objects


def ident(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def pod_spec(obj):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
    if kind in WORKLOAD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def pod_labels(obj):
    if obj.get("kind") == "Pod":
        return obj.get("metadata", {}).get("labels") or {}
    return ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}


def all_containers(spec):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            yield key, container


def argv(container):
    return [str(part) for part in (container.get("command") or []) + (container.get("args") or [])]


def program(container):
    """'edge-node' / 'edge-origin' when the container runs that daemon, else None."""
    words = argv(container)
    for name in ("edge-node", "edge-origin"):
        if any(os.path.basename(word) == name for word in words) and "run" in words:
            return name
    return None


def config_path(container):
    words = argv(container)
    for index, word in enumerate(words):
        if word == "--config" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--config="):
            return word.split("=", 1)[1]
    return None


def selects(selector, labels):
    if not selector:
        return False
    match = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in match.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def dotted(config, key):
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def port_of(address):
    try:
        return int(str(address).rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def container_port(container, port):
    """A probe's or Service's port (number or name) as a number, or None when a name is unknown."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for entry in container.get("ports") or []:
        if entry.get("name") == port:
            return entry.get("containerPort")
    return None


def mount_for(container, spec, path):
    """(volumeMount, volume) whose mountPath holds `path`, the deepest one."""
    best = None
    for mount in container.get("volumeMounts") or []:
        root = mount.get("mountPath", "").rstrip("/")
        if path == root or path.startswith(root + "/"):
            if best is None or len(root) > len(best.get("mountPath", "").rstrip("/")):
                best = mount
    if best is None:
        return None, None
    volume = next((v for v in spec.get("volumes") or [] if v.get("name") == best.get("name")), None)
    return best, volume


# ---------------------------------------------------------------------------------------------
# Config files inside ConfigMaps


def config_maps(docs):
    return {doc["metadata"]["name"]: doc for doc in docs if doc.get("kind") == "ConfigMap"}


def daemon_config(docs, obj, container):
    """(config dict with @ORDINAL@ -> 0, raw text, ConfigMap name, key) of a daemon container.

    The config is a ConfigMap key mounted where --config points, or a file an init container
    renders into an emptyDir from a ConfigMap it mounts (the edge-node StatefulSet's render-config).
    """
    spec = pod_spec(obj)
    path = config_path(container)
    if not path:
        return None
    maps = config_maps(docs)
    mount, volume = mount_for(container, spec, path)
    if volume is None:
        return None
    key = os.path.relpath(path, mount["mountPath"])
    candidates = []
    if "configMap" in volume:
        candidates.append((volume["configMap"].get("name"), volume["configMap"].get("items"), key))
    elif "emptyDir" in volume:
        for init in spec.get("initContainers") or []:
            if not any(m.get("name") == volume["name"] for m in init.get("volumeMounts") or []):
                continue
            for init_mount in init.get("volumeMounts") or []:
                init_volume = next((v for v in spec.get("volumes") or [] if v.get("name") == init_mount.get("name")), {})
                if "configMap" in init_volume:
                    candidates.append((init_volume["configMap"].get("name"), init_volume["configMap"].get("items"), key))
    for name, items, wanted in candidates:
        config_map = maps.get(name)
        if not config_map:
            continue
        data_key = wanted
        for item in items or []:
            if item.get("path") == wanted:
                data_key = item.get("key")
        text = (config_map.get("data") or {}).get(data_key)
        if text is None:
            continue
        try:
            parsed = yaml.safe_load(text.replace(ORDINAL, "0")) or {}
        except yaml.YAMLError as error:
            return {"_error": str(error)}, text, name, data_key
        return parsed, text, name, data_key
    return None


def file_paths(config, keys):
    found = []
    for key, kind in keys:
        value = dotted(config, key)
        if isinstance(value, str) and value:
            found.append((key, value, kind))
    return found


def origin_file_paths(config):
    found = file_paths(config, ORIGIN_FILE_KEYS)
    for index, region in enumerate(config.get("regions") or []):
        if isinstance(region.get("kek_file"), str):
            found.append((f"regions[{index}].kek_file", region["kek_file"], "key-32-bytes"))
        for node_index, node in enumerate(region.get("nodes") or []):
            if isinstance(node.get("admin_token_file"), str):
                found.append((f"regions[{index}].nodes[{node_index}].admin_token_file", node["admin_token_file"], "bearer-token"))
    return found


# ---------------------------------------------------------------------------------------------
# Checks on one render


def check_pods(target, docs, problems):
    service_accounts = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ServiceAccount"}
    for obj in docs:
        if obj.get("kind") == "Secret" and (obj.get("data") or obj.get("stringData")):
            problems.add(f"{target}: {ident(obj)}", "the repository renders a Secret with data; Secrets are made by the operator (README.md)")
        spec = pod_spec(obj)
        if spec is None:
            continue
        where = f"{target}: {ident(obj)}"
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                problems.add(where, f"{flag} is set")
        for volume in spec.get("volumes") or []:
            if "hostPath" in volume:
                problems.add(where, f"volume {volume.get('name')} is a hostPath")
        pod_security = spec.get("securityContext") or {}
        account = service_accounts.get(spec.get("serviceAccountName") or "default", {})
        if spec.get("automountServiceAccountToken") is not False and account.get("automountServiceAccountToken") is not False:
            problems.add(where, "automountServiceAccountToken is not false (no pod here talks to the Kubernetes API)")
        secret_volumes = {v["name"] for v in spec.get("volumes") or [] if "secret" in v}
        for volume in spec.get("volumes") or []:
            for source in (volume.get("projected") or {}).get("sources") or []:
                if "secret" in source:
                    secret_volumes.add(volume["name"])
        for section, container in all_containers(spec):
            cwhere = f"{where}: {section[:-1]} {container.get('name')}"
            check_image(cwhere, container.get("image"), problems)
            security = container.get("securityContext") or {}
            if security.get("privileged"):
                problems.add(cwhere, "privileged: true")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.add(cwhere, "readOnlyRootFilesystem is not true")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.add(cwhere, "allowPrivilegeEscalation is not false")
            capabilities = security.get("capabilities") or {}
            if "ALL" not in [str(c).upper() for c in capabilities.get("drop") or []]:
                problems.add(cwhere, "capabilities do not drop ALL")
            if capabilities.get("add"):
                problems.add(cwhere, f"capabilities add {capabilities['add']}")
            non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
            if non_root is not True:
                problems.add(cwhere, "runAsNonRoot is not true (pod or container)")
            if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
                problems.add(cwhere, "runs as uid 0")
            seccomp = (security.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault" and seccomp != "Localhost":
                problems.add(cwhere, f"seccompProfile is {seccomp or 'unset'}, not RuntimeDefault")
            if section != "ephemeralContainers":
                resources = container.get("resources") or {}
                for part in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if resource not in (resources.get(part) or {}):
                            problems.add(cwhere, f"no {part}.{resource}")
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") in secret_volumes and (mount.get("subPath") or mount.get("subPathExpr")):
                    problems.add(cwhere, f"Secret volume {mount['name']} is mounted with subPath (rotation would never reach the pod)")


def check_image(where, image, problems):
    if not image:
        problems.add(where, "no image")
        return
    if DIGEST.search(image):
        return
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        problems.add(where, f"image {image} has no tag (means latest)")
        return
    tag = name.rsplit(":", 1)[1]
    if tag == "latest" or not PINNED_TAG.match(tag):
        problems.add(where, f"image {image} is not pinned to a version or digest")


def check_config_maps(target, docs, problems):
    for obj in docs:
        if obj.get("kind") != "ConfigMap":
            continue
        where = f"{target}: {ident(obj)}"
        for key, value in (obj.get("data") or {}).items():
            text = str(value)
            if re.search(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----", text):
                problems.add(where, f"data.{key} holds a private key")
            if URL_PASSWORD.search(text):
                problems.add(where, f"data.{key} holds a URL with a password")
            stripped = text.strip()
            if SECRETISH_NAME.search(key) and "\n" not in stripped and len(stripped) >= 16:
                problems.add(where, f"data.{key} looks like a secret file")
            try:
                parsed = yaml.safe_load(text)
            except yaml.YAMLError:
                parsed = None
            for path, scalar in walk_scalars(parsed, ""):
                if not isinstance(scalar, str):
                    continue
                leaf = path.rsplit(".", 1)[-1]
                looks_like_path = scalar.startswith(("/", "./", "../"))
                if SECRETISH_NAME.search(leaf) and not looks_like_path and len(scalar) >= 16:
                    problems.add(where, f"data.{key}: {path} holds a value that looks like a secret")
                elif not looks_like_path and "://" not in scalar and (HEX_RUN.search(scalar) or B64_RUN.search(scalar)):
                    problems.add(where, f"data.{key}: {path} holds a long key-like value")
        for key in obj.get("binaryData") or {}:
            problems.add(where, f"binaryData.{key}: binary data in a ConfigMap")


def walk_scalars(value, path):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from walk_scalars(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from walk_scalars(inner, f"{path}[{index}]")
    else:
        yield path, value


def daemons(docs, name):
    for obj in docs:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for container in spec.get("containers") or []:
            if program(container) == name:
                yield obj, spec, container


def check_files_mounted(where, spec, container, files, problems):
    for key, path, _kind in files:
        mount, volume = mount_for(container, spec, path)
        if mount is None:
            problems.add(where, f"{key} {path} is under no volume mount of the container")
        elif volume is None:
            problems.add(where, f"{key} {path}: the mount {mount.get('name')} names no volume")
        elif "secret" in volume and not volume["secret"].get("items"):
            pass
        elif "secret" in volume:
            wanted = os.path.relpath(path, mount["mountPath"])
            if not any(item.get("path") == wanted for item in volume["secret"]["items"]):
                problems.add(where, f"{key} {path}: Secret {volume['secret'].get('secretName')} does not project {wanted}")


def check_state_dir(where, spec, container, state_dir, problems):
    if not state_dir:
        return
    mount, volume = mount_for(container, spec, state_dir)
    if mount is None or mount.get("readOnly"):
        problems.add(where, f"state_dir {state_dir} is not on a writable volume (the root filesystem is read-only)")
    elif volume is not None and not ("persistentVolumeClaim" in volume or "emptyDir" in volume or volume.get("ephemeral")):
        problems.add(where, f"state_dir {state_dir} is on volume {volume.get('name')}, which is neither a claim nor an emptyDir")


def claim_template(obj, name):
    for template in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:
        if template.get("metadata", {}).get("name") == name:
            return template
    return None


def pre_stop_seconds(container):
    handler = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in handler:
        return int((handler["sleep"] or {}).get("seconds", 0))
    words = (handler.get("exec") or {}).get("command") or []
    text = " ".join(str(w) for w in words)
    match = re.search(r"(?:^|[\s/])sleep\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def check_probe(where, container, probe_name, probe, path, port, https, problems):
    if not probe:
        problems.add(where, f"no {probe_name}")
        return
    get = probe.get("httpGet")
    if not get:
        problems.add(where, f"{probe_name} is not an httpGet")
        return
    if path and get.get("path") != path:
        problems.add(where, f"{probe_name} asks {get.get('path')}, not {path}")
    resolved = container_port(container, get.get("port"))
    if resolved is None:
        problems.add(where, f"{probe_name} port {get.get('port')} names no container port")
    elif port is not None and resolved != port:
        problems.add(where, f"{probe_name} is on port {resolved}, not the admin/listen port {port}")
    scheme = (get.get("scheme") or "HTTP").upper()
    if https and scheme != "HTTPS":
        problems.add(where, f"{probe_name} uses {scheme} but the listener speaks TLS")
    if not https and scheme == "HTTPS":
        problems.add(where, f"{probe_name} uses HTTPS but the listener is plain HTTP")


def services_for(docs, labels):
    return [d for d in docs if d.get("kind") == "Service" and selects({"matchLabels": (d.get("spec") or {}).get("selector") or {}}, labels)]


def check_node(target, docs, problems, node_info):
    nodes = list(daemons(docs, "edge-node"))
    for obj, spec, container in nodes:
        where = f"{target}: {ident(obj)}"
        found = daemon_config(docs, obj, container)
        if found is None:
            problems.add(where, "cannot find the node config (--config) in a ConfigMap the pod mounts")
            continue
        config, _text, _cm, _key = found
        if "_error" in config:
            problems.add(where, f"the node config is not YAML: {config['_error']}")
            continue
        admin_port = port_of(dotted(config, "listen.admin") or NODE_DEFAULTS["listen.admin"])
        http_port = port_of(dotted(config, "listen.http") or NODE_DEFAULTS["listen.http"])
        https = bool(dotted(config, "listen.admin_tls"))
        for address_key in ("listen.http", "listen.admin"):
            address = str(dotted(config, address_key) or NODE_DEFAULTS[address_key])
            if address.startswith(("127.", "localhost", "[::1]")):
                problems.add(where, f"{address_key} {address} is loopback: nothing outside the pod reaches it")
        ports = {p.get("containerPort") for p in container.get("ports") or []}
        for number, name in ((http_port, "listen.http"), (admin_port, "listen.admin")):
            if number not in ports:
                problems.add(where, f"no containerPort {number} ({name})")
        check_probe(where, container, "readinessProbe", container.get("readinessProbe"), "/readyz", admin_port, https, problems)
        check_probe(where, container, "livenessProbe", container.get("livenessProbe"), "/healthz", admin_port, https, problems)
        drain = dotted(config, "limits.drain_s")
        drain = NODE_DEFAULTS["limits.drain_s"] if drain is None else int(drain)
        pre_stop = pre_stop_seconds(container)
        if pre_stop == 0:
            problems.add(where, "no preStop sleep: the node would stop accepting before the endpoint is removed")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace < pre_stop + drain + GRACE_MARGIN_S:
            problems.add(where, f"terminationGracePeriodSeconds {grace} < preStop {pre_stop} + drain_s {drain} + margin {GRACE_MARGIN_S}")
        files = file_paths(config, NODE_FILE_KEYS)
        check_files_mounted(where, spec, container, files, problems)
        state_dir = config.get("state_dir", "./state")
        mount, volume = mount_for(container, spec, state_dir)
        if mount is not None and volume is None and obj.get("kind") == "StatefulSet" and claim_template(obj, mount.get("name")):
            if mount.get("readOnly"):  # a volumeClaimTemplate
                problems.add(where, f"state_dir {state_dir} is mounted read-only")
        else:
            check_state_dir(where, spec, container, state_dir, problems)
        labels = pod_labels(obj)
        services = services_for(docs, labels)
        for number, name in ((http_port, "tenant traffic"), (admin_port, "admin")):
            if not any(container_port(container, p.get("targetPort", p.get("port"))) == number
                       for s in services for p in (s.get("spec") or {}).get("ports") or []):
                problems.add(where, f"no Service reaches the {name} port {number}")
        redis_url = dotted(config, "cache.redis.url")
        namespace = obj.get("metadata", {}).get("namespace")
        if isinstance(redis_url, str) and namespace:
            match = re.search(r"@?([A-Za-z0-9.-]+)(?::\d+)?(?:/|$)", redis_url.split("://", 1)[-1].split("@")[-1])
            host = match.group(1) if match else ""
            svc = re.search(r"\.([a-z0-9-]+)\.svc(\.|$)", host)
            if svc and svc.group(1) != namespace:
                problems.add(where, f"cache.redis.url points at namespace {svc.group(1)}, not this region's {namespace} (residency: data would be stored in another region's Redis)")
        node_info.append({"target": target, "obj": obj, "spec": spec, "container": container, "config": config,
                          "admin_port": admin_port, "https": https, "labels": labels})
        check_node_neighbours(target, docs, obj, labels, admin_port, http_port, container, problems)
    return nodes


def check_node_neighbours(target, docs, obj, labels, admin_port, http_port, container, problems):
    where = f"{target}: {ident(obj)}"
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy" and selects((d.get("spec") or {}).get("podSelector") or {}, labels)]
    if not policies:
        problems.add(where, "no NetworkPolicy selects the edge nodes (the admin port must be limited)")
    else:
        admin_open, admin_named, traffic_open = False, False, False
        for policy in policies:
            spec = policy.get("spec") or {}
            if "Ingress" not in (spec.get("policyTypes") or ["Ingress"]):
                continue
            for rule in spec.get("ingress") or []:
                rule_ports = [container_port(container, p.get("port")) for p in rule.get("ports") or []]
                covers = lambda number: not rule.get("ports") or number in rule_ports
                peers = rule.get("from")
                everyone = not peers or any(
                    peer == {} or (peer.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0")
                    or (peer.get("namespaceSelector") == {} and not peer.get("podSelector"))
                    for peer in peers)
                if covers(admin_port):
                    if everyone:
                        admin_open = True
                    else:
                        admin_named = True
                if covers(http_port):
                    traffic_open = True
        if admin_open:
            problems.add(where, f"a NetworkPolicy admits the admin port {admin_port} from everywhere")
        if not admin_named:
            problems.add(where, f"no NetworkPolicy rule admits the admin port {admin_port} from the origin or monitoring")
        if not traffic_open:
            problems.add(where, f"no NetworkPolicy rule admits tenant traffic on port {http_port}")
    name, kind = obj["metadata"]["name"], obj["kind"]
    if not any(d.get("kind") == "PodDisruptionBudget" and selects((d.get("spec") or {}).get("selector"), labels) for d in docs):
        problems.add(where, "no PodDisruptionBudget selects the edge nodes")
    hpas = [d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"
            and ((d.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name
            and ((d.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == kind]
    if not hpas:
        problems.add(where, "no HorizontalPodAutoscaler scales the edge nodes")
    for hpa in hpas:
        if not hpa.get("apiVersion", "").startswith("autoscaling/v2"):
            problems.add(f"{target}: {ident(hpa)}", "not autoscaling/v2")
        if not any(((m.get("resource") or {}).get("name") == "cpu") for m in (hpa.get("spec") or {}).get("metrics") or []):
            problems.add(f"{target}: {ident(hpa)}", "does not scale on cpu")


def check_origin(target, docs, problems, origin_info):
    for obj, spec, container in daemons(docs, "edge-origin"):
        where = f"{target}: {ident(obj)}"
        found = daemon_config(docs, obj, container)
        if found is None:
            problems.add(where, "cannot find the origin config (--config) in a ConfigMap the pod mounts")
            continue
        config = found[0]
        if "_error" in config:
            problems.add(where, f"the origin config is not YAML: {config['_error']}")
            continue
        listen = port_of(config.get("listen", "127.0.0.1:8443"))
        if str(config.get("listen", "127.0.0.1:8443")).startswith("127."):
            problems.add(where, "listen is loopback: nothing outside the pod reaches it")
        if listen not in {p.get("containerPort") for p in container.get("ports") or []}:
            problems.add(where, f"no containerPort {listen} (listen)")
        for name in ("readinessProbe", "livenessProbe"):
            check_probe(where, container, name, container.get(name), "/healthz", listen, True, problems)
        files = origin_file_paths(config)
        check_files_mounted(where, spec, container, files, problems)
        check_state_dir(where, spec, container, config.get("state_dir", "./origin-state"), problems)
        embedded = "postgres" not in (config.get("storage") or {})
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        if embedded and (replicas != 1 or obj.get("kind") != "Deployment"
                         or ((obj.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate"):
            problems.add(where, "the embedded SQLite store needs one replica with strategy Recreate (or set storage.postgres)")
        labels = pod_labels(obj)
        services = services_for(docs, labels)
        if not any(container_port(container, p.get("targetPort", p.get("port"))) == listen
                   for s in services for p in (s.get("spec") or {}).get("ports") or []):
            problems.add(where, f"no Service reaches the origin's port {listen}")
        origin_info.append({"target": target, "obj": obj, "container": container, "config": config,
                            "services": services, "listen": listen})


# ---------------------------------------------------------------------------------------------
# Across renders


def check_fleet(node_info, origin_info, docs_by_target, problems):
    """The origin overlay knows every region overlay's nodes; nodes follow that origin."""
    origins = [o for o in origin_info if o["target"].startswith("overlays/") and "+" not in o["target"]]
    regions = [n for n in node_info if n["target"].startswith("overlays/") and "+" not in n["target"]]
    if not origins or not regions:
        return
    origin = origins[0]
    listed = {r.get("name"): r for r in origin["config"].get("regions") or []}
    origin_namespace = origin["obj"]["metadata"].get("namespace")
    for node in regions:
        config, obj = node["config"], node["obj"]
        region = dotted(config, "node.region")
        where = f"{node['target']}: {ident(obj)}"
        entry = listed.get(region)
        if entry is None:
            problems.add(where, f"region {region} is not in {origin['target']}'s origin config")
            continue
        hpa = next((d for d in docs_by_target[node["target"]] if d.get("kind") == "HorizontalPodAutoscaler"
                    and d["spec"]["scaleTargetRef"].get("name") == obj["metadata"]["name"]), None)
        most = (hpa or {}).get("spec", {}).get("maxReplicas") or (obj.get("spec") or {}).get("replicas", 1)
        namespace = obj["metadata"].get("namespace")
        service = (obj.get("spec") or {}).get("serviceName")
        id_template = dotted(node["config"], "node.id")
        by_id = {n.get("id"): n for n in entry.get("nodes") or []}
        scheme = "https" if node["https"] else "http"
        for ordinal in range(most):
            raw_id = raw_node_id(docs_by_target[node["target"]], node)
            node_id = (raw_id or str(id_template)).replace(ORDINAL, str(ordinal))
            listed_node = by_id.get(node_id)
            if listed_node is None:
                problems.add(where, f"pod {ordinal} (node {node_id}; maxReplicas {most}) is not among the origin's nodes of {region}")
                continue
            if obj.get("kind") == "StatefulSet" and service:
                pod = f"{obj['metadata']['name']}-{ordinal}"
                expected = {f"{scheme}://{pod}.{service}.{namespace}.svc.cluster.local:{node['admin_port']}",
                            f"{scheme}://{pod}.{service}.{namespace}.svc:{node['admin_port']}"}
                if listed_node.get("admin_url") not in expected:
                    problems.add(where, f"the origin pushes node {node_id} to {listed_node.get('admin_url')}, not {sorted(expected)[0]}")
        url = dotted(config, "origin.url") or ""
        match = re.match(r"https://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?(/|$)", url)
        if match:
            name, ns, port = match.group(1), match.group(2), int(match.group(3) or 443)
            if ns != origin_namespace:
                problems.add(where, f"origin.url names namespace {ns}, the origin overlay runs in {origin_namespace}")
            reached = [p for s in origin["services"] if s["metadata"]["name"] == name
                       for p in (s.get("spec") or {}).get("ports") or []
                       if p.get("port") == port and container_port(origin["container"], p.get("targetPort", port)) == origin["listen"]]
            if not reached:
                problems.add(where, f"origin.url {url}: no Service {name} port {port} of the origin reaches its listener")
        for policy in (d for d in docs_by_target[node["target"]] if d.get("kind") == "NetworkPolicy"):
            for rule in (policy.get("spec") or {}).get("ingress") or []:
                for peer in rule.get("from") or []:
                    wanted = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                    pods = (peer.get("podSelector") or {}).get("matchLabels") or {}
                    if wanted and pods.get("app.kubernetes.io/name") == "edge-origin" and wanted != origin_namespace:
                        problems.add(f"{node['target']}: {ident(policy)}", f"admits the origin from namespace {wanted}, the origin runs in {origin_namespace}")


def raw_node_id(docs, node):
    found = daemon_config(docs, node["obj"], node["container"])
    if not found:
        return None
    try:
        return str((yaml.safe_load(found[1]) or {}).get("node", {}).get("id"))
    except yaml.YAMLError:
        return None


def overlay_values(docs, node_info_for_target):
    namespaces = sorted({d["metadata"].get("namespace") for d in docs if d.get("metadata", {}).get("namespace")})
    values = {}
    if len(namespaces) == 1:
        values["<NAMESPACE>"] = namespaces[0]
    if node_info_for_target:
        config = node_info_for_target[0]["config"]
        if dotted(config, "node.region"):
            values["<REGION>"] = str(dotted(config, "node.region"))
        redis = dotted(config, "cache.redis.url")
        if redis:
            values["<REDIS_URL>"] = str(redis)
        sentinels = dotted(config, "cache.redis.sentinel.addresses")
        for index, address in enumerate(sentinels or []):
            values[f"<REDIS_SENTINEL_{index}>"] = str(address)
    return values


def normalise(docs, values):
    generated = {}
    for doc in docs:
        if doc.get("kind") in ("ConfigMap", "Secret"):
            name = doc["metadata"]["name"]
            match = re.match(r"^(.*)-[a-z0-9]{10}$", name)
            if match:
                generated[name] = match.group(1) + "-<HASH>"
    replacements = sorted(values.items(), key=lambda item: -len(item[1]))

    def fix(value):
        if isinstance(value, dict):
            return {fix(k): fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str):
            if value in generated:
                return generated[value]
            for placeholder, actual in replacements:
                value = value.replace(actual, placeholder)
        return value

    fixed = [fix(copy.deepcopy(d)) for d in docs]
    return {ident(d): d for d in fixed}


def differences(a, b, path=""):
    if type(a) is not type(b):
        yield path or "(root)", f"{short(a)} != {short(b)}"
        return
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a:
                yield f"{path}.{key}".lstrip("."), "only in the second"
            elif key not in b:
                yield f"{path}.{key}".lstrip("."), "only in the first"
            else:
                yield from differences(a[key], b[key], f"{path}.{key}".lstrip("."))
    elif isinstance(a, list):
        if len(a) != len(b):
            yield path, f"{len(a)} items != {len(b)} items"
        for index, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{index}]")
    elif a != b:
        if isinstance(a, str) and "\n" in a:
            for number, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), 1):
                if x != y:
                    yield path, f"line {number}: {x.strip()!r} != {y.strip()!r}"
                    return
            yield path, "different number of lines"
        else:
            yield path, f"{short(a)} != {short(b)}"


def short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_overlays_alike(region_targets, docs_by_target, node_info, problems):
    if len(region_targets) < 2:
        return
    normalised = {}
    for target in region_targets:
        info = [n for n in node_info if n["target"] == target]
        values = overlay_values(docs_by_target[target], info)
        missing = {"<NAMESPACE>", "<REGION>"} - set(values)
        if missing:
            problems.add(target, f"cannot tell the overlay's {', '.join(sorted(missing))}")
        normalised[target] = normalise(docs_by_target[target], values)
    first = region_targets[0]
    for other in region_targets[1:]:
        a, b = normalised[first], normalised[other]
        for key in sorted(set(a) | set(b)):
            if key not in b:
                problems.add(f"{first} vs {other}", f"{key} is only in {first}")
            elif key not in a:
                problems.add(f"{first} vs {other}", f"{key} is only in {other}")
            else:
                for path, what in differences(a[key], b[key]):
                    problems.add(f"{first} vs {other}",
                                 f"{key} {path} differs beyond namespace/region/Redis address: {what}")


def check_region_labels(target, docs, node_info, problems):
    """The region label the ServiceMonitor turns into `region` equals the node's region."""
    for node in (n for n in node_info if n["target"] == target):
        region = dotted(node["config"], "node.region")
        for doc in docs:
            label = (doc.get("metadata", {}).get("labels") or {}).get("tenantedge.io/region")
            if label is not None and label != region:
                problems.add(f"{target}: {ident(doc)}", f"label tenantedge.io/region={label}, but the node's region is {region}")


# ---------------------------------------------------------------------------------------------
# The PrometheusRule copy


RULE_HEADER = """# Generated from deploy/prometheus/tenantedge-alerts.yml by
#   python3 Tests/deploy/check_kubernetes.py --sync-prometheus-rule
# (kustomize cannot read a file outside its root); the checker fails when the two differ.
# Edit the rules there, not here. Include this component once for the fleet (overlays/origin, or
# the namespace your Prometheus reads rules from): the rules add up over every region's nodes.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: tenantedge-alerts
  labels:
    app.kubernetes.io/part-of: tenantedge
spec:
"""


def rule_file(root):
    return os.path.join(root, "components", "prometheus-rules", "prometheus-rule.yaml")


def sync_prometheus_rule(root, alerts):
    with open(alerts) as handle:
        lines = handle.read().splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("groups:"))
    body = "\n".join(("  " + line) if line.strip() else "" for line in lines[start:])
    with open(rule_file(root), "w") as handle:
        handle.write(RULE_HEADER + body + "\n")


def check_prometheus_rule(root, alerts, problems):
    path = rule_file(root)
    if not os.path.exists(path):
        return
    with open(alerts) as handle:
        wanted = (yaml.safe_load(handle) or {}).get("groups")
    with open(path) as handle:
        rule = yaml.safe_load(handle) or {}
    if rule.get("kind") != "PrometheusRule":
        problems.add(os.path.relpath(path, root), "is not a PrometheusRule")
    if (rule.get("spec") or {}).get("groups") != wanted:
        problems.add(os.path.relpath(path, root),
                     f"spec.groups differ from {os.path.relpath(alerts, REPO)} (run with --sync-prometheus-rule)")


# ---------------------------------------------------------------------------------------------
# --write-configs


def write_configs(directory, rewrite, docs_by_target):
    os.makedirs(directory, exist_ok=True)
    manifest = {}
    for target, docs in docs_by_target.items():
        if not target.startswith("overlays/") or "+" in target:
            continue
        overlay = target.split("/", 1)[1]
        for name in ("edge-node", "edge-origin"):
            for obj, spec, container in daemons(docs, name):
                found = daemon_config(docs, obj, container)
                if not found:
                    continue
                text = found[1].replace(ORDINAL, "0")
                config = yaml.safe_load(text) or {}
                files = file_paths(config, NODE_FILE_KEYS) if name == "edge-node" else origin_file_paths(config)
                if rewrite:
                    prefix = os.path.abspath(rewrite).rstrip("/") + "/"
                    text = text.replace("/etc/tenantedge/", prefix)
                file_name = f"{overlay}-{name}.yaml"
                with open(os.path.join(directory, file_name), "w") as handle:
                    handle.write(text)
                entries = []
                for key, path, kind in files:
                    mount, volume = mount_for(container, spec, path)
                    entry = {"key": key, "path": path, "kind": kind}
                    if volume is not None and "secret" in volume:
                        entry["secret"] = volume["secret"].get("secretName")
                        entry["secret_key"] = os.path.relpath(path, mount["mountPath"])
                    if rewrite:
                        entry["path"] = path.replace("/etc/tenantedge/", os.path.abspath(rewrite).rstrip("/") + "/")
                    entries.append(entry)
                manifest[file_name] = entries
    with open(os.path.join(directory, "secret-files.json"), "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return sorted(manifest)


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=DEFAULT_ROOT, help="the kustomize tree (default: deploy/kubernetes)")
    parser.add_argument("--alerts", default=DEFAULT_ALERTS, help="the Prometheus alert rules file")
    parser.add_argument("--write-configs", metavar="DIR")
    parser.add_argument("--rewrite-paths-to", metavar="DIR")
    parser.add_argument("--sync-prometheus-rule", action="store_true")
    args = parser.parse_args()
    if args.rewrite_paths_to and not args.write_configs:
        parser.error("--rewrite-paths-to needs --write-configs")
    root = os.path.abspath(args.root)
    if not os.path.isfile(os.path.join(root, "base", "kustomization.yaml")):
        parser.error(f"{root} has no base/kustomization.yaml")
    if args.sync_prometheus_rule:
        sync_prometheus_rule(root, args.alerts)

    overlays = sorted(d for d in os.listdir(os.path.join(root, "overlays"))
                      if os.path.isfile(os.path.join(root, "overlays", d, "kustomization.yaml")))
    components_dir = os.path.join(root, "components")
    components = sorted(d for d in os.listdir(components_dir)
                        if os.path.isfile(os.path.join(components_dir, d, "kustomization.yaml"))) if os.path.isdir(components_dir) else []

    problems = Problems()
    docs_by_target = {"base": render(os.path.join(root, "base"))}
    for overlay in overlays:
        docs_by_target[f"overlays/{overlay}"] = render(os.path.join(root, "overlays", overlay))
    with tempfile.TemporaryDirectory(prefix="check-kubernetes-") as workdir:
        if components:
            for overlay in overlays:
                path = with_components(root, overlay, components, workdir)
                docs_by_target[f"overlays/{overlay}+components"] = render(path)

    node_info, origin_info = [], []
    region_targets = []
    for target, docs in docs_by_target.items():
        check_pods(target, docs, problems)
        check_config_maps(target, docs, problems)
        if check_node(target, docs, problems, node_info) and target.startswith("overlays/") and "+" not in target:
            region_targets.append(target)
        check_origin(target, docs, problems, origin_info)
        check_region_labels(target, docs, node_info, problems)
        if target.startswith("overlays/"):
            overlay_namespace = {d["metadata"].get("namespace") for d in docs if d.get("kind") not in (
                "Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass")}
            if len(overlay_namespace) != 1 or None in overlay_namespace:
                problems.add(target, f"objects are not all in one namespace: {sorted(map(str, overlay_namespace))}")
        if "+components" in target and not any(d.get("kind") == "ServiceMonitor" for d in docs) and "service-monitor" in components:
            problems.add(target, "the service-monitor component renders no ServiceMonitor")
    for target in ("base",) + tuple(region_targets):
        if not any(n["target"] == target for n in node_info):
            problems.add(target, "renders no edge-node workload")
    if not any(o["target"] == "base" for o in origin_info):
        problems.add("base", "renders no edge-origin workload")
    check_fleet(node_info, origin_info, docs_by_target, problems)
    check_overlays_alike(region_targets, docs_by_target, node_info, problems)
    check_prometheus_rule(root, args.alerts, problems)

    written = []
    if args.write_configs:
        written = write_configs(args.write_configs, args.rewrite_paths_to, docs_by_target)

    if problems.lines:
        for line in problems.lines:
            print(line)
        print(f"{len(problems.lines)} problem(s)")
        return 1
    print(f"ok: {len(docs_by_target)} renders ({', '.join(docs_by_target)}), "
          f"{sum(len(d) for d in docs_by_target.values())} objects; region overlays {', '.join(region_targets)} "
          f"differ only in namespace, region and Redis address")
    if written:
        print(f"wrote {', '.join(written)} and secret-files.json to {args.write_configs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
