#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a test binary, and so every p2sd and p2s-fetch it starts, under a
# 256 KiB stack: nothing in p2s may need more (no recursion per chunk, no
# large buffers on the stack).
ulimit -s 256 || exit 1
exec "$@"
