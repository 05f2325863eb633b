#!/usr/bin/env python3
"""daemon-deps.py [SRCDIR] - check the daemon's module order in docs/design.md.

Finds, for every cmd/zcrelay/*.c, the zcr_* functions it calls that another
module defines, and checks them against the module diagram under "## The
daemon" in docs/design.md: each line names modules (before the first run of
two or more spaces); a module may call only modules on lines below its own.
So the graph has no cycle, and the diagram says how the code depends.

Files that share a private header form one module (SHARED below). Prints
nothing and exits 0 when code and diagram agree; otherwise prints each
disagreement and exits 1.
"""
import glob
import os
import re
import sys

# Files that are one module with another: they share a private header and
# call each other.
SHARED = {"session_route": "session", "api_sessions": "api"}

DEF = re.compile(r"^[a-z][^\n;{]*?\b(zcr_\w+)\(", re.M)
CALL = re.compile(r"\b(zcr_\w+)\s*\(")
COMMENT = re.compile(r"/\*.*?\*/", re.S)


def module_of(path):
    name = os.path.basename(path)[:-2]
    return SHARED.get(name, name)


def code_deps(src):
    """{module: set of modules whose functions it calls}."""
    files = sorted(glob.glob(os.path.join(src, "cmd/zcrelay/*.c")))
    texts = {f: COMMENT.sub("", open(f).read()) for f in files}
    owner = {}
    for f, t in texts.items():
        for m in DEF.finditer(t):
            owner.setdefault(m.group(1), module_of(f))
    deps = {}
    for f, t in texts.items():
        mod = module_of(f)
        d = deps.setdefault(mod, set())
        for fn in set(CALL.findall(t)):
            other = owner.get(fn)
            if other and other != mod:
                d.add(other)
    return deps


def diagram(src):
    """{module: line number} from the code block under '## The daemon'."""
    text = open(os.path.join(src, "docs/design.md")).read()
    at = text.find("\n## The daemon\n")
    if at < 0:
        sys.exit("docs/design.md: no '## The daemon' section")
    block = text[at:].split("```", 2)
    if len(block) < 3:
        sys.exit("docs/design.md: no module diagram under '## The daemon'")
    level = {}
    for n, line in enumerate(block[1].strip("\n").split("\n")):
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        if line.startswith(" "):
            continue  # a description's second line
        for name in names.split():
            level[name] = n
    return level


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "."
    deps = code_deps(src)
    level = diagram(src)
    bad = []
    for mod in sorted(deps):
        if mod not in level:
            bad.append(f"{mod}: not in the diagram")
    for mod in sorted(deps):
        for other in sorted(deps[mod]):
            if mod in level and other in level and level[other] <= level[mod]:
                bad.append(f"{mod} calls {other}, which is not below it")
    for name in sorted(set(level) - set(deps)):
        bad.append(f"{name}: in the diagram but no such module")
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
