#!/usr/bin/env python3
"""Writes the route tables of Synapse and Dendrite as plain text, one
"METHOD PATH" per line, for the route-coverage test (policies/routes_test.go).

Usage: extract.py dendrite <git-dir> <tag>   > dendrite.txt
       extract.py synapse  <git-dir> <commit> > synapse.txt

Paths are written in the endpoint-table syntax of docs/policy-contract.md:
"{name}" a variable segment, "a|b" alternative literal segments. A route that
a homeserver registers with a regular expression matching several segments
("(?P<x>.*)") is written with "{x...}".
"""
import re
import subprocess
import sys


def show(gitdir, rev, path):
    return subprocess.run(["git", "--git-dir", gitdir, "show", f"{rev}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def files(gitdir, rev, prefix):
    out = subprocess.run(["git", "--git-dir", gitdir, "ls-tree", "-r", "--name-only", rev, prefix],
                         check=True, capture_output=True, text=True).stdout
    return [f for f in out.split() if f.endswith(".py")]


# ---- Dendrite: gorilla/mux routers ----------------------------------------

DENDRITE_MUXES = {
    "clientapi/routing/routing.go": {
        "publicAPIMux": "/_matrix/client", "v3mux": "/_matrix/client/r0|v3", "v1mux": "/_matrix/client/v1",
        "unstableMux": "/_matrix/client/unstable", "wkMux": "/.well-known/matrix",
        "synapseAdminRouter": "/_synapse", "dendriteAdminRouter": "/_dendrite",
    },
    "federationapi/routing/routing.go": {
        "v2keysmux": "/_matrix/key/v2", "v1fedmux": "/_matrix/federation/v1", "v2fedmux": "/_matrix/federation/v2",
        "v3fedmux": "/_matrix/federation/v3", "wkMux": "/.well-known/matrix",
    },
    "mediaapi/routing/routing.go": {
        "v3mux": "/_matrix/media/r0|v1|v3", "v1mux": "/_matrix/client/v1/media", "v1fedMux": "/_matrix/federation/v1/media",
    },
    "syncapi/routing/routing.go": {
        "v1unstablemux": "/_matrix/client/v1|unstable", "v3mux": "/_matrix/client/r0|v3",
    },
    "relayapi/routing/routing.go": {"v1fedmux": "/_matrix/federation/v1"},
}


def gorilla_path(p):
    # {name:regexp} -> {name}; a regexp with alternatives of literals -> a|b
    def var(m):
        name, rx = m.group(1), m.group(2)
        if rx:
            alts = re.fullmatch(r"\(\?:([A-Za-z0-9_.|]+)\)", rx)
            if alts:
                return alts.group(1)
            if rx in (".*", ".+"):
                return "{" + name + "...}"
        return "{" + name + "}"
    return re.sub(r"\{([A-Za-z0-9_]+)(?::([^}]*))?\}", var, p)


def dendrite(gitdir, rev):
    out = []
    for path, muxes in DENDRITE_MUXES.items():
        src = show(gitdir, rev, path)
        for m in re.finditer(r"\b([A-Za-z0-9]+)\.Handle\(\s*\"([^\"]*)\"", src):
            mux, p = m.group(1), m.group(2)
            if mux not in muxes:
                raise SystemExit(f"{path}: unknown router {mux}")
            nxt = src.find(".Handle(", m.end())
            seg = src[m.end(): nxt if nxt > 0 else len(src)]
            mm = re.search(r"\.Methods\(([^)]*)\)", seg)
            methods = re.findall(r"http\.Method([A-Za-z]+)", mm.group(1)) if mm else ["ANY"]
            full = muxes[mux].rstrip("/") + gorilla_path(p)
            variants = [full]
            if re.search(r"\{\w+:\[\^/\]\+/\?\}$", p):
                # {x:[^/]+/?}: the segment may end in "/" (an empty state key).
                variants.append(full + "/")
            for meth in methods:
                if meth != "Options":
                    out += [f"{meth.upper()} {v}" for v in variants]
    return out


# ---- Synapse: regular expressions per servlet -----------------------------

def synapse(gitdir, rev):
    out = []
    for path in files(gitdir, rev, "synapse/rest/client") + files(gitdir, rev, "synapse/rest/media") + files(gitdir, rev, "synapse/federation/transport/server"):
        src = show(gitdir, rev, path)
        out += [f"# {path}"] + synapse_file(path, src)
    return out


def synapse_file(path, src):
    out = []
    # Client servlets. Class attribute: PATTERNS = client_patterns("regex", releases=..., unstable=..., v1=...)
    for m in re.finditer(r"PATTERNS\s*=\s*(?:\[\s*|\(\s*)?(?:list\()?client_patterns\(\s*((?:r?\"[^\"]*\"\s*)+)(.*?)\)\s*\n", src, re.S):
        rx = "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))
        for meth in servlet_methods(src, m.start()):
            out += [f"{meth} {p}" for p in client_paths(rx, m.group(2))]
    # Fixed patterns: re.compile("^/_matrix/...") inside a PATTERNS list.
    for m in re.finditer(r"re\.compile\(\s*((?:r?\"[^\"]*\"\s*)+),?\s*\)", src):
        rx = "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))
        if rx.lstrip("^").startswith("/_matrix/client") or rx.lstrip("^").startswith("/_matrix/media"):
            for meth in servlet_methods(src, m.start()):
                out += [f"{meth} {p}" for p in expand(synapse_regex_path(rx))]
    # register_txn_path(self, PATTERNS, http_server): POST regex and PUT regex/{txn_id}, v1=True.
    for m in re.finditer(r"PATTERNS\s*=\s*\(?\s*((?:r?\"[^\"]*\"\s*)+)\)?\s*\n\s*register_txn_path", src):
        rx = "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))
        out += [f"POST {p}" for p in client_paths(rx + "$", "v1=True")]
        out += [f"PUT {p}" for p in client_paths(rx + "/(?P<txn_id>[^/]*)$", "v1=True")]
    # http_server.register_paths("METHOD", client_patterns(var, ...)) with var a string of the same function.
    for m in re.finditer(r"register_paths\(\s*\"(\w+)\",\s*client_patterns\((\w+)(.*?)\)", src, re.S):
        meth, var, args = m.group(1), m.group(2), m.group(3)
        fn = src.rfind("def ", 0, m.start())
        d = re.search(r"(?<!\w)" + var + r"\s*=\s*\(?\s*((?:r?\"[^\"]*\"\s*)+)\)?", src[fn:m.start()])
        if d:
            rx = "".join(re.findall(r"\"([^\"]*)\"", d.group(1)))
            out += [f"{meth} {p}" for p in client_paths(rx, args)]
    # Federation servlets: PATH = "..." with PREFIX per class
    if "transport/server" in path:
        for m in re.finditer(r"class (\w+)\(([^)]*)\):(.*?)(?=\nclass |\Z)", src, re.S):
            body = m.group(3)
            pm = re.search(r"\n\s+PATH\s*=\s*\(?\s*((?:r?\"[^\"]*\"\s*)+)", body)
            if not pm:
                continue
            rx = "".join(re.findall(r"\"([^\"]*)\"", pm.group(1)))
            prefix = "/_matrix/federation/v1"
            pr = re.search(r"\n\s+PREFIX\s*=\s*([A-Z_0-9]+)(?:\s*\+\s*\"([^\"]*)\")?", body)
            if pr:
                prefix = {"FEDERATION_V1_PREFIX": "/_matrix/federation/v1", "FEDERATION_V2_PREFIX": "/_matrix/federation/v2",
                          "FEDERATION_UNSTABLE_PREFIX": "/_matrix/federation/unstable"}.get(pr.group(1), pr.group(1))
                if pr.group(2):
                    prefix += pr.group(2)
            for meth in re.findall(r"async def on_(GET|PUT|POST|DELETE)\(", body):
                out += [f"{meth} {p}" for p in expand(prefix + synapse_regex_path(rx))]
    return out


def client_paths(rx, args):
    releases = ["r0", "v3"]
    r = re.search(r"releases\s*=\s*\(([^)]*)\)", args)
    if r:
        releases = re.findall(r"\"([^\"]*)\"", r.group(1))
    prefixes = list(releases)
    if not re.search(r"unstable\s*=\s*False", args):
        prefixes.append("unstable")
    if re.search(r"v1\s*=\s*True", args):
        prefixes.append("api/v1")
    out = []
    for p in prefixes:
        path = "/_matrix/client/" + p + synapse_regex_path(rx)
        out += expand(path)
        if path.endswith("/{state_key}"):
            # "[^/]*" matches the empty state key of a trailing "/".
            out += expand(path[: -len("{state_key}")])
    return out


def expand(p):
    # (x)? and x? optional parts, innermost first.
    m = re.search(r"\(([^()]*)\)\?", p)
    if m:
        return expand(p[:m.start()] + m.group(1) + p[m.end():]) + expand(p[:m.start()] + p[m.end():])
    if p.endswith("/?"):
        return expand(p[:-2]) + expand(p[:-2] + "/")
    return [p]


def servlet_methods(src, at):
    # The methods of the class that holds the PATTERNS at offset at.
    start = src.rfind("\nclass ", 0, at)
    end = src.find("\nclass ", at)
    body = src[start: end if end > 0 else len(src)]
    ms = re.findall(r"async def on_(GET|PUT|POST|DELETE)\(", body) + re.findall(r"\n    def on_(GET|PUT|POST|DELETE)\(", body)
    return sorted(set(ms)) or ["ANY"]


def synapse_regex_path(rx):
    rx = rx.rstrip("$").lstrip("^").replace("\\.", ".")
    rx = re.sub(r"\(\?P<(\w+)>([A-Za-z0-9_.]+(?:\|[A-Za-z0-9_.]+)+)\)", r"\2", rx)
    rx = re.sub(r"\((?:\?:)?([A-Za-z0-9_.]+(?:\|[A-Za-z0-9_.]+)+)\)", r"\1", rx)
    rx = re.sub(r"\(\?P<(\w+)>\[\^/\]\*\)", r"{\1}", rx)
    rx = re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", rx)
    rx = re.sub(r"\(\?P<(\w+)>\.\*\)", r"{\1...}", rx)
    rx = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", rx)
    return rx


if __name__ == "__main__" and sys.argv[1] != "table":
    kind, gitdir, rev = sys.argv[1:4]
    commit = subprocess.run(["git", "--git-dir", gitdir, "rev-parse", rev + "^{commit}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    lines = dendrite(gitdir, rev) if kind == "dendrite" else synapse(gitdir, rev)
    print(f"# source: {kind} {rev} commit {commit}")
    print("# generated by policies/testdata/routes/extract.py; one \"METHOD PATH\" per line")
    for l in lines:
        print(l)


# ---- the default endpoint tables of policies/data.json --------------------

def table(paths):
    """Reads route files and prints the endpoint tables: every client-server,
    media and well-known route on the client listener, every federation and
    key route on the server-server listener; versions merged per route,
    variable names normalised so that each route has one spelling. Left out:
    the legacy prefix /_matrix/client/api/v1, admin APIs, unstable
    federation routes and federation v3 invites (pseudo-IDs). data.json starts
    from this output and adds by hand what it cannot see: Synapse's single
    sign-on pages (synapse-sso.txt)."""
    import json
    groups = {}  # (listener, head, tail) -> [versions, methods]
    for path in paths:
        for line in open(path):
            if line.startswith("#") or not line.strip():
                continue
            meth, p = line.split()
            segs = p[1:].split("/")
            if segs[0] == ".well-known":
                listener = "federation" if segs[-1] == "server" else "client"
                keys = [(listener, "/".join(segs), "", "")]
                if segs[-1] == "server":
                    keys.append(("client", "/".join(segs), "", ""))
            elif segs[0] != "_matrix" or len(segs) < 3:
                continue
            else:
                head, vers, tail = segs[1], segs[2], segs[3:]
                if head in ("client", "media"):
                    listener = "client"
                elif head in ("federation", "key"):
                    listener = "federation"
                else:
                    continue
                if vers == "api" or (head == "federation" and vers not in ("v1", "v2")):
                    continue
                if head == "client" and vers == "versions":
                    tail, vers = ["versions"], ""
                keys = []
                tails = [[]]
                for s in tail:  # literal alternatives become routes of their own
                    alts = [s] if s.startswith("{") else s.split("|")
                    tails = [t + [a] for t in tails for a in alts]
                for v in vers.split("|"):
                    for t in tails:
                        norm = "/".join("{" + s.strip("{}.") + ("...}" if s.endswith("...}") else "}") if s.startswith("{") else s for s in t)
                        keys.append((listener, "_matrix/" + head, norm, v))
            for listener, head, tail, v in keys:
                shape = re.sub(r"\{[^}]*\}", "{}", tail)
                g = groups.setdefault((listener, head, shape), [tail, set(), set()])
                if v:
                    g[1].add(v)
                g[2].add(meth)
    out = {"client": {}, "federation": {}}
    order = {"r0": 0, "v1": 1, "v2": 2, "v3": 3, "unstable": 4}
    for (listener, head, shape), (tail, vers, methods) in sorted(groups.items()):
        vs = "|".join(sorted(vers, key=lambda v: order.get(v, 9)))
        p = "/" + head + ("/" + vs if vs else "") + ("/" + tail if tail else "")
        out[listener][p] = {m: True for m in sorted(methods)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__" and sys.argv[1] == "table":
    table(sys.argv[2:])
