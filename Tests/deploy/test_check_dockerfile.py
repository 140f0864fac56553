#!/usr/bin/env python3
"""check_dockerfile.py must pass the real Dockerfile and fail each broken copy with the right rule.

Each case copies deploy/container/Dockerfile (and its .dockerignore) into a temporary directory,
breaks one thing, and runs the checker on it. Run: python3 -m unittest Tests/deploy/test_check_dockerfile.py
(or directly). hadolint is used when it is on PATH (--hadolint if-present).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CHECKER = os.path.join(HERE, "check_dockerfile.py")
DOCKERFILE = os.path.join(REPO, "deploy", "container", "Dockerfile")


def run(dockerfile: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, CHECKER, "--hadolint", "if-present", *extra, dockerfile],
                          capture_output=True, text=True, env=env)


class CheckDockerfileTests(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="check-dockerfile-")
        with open(DOCKERFILE, encoding="utf-8") as handle:
            self.original = handle.read()

    def tearDown(self) -> None:
        shutil.rmtree(self.tmp)

    def broken(self, old: str, new: str, *, keep_ignore: bool = True) -> str:
        self.assertIn(old, self.original, "the Dockerfile changed: update this test's mutation")
        path = os.path.join(self.tmp, "Dockerfile")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.original.replace(old, new, 1))
        if keep_ignore:
            shutil.copy(DOCKERFILE + ".dockerignore", path + ".dockerignore")
        return path

    def assert_fails(self, result: subprocess.CompletedProcess, rule: str, text: str = "") -> None:
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        lines = [l for l in result.stdout.splitlines() if l.startswith(f"FAIL [{rule}]")]
        self.assertTrue(lines, f"no FAIL [{rule}] line in:\n{result.stdout}")
        if text:
            self.assertTrue(any(text in l for l in lines), f"no FAIL [{rule}] line with {text!r} in:\n{result.stdout}")

    def test_real_dockerfile_passes(self) -> None:
        result = run(DOCKERFILE)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertRegex(result.stdout, r"\d+ passed, 0 failed")

    def test_latest_and_unversioned_tags(self) -> None:
        path = self.broken("FROM swift:6.3.1-bookworm AS build", "FROM swift:latest AS build")
        self.assert_fails(run(path), "pinned-from", "latest")
        path = self.broken("FROM debian:12.11-slim AS runtime", "FROM debian:bookworm-slim AS runtime")
        self.assert_fails(run(path), "pinned-from", "no digit")
        path = self.broken("FROM debian:12.11-slim AS runtime", "FROM debian AS runtime")
        self.assert_fails(run(path), "pinned-from", "no tag")

    def test_digest_pin_passes(self) -> None:
        path = self.broken("FROM debian:12.11-slim AS runtime", "FROM debian:12.11-slim@sha256:" + "a" * 64 + " AS runtime")
        result = run(path)
        self.assertNotIn("[pinned-from]", result.stdout)

    def test_user(self) -> None:
        self.assert_fails(run(self.broken("USER 10001:10001\n", "")), "user", "no USER")
        self.assert_fails(run(self.broken("USER 10001:10001", "USER 0")), "user", "root")
        self.assert_fails(run(self.broken("USER 10001:10001", "USER tenantedge")), "user", "numeric")
        self.assert_fails(run(self.broken("USER 10001:10001", "USER 10001:0")), "user", "group")

    def test_secret_copies(self) -> None:
        extra = "COPY edge-config/secrets/master.key /etc/tenantedge/master.key\n"
        self.assert_fails(run(self.broken("COPY Sources ./Sources", extra + "COPY Sources ./Sources")),
                          "no-secret-copy", "secrets")
        self.assert_fails(run(self.broken("COPY Sources ./Sources", "COPY origin.pem ./\nCOPY Sources ./Sources")),
                          "no-secret-copy", "*.pem")
        self.assert_fails(run(self.broken("COPY Sources ./Sources", "ADD node.token ./\nCOPY Sources ./Sources")),
                          "no-secret-copy", "token")

    def test_secret_env_and_arg(self) -> None:
        self.assert_fails(run(self.broken("ARG VERSION=0.15.0", "ARG VERSION=0.15.0\nARG REDIS_PASSWORD=hunter2")),
                          "no-secret-env", "REDIS_PASSWORD")
        self.assert_fails(run(self.broken("ENV TMPDIR=/var/lib/tenantedge", "ENV ADMIN_TOKEN=abc TMPDIR=/var/lib/tenantedge")),
                          "no-secret-env", "ADMIN_TOKEN")
        self.assert_fails(run(self.broken("ARG VERSION=0.15.0", "ARG VERSION=0.15.0\nENV MASTER_KEY deadbeef")),
                          "no-secret-env", "MASTER_KEY")
        # A name without a value is no secret in the image.
        result = run(self.broken("ARG VERSION=0.15.0", "ARG VERSION=0.15.0\nARG API_TOKEN"))
        self.assertNotIn("[no-secret-env]", result.stdout)

    def test_healthcheck(self) -> None:
        start = self.original.index("HEALTHCHECK --interval")
        end = self.original.index("\n", self.original.index("CMD [", start))
        self.assert_fails(run(self.broken(self.original[start:end + 1], "")), "healthcheck")
        self.assert_fails(run(self.broken(self.original[start:end + 1], "HEALTHCHECK NONE\n")), "healthcheck", "NONE")

    def test_version_label(self) -> None:
        old = '      org.opencontainers.image.version="${VERSION}" \\\n'
        self.assert_fails(run(self.broken(old, "")), "version-label")

    def test_toolchain_in_final_stage(self) -> None:
        old = "      libhiredis0.14 libssl3 libmaxminddb0 libcurl4 \\"
        self.assert_fails(run(self.broken(old, "      libhiredis0.14 libssl-dev libmaxminddb0 libcurl4 \\")),
                          "no-toolchain", "libssl-dev")
        self.assert_fails(run(self.broken(old, "      libhiredis0.14 libssl3 gcc libmaxminddb0 libcurl4 \\")),
                          "no-toolchain", "gcc")

    def test_apt_hygiene(self) -> None:
        old = ("      libstdc++6 libgcc-s1 zlib1g ca-certificates curl \\\n"
               " && rm -rf /var/lib/apt/lists/* \\\n")
        self.assert_fails(run(self.broken(old, "      libstdc++6 libgcc-s1 zlib1g ca-certificates curl \\\n")),
                          "apt-hygiene", "/var/lib/apt/lists")
        path = self.broken("apt-get install -y --no-install-recommends \\\n      libhiredis0.14",
                           "apt-get install -y \\\n      libhiredis0.14")
        self.assert_fails(run(path), "apt-hygiene", "--no-install-recommends")

    def test_context_without_ignore_file_leaks_secrets(self) -> None:
        # No Dockerfile.dockerignore beside the copy, and the repository has no .dockerignore:
        # edge-config/secrets (made by `make secrets`) would be sent to the builder.
        path = self.broken("COPY Sources ./Sources", "COPY Sources ./Sources", keep_ignore=False)
        context = os.path.join(self.tmp, "ctx")
        for rel in ("Package.swift", "Sources/main.swift", "Tests/x.swift", "edge-config/secrets/master.key"):
            os.makedirs(os.path.dirname(os.path.join(context, rel)), exist_ok=True)
            with open(os.path.join(context, rel), "w") as handle:
                handle.write("x\n")
        self.assert_fails(run(path, "--context", context), "context", "master.key")

    def test_copy_source_ignored_by_context(self) -> None:
        path = self.broken("COPY Sources ./Sources", "COPY bench ./bench\nCOPY Sources ./Sources")
        self.assert_fails(run(path, "--context", REPO), "context", "bench")

    def test_hadolint_required_but_missing(self) -> None:
        env = dict(os.environ, PATH="/nonexistent")
        result = subprocess.run([sys.executable, CHECKER, "--hadolint", "required", DOCKERFILE],
                                capture_output=True, text=True, env=env)
        self.assert_fails(result, "hadolint", "not on PATH")
        result = subprocess.run([sys.executable, CHECKER, "--hadolint", "if-present", DOCKERFILE],
                                capture_output=True, text=True, env=env)
        self.assertEqual(result.returncode, 0, result.stdout)

    @unittest.skipUnless(shutil.which("hadolint"), "hadolint is not installed")
    def test_hadolint_findings_fail(self) -> None:
        # Without the inline ignore, hadolint's DL3008 (unpinned apt versions) is reported.
        path = self.broken("# hadolint ignore=DL3008\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends \\\n      libhiredis-dev",
                           "RUN apt-get update \\\n && apt-get install -y --no-install-recommends \\\n      libhiredis-dev")
        self.assert_fails(run(path), "hadolint", "DL3008")


if __name__ == "__main__":
    unittest.main(verbosity=2)
