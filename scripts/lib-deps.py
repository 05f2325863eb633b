#!/usr/bin/env python3
"""lib-deps.py SRCDIR BUILDDIR - check the library's module graph in
docs/design.md ("Modules and dependencies") against the objects built.

For every BUILDDIR/src/*.o, `nm` tells which symbols it defines and which
it needs; a module depends on the module that defines a symbol it needs
(a function it calls, or a table it takes the address of). The diagram
is the fenced block that starts with "splice.c": each entry line names
files ("name.c", comma-separated), then the modules they may depend on
(continuation lines are indented; parentheses are comments). A module may
depend only on modules named on lines below its own, so the graph has no
cycle, and every module the code depends on must be named on its line.
Prints each disagreement and exits 1; prints nothing and exits 0 when
code and diagram agree.
"""
import glob
import os
import re
import subprocess
import sys


def diagram(path):
    """[(line number, [modules], set of listed dependencies)]."""
    text = open(path).read()
    start = text.index("```\nsplice.c ")
    block = text[start + 4:text.index("```", start + 4)]
    entries = []
    for line in block.splitlines():
        line = re.sub(r"\(.*?\)", "", line)
        if not line.strip():
            continue
        if line[0] != " ":
            # The files are the leading "name.c" words; the rest lists
            # what they may depend on.
            words = line.replace(",", " ").split()
            mods = []
            while words and words[0].endswith(".c"):
                mods.append(words.pop(0)[:-2])
            right = ", ".join(words)
            entries.append((len(entries), mods, set()))
        else:
            right = line
        for d in right.split(","):
            d = d.strip()
            if d:
                entries[-1][2].add(d[:-2] if d.endswith(".c") else d)
    return entries


def code_deps(build):
    defs, needs = {}, {}
    for o in sorted(glob.glob(os.path.join(build, "src", "*.o"))):
        mod = os.path.basename(o)[:-2]
        out = subprocess.run(["nm", o], capture_output=True, text=True,
                             check=True).stdout
        needs[mod] = set()
        for line in out.splitlines():
            f = line.split()
            if len(f) == 2 and f[0] == "U":
                needs[mod].add(f[1])
            elif len(f) == 3 and f[1] in "TDRBV":
                defs[f[2]] = mod
    return {m: {defs[s] for s in n if s in defs and defs[s] != m}
            for m, n in needs.items()}


def main():
    src, build = sys.argv[1], sys.argv[2]
    entries = diagram(os.path.join(src, "docs", "design.md"))
    line_of = {m: i for i, mods, _ in entries for m in mods}
    listed = {m: deps for _, mods, deps in entries for m in mods}
    bad = 0
    for mod, deps in sorted(code_deps(build).items()):
        if mod == "uring_none":
            continue  # built only without liburing; depends on leaves
        if mod not in line_of:
            print(f"{mod}.c: not in the diagram of docs/design.md")
            bad = 1
            continue
        for d in sorted(deps):
            if d not in listed[mod]:
                print(f"{mod}.c depends on {d}.c, not listed on its line")
                bad = 1
            if line_of.get(d, -1) <= line_of[mod]:
                print(f"{mod}.c depends on {d}.c, which is not below it")
                bad = 1
    for i, mods, deps in entries:
        for d in deps:
            if line_of.get(d, -1) <= i:
                print(f"diagram: {', '.join(mods)} lists {d} at or above it")
                bad = 1
    return bad


sys.exit(main())
