#!/usr/bin/env python3
"""Import circles between the files of each crate (issue 24's check).

Resolves every `crate::` and `super::` path outside tests to the file of the
module it names (the longest module path that is a file), builds the graph
file -> file, and prints its strongly connected components. A folder's
`mod.rs` and its own files naming each other's items is the usual shape of a
Rust folder and is not reported; any other component is, and makes the exit
status 1. Run from the repository root: `python3 scripts/import_cycles.py`.
"""

import os
import re
import sys

CRATES = ["proto", "server-core", "gateway", "relay", "client", "bindings", "tests"]
PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    found = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if parts and parts[0] == "bin":
                continue
            found[tuple(parts)] = os.path.join(root, name)
    return found


def code_only(text):
    """The text before a trailing `#[cfg(test)] mod tests`, without
    comments (a doc link names a module without importing it)."""
    cut = re.search(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text)
    text = text[: cut.start()] if cut else text
    return re.sub(r"//[^\n]*", "", text)


def module_of(path, mods):
    for module, file in mods.items():
        if file == path:
            return module
    return None


def edges(src):
    mods = modules(src)
    graph = {f: set() for f in mods.values()}
    for module, file in mods.items():
        if os.path.basename(file) == "tests.rs":
            continue
        with open(file, encoding="utf-8") as f:
            text = code_only(f.read())
        for root, rest in PATH.findall(text):
            names = rest.strip(":").split("::")
            if root == "crate":
                base = ()
            else:
                # `super` from a file's module is its parent's.
                base = module[:-1]
                while names and names[0] == "super":
                    base = base[:-1]
                    names = names[1:]
            target = None
            for n in range(len(names), -1, -1):
                candidate = base + tuple(names[:n])
                if candidate in mods:
                    target = mods[candidate]
                    break
            if target and target != file:
                graph[file].add(target)
    return graph, mods


def components(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def folder_shape(comp):
    """A folder's mod.rs with its own files only."""
    dirs = {os.path.dirname(f) for f in comp}
    mods = [f for f in comp if os.path.basename(f) in ("mod.rs", "lib.rs")]
    return len(dirs) <= 2 and len(mods) == 1 and all(
        os.path.dirname(f) == os.path.dirname(mods[0]) for f in comp
    )


def main():
    bad = 0
    for crate in CRATES:
        src = os.path.join(crate, "src")
        graph, _ = edges(src)
        for comp in components(graph):
            if folder_shape(comp):
                continue
            bad += 1
            print(f"{crate}: import circle: {' -> '.join(comp)}")
    if bad == 0:
        print(f"no import circle between modules in {', '.join(CRATES)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
