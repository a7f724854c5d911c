#!/usr/bin/python3
"""Write N rows of real English text as TSV for MySQL/MariaDB LOAD DATA.

usage: bench/gen-text.py N > docs.tsv

The text comes from Debian's package descriptions: `apt-cache dumpavail`
(Package, Version, Section, Installed-Size, Description synopsis and, when the
index carries them, long-description continuation lines). Debian's Packages
indices usually ship only the synopsis, so long descriptions are also taken
from apt's Translation-en indices (when downloaded) and from
/var/lib/dpkg/status (installed packages).

Columns (tab separated, one row a line, in LOAD DATA's default escaping:
backslash, tab, newline, carriage return and NUL are backslash-escaped,
\\N is NULL):

    id  package  version  section  size  title  body

Row i (1..N) uses package record (i-1) % count; records with a long
description come first. Its body is the record's long description (or its
synopsis) followed by a deterministic sample of sentences from other records'
descriptions, chosen by a hash of i, so no two rows are alike. Output is
streamed; only the package records are held in memory.

Load with:
    LOAD DATA LOCAL INFILE 'docs.tsv' INTO TABLE docs
        CHARACTER SET utf8mb4
        (id, package, version, section, size, title, body);
"""

import glob
import os
import re
import subprocess
import sys

# Column widths of the bench table (characters).
MAXLEN = {"package": 100, "version": 100, "section": 64, "title": 255}
MAX_BODY = 60000          # TEXT holds 65535 bytes; stay well under
MASK = (1 << 64) - 1

_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n",
                      "\r": "\\r", "\0": "\\0"})


def esc(s):
    return s.translate(_ESC)


def paragraphs(lines):
    """Debian long-description continuation lines -> plain text."""
    out = []
    for ln in lines:
        ln = ln[1:] if ln.startswith(" ") else ln
        out.append("" if ln.strip() == "." else ln.rstrip())
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def stanzas(stream):
    """Yield dicts of a deb822 stream; 'Description' -> (synopsis, [lines]),
    other multi-line fields keep only their first line."""
    rec = {}
    cur = None
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            if rec:
                yield rec
            rec, cur = {}, None
            continue
        if line[0] in " \t":
            if cur in ("Description", "Description-en"):
                rec[cur][1].append(line)
            continue
        key, _, val = line.partition(":")
        cur = key
        val = val.strip()
        if key in ("Description", "Description-en"):
            rec[key] = (val, [])
        else:
            rec[key] = val
    if rec:
        yield rec


def read_cmd(argv):
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL,
                             encoding="utf-8", errors="replace")
    except OSError:
        return []
    with p:
        yield from stanzas(p.stdout)


def translations():
    """Long descriptions from apt's Translation-en indices, by md5."""
    long_by_md5 = {}
    helper = "/usr/lib/apt/apt-helper"
    for path in sorted(glob.glob("/var/lib/apt/lists/*_i18n_Translation-en*")):
        if path.endswith((".gpg", ".diff")):
            continue
        if os.access(helper, os.X_OK):
            recs = read_cmd([helper, "cat-file", path])
        else:
            recs = read_cmd(["cat", path])
        for r in recs:
            d = r.get("Description-en")
            md5 = r.get("Description-md5")
            if d and md5 and d[1]:
                long_by_md5[md5] = paragraphs(d[1])
    return long_by_md5


def installed_long():
    """Long descriptions of installed packages, by package name."""
    out = {}
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8",
                  errors="replace") as f:
            for r in stanzas(f):
                d = r.get("Description")
                if d and d[1] and "Package" in r:
                    out.setdefault(r["Package"], paragraphs(d[1]))
    except OSError:
        pass
    return out


_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences(text):
    text = " ".join(text.split())
    for s in _SENT.split(text):
        if 30 <= len(s) <= 300 and s[-1] in ".!?":
            yield s


def load_records():
    by_md5 = translations()
    inst = installed_long()
    recs = []
    seen = set()
    for r in read_cmd(["apt-cache", "dumpavail"]):
        pkg = r.get("Package")
        d = r.get("Description")
        if not pkg or not d or pkg in seen:
            continue
        seen.add(pkg)
        body = (paragraphs(d[1]) if d[1] else
                by_md5.get(r.get("Description-md5", ""), "") or
                inst.get(pkg, ""))
        recs.append((pkg, r.get("Version", ""), r.get("Section", ""),
                     r.get("Installed-Size", ""), d[0], body))
    if not recs:   # no apt indices at all: fall back to installed packages
        with open("/var/lib/dpkg/status", encoding="utf-8",
                  errors="replace") as f:
            for r in stanzas(f):
                d = r.get("Description")
                if not r.get("Package") or not d:
                    continue
                recs.append((r["Package"], r.get("Version", ""),
                             r.get("Section", ""), r.get("Installed-Size", ""),
                             d[0], paragraphs(d[1])))
    # Records with a long description first: small runs get the rich text.
    recs.sort(key=lambda t: not t[5])
    return recs


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: gen-text.py N > rows.tsv\n")
        return 2
    n = int(sys.argv[1])

    recs = load_records()
    if not recs:
        sys.stderr.write("gen-text.py: no package descriptions found "
                         "(apt-cache dumpavail and /var/lib/dpkg/status)\n")
        return 1

    # Two sentence pools: prose from long descriptions, and the synopses
    # (as sentences: many distinct, package-specific words). Extra sentences
    # alternate between them.
    prose, syn = [], []
    seen = set()
    for r in recs:
        for s in sentences(r[5]):
            if s not in seen:
                seen.add(s)
                prose.append(esc(s))
        t = r[4].strip()
        if t and t not in seen:
            seen.add(t)
            syn.append(esc(t[:1].upper() + t[1:] + ("" if t[-1] in ".!?" else ".")))
    del seen
    if not prose:
        prose = syn
    pools = (prose, syn)
    npools = (len(prose), len(syn))

    # Per record: the escaped fixed columns joined, and the escaped body.
    fixed = []
    for pkg, ver, sec, size, title, body in recs:
        size = size if size.isdigit() else "\\N"
        head = "\t".join((esc(pkg[:MAXLEN["package"]]),
                          esc(ver[:MAXLEN["version"]]),
                          esc(sec[:MAXLEN["section"]]),
                          size,
                          esc(title[:MAXLEN["title"]])))
        b = body or title
        fixed.append((head, esc(b[:MAX_BODY - 2000]), bool(body)))
    count = len(fixed)
    sys.stderr.write("gen-text.py: %d package records, %d sentences, "
                     "%d synopses, %d with long descriptions\n"
                     % (count, npools[0], npools[1],
                        sum(1 for f in fixed if f[2])))

    sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    out = sys.stdout
    buf = []
    for i in range(1, n + 1):
        head, body, has_long = fixed[(i - 1) % count]
        # splitmix64 of i drives the sentence choice.
        h = (i * 0x9E3779B97F4A7C15) & MASK
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
        h ^= h >> 31
        k = (1 if has_long else 2) + (h & 3)
        h >>= 2
        extra = []
        for j in range(k):
            extra.append(pools[j & 1][h % npools[j & 1]])
            h = (h * 6364136223846793005 + 1442695040888963407) & MASK
            h ^= h >> 29
        buf.append("%d\t%s\t%s\\n\\n%s\n" % (i, head, body, " ".join(extra)))
        if len(buf) >= 2000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
    out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # Reader went away (e.g. `| head`): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
