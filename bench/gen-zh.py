#!/usr/bin/python3
"""Write N rows of real Chinese text as TSV for MySQL/MariaDB LOAD DATA.

usage: bench/gen-zh.py N > zh.tsv

The text comes from the zh_CN message catalogs installed on this machine:
/usr/share/locale/zh_CN/LC_MESSAGES/*.mo and
/usr/share/vim/vim*/lang/zh_CN.UTF-8/LC_MESSAGES/*.mo (the translations of
coreutils, apt, dpkg, git, vim...). Every translated message with at least
two Han characters is kept, cleaned: printf/Python/brace format markers
(%s, %-20ld, %1$s, %T, %1, %(name)s, {0}), menu accelerators ((&O), &O) and
<PRIu64>-style macros removed, newlines, tabs and runs of spaces folded to
one space. Messages are deduplicated and put in a fixed order (by their MD5),
so the output depends only on N and the installed catalogs.

Columns (tab separated, one row a line, in LOAD DATA's default escaping:
backslash, tab, newline, carriage return and NUL are backslash-escaped):

    id  title  body

Row i (1..N) has as title message (i-1) % count of the title pool (messages
of 2..100 characters). Its body is a deterministic sample of messages of up
to 120 characters, chosen by a hash of i (splitmix64, as bench/gen-text.py),
joined as sentences ("。" after a message that does not end in punctuation)
until a target length of 200..400 characters (also from the hash) is
reached, and cut at 400; so no two rows are alike. Output is streamed; only
the messages are held in memory.

Load with:
    LOAD DATA LOCAL INFILE 'zh.tsv' INTO TABLE zh
        CHARACTER SET utf8mb4
        (id, title, body);
"""

import gettext
import glob
import hashlib
import os
import re
import sys

CATALOGS = ("/usr/share/locale/zh_CN/LC_MESSAGES/*.mo",
            "/usr/share/vim/vim*/lang/zh_CN.UTF-8/LC_MESSAGES/*.mo")
TITLE_LEN = (2, 100)      # characters of a title message
BODY_MSG_MAX = 120        # longest message used in bodies
BODY_MIN, BODY_MAX = 200, 400
MASK = (1 << 64) - 1

_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n",
                      "\r": "\\r", "\0": "\\0"})


def esc(s):
    return s.translate(_ESC)


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_FORMAT = re.compile(
    r"%%"                                          # literal percent
    r"|%\([A-Za-z_][A-Za-z0-9_]*\)[-+ #0]*\d*(?:\.\d+)?[a-zA-Z]"  # %(name)s
    r"|%(?:\d+\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
    r"(?:hh|h|ll|l|L|q|j|z|Z|t|I64|I32)?[A-Za-z]+"   # printf, gnulib, %T %Rg
    r"|%\d+"                                      # %1 (positional, Qt/shell)
    r"|%<PRI[a-zA-Z0-9]+>"                         # <inttypes.h> macros
    r"|\{[A-Za-z0-9_.:!]*\}"                       # {0} {name} {:>10}
    r"|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")            # $var ${var}
_ACCEL = re.compile(r"\(\s*[&_][A-Za-z0-9]\s*\)|&(?=[A-Za-z0-9])")
_SPACE = re.compile(r"\s+")


def clean(s):
    s = _FORMAT.sub("", s)
    s = _ACCEL.sub("", s)
    s = _SPACE.sub(" ", s).strip()
    return s


def messages():
    """The cleaned, deduplicated messages with Han characters, in a fixed
    order (by MD5 of the text)."""
    files = []
    for pat in CATALOGS:
        files.extend(sorted(glob.glob(pat)))
    seen = set()
    nfiles = 0
    for path in files:
        try:
            with open(path, "rb") as f:
                cat = gettext.GNUTranslations(f)._catalog
        except (OSError, UnicodeDecodeError, LookupError) as e:
            sys.stderr.write("gen-zh.py: skipping %s: %s\n" % (path, e))
            continue
        nfiles += 1
        for v in cat.values():
            if not isinstance(v, str) or not _HAN.search(v):
                continue
            v = clean(v)
            if len(_HAN.findall(v)) >= 2:
                seen.add(v)
    msgs = sorted(seen, key=lambda s: hashlib.md5(s.encode("utf-8")).digest())
    return nfiles, msgs


_END = set("。！？；：，、…．.!?;:,)）]】」』\"”")


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: gen-zh.py N > rows.tsv\n")
        return 2
    n = int(sys.argv[1])

    nfiles, msgs = messages()
    titles = [esc(m) for m in msgs if TITLE_LEN[0] <= len(m) <= TITLE_LEN[1]]
    pool = [m for m in msgs if len(m) <= BODY_MSG_MAX]
    if not titles or not pool:
        sys.stderr.write("gen-zh.py: no zh_CN messages found (%s)\n"
                         % ", ".join(CATALOGS))
        return 1
    # Each body message with its sentence end, so joining is concatenation.
    pool = [m if m[-1] in _END else m + "。" for m in pool]
    ntitles, npool = len(titles), len(pool)
    sys.stderr.write("gen-zh.py: %d catalogs, %d messages, %d titles, "
                     "%d body messages\n" % (nfiles, len(msgs), ntitles, npool))

    sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    out = sys.stdout
    buf = []
    for i in range(1, n + 1):
        # splitmix64 of i drives the target length and the message choice.
        h = (i * 0x9E3779B97F4A7C15) & MASK
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
        h ^= h >> 31
        target = BODY_MIN + h % (BODY_MAX - BODY_MIN + 1)
        h >>= 9
        parts, size = [], 0
        while size < target:
            h = (h * 6364136223846793005 + 1442695040888963407) & MASK
            h ^= h >> 29
            m = pool[h % npool]
            parts.append(m)
            size += len(m)
        body = "".join(parts)[:BODY_MAX]
        buf.append("%d\t%s\t%s\n" % (i, titles[(i - 1) % ntitles], esc(body)))
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
