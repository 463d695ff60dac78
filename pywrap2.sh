#!/bin/sh
exec /work/main/.venv/bin/python /tmp/prof/traced2.py "$@" 2>>/tmp/prof/traced.err
