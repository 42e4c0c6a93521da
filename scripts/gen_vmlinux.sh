#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates bpf/vmlinux/<arch>/vmlinux.h from the running kernel's BTF.
# The committed header is what CO-RE compiles against; relocations adapt it to other kernels.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
arch=$(uname -m); case "$arch" in x86_64) arch=x86;; aarch64) arch=arm64;; esac
out="$here/bpf/vmlinux/$arch/vmlinux.h"
mkdir -p "$(dirname "$out")"
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -l < "$out") lines, from $(uname -r))"
