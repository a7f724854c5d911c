"""Search through select/: hit sets agree with SQL ground truth computed by
the test on a real-text table (Debian's package descriptions), boolean logic,
phrases, prefixes, ranges, paging, sorting, BM25 on a hand-computed example,
Chinese and pinyin, and malformed queries that get Solr's error layout."""

import json
import math
import os
import subprocess
import urllib.parse

import pytest

from conftest import ROOT, Tisfs, mysql_spec, wait_for

ROWS = 3000


@pytest.fixture(scope="module")
def corpus(mariadb, tmp_path_factory):
    """tistest.pkgs: real English text, loaded once for the module."""
    tsv = tmp_path_factory.mktemp("corpus") / "pkgs.tsv"
    with open(tsv, "wb") as f:
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "gen-text.py"),
                        str(ROWS)], stdout=f, check=True)
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest",
                    "DROP TABLE IF EXISTS tistest.pkgs",
                    "CREATE TABLE tistest.pkgs (id INT PRIMARY KEY, package VARCHAR(100),"
                    " version VARCHAR(100), section VARCHAR(64), size INT, title VARCHAR(255),"
                    " body TEXT) DEFAULT CHARSET=utf8mb4")
    subprocess.run([os.path.join(ROOT, "scripts", "mariadb-sandbox"), "sql", mariadb.root,
                    "--local-infile=1", "tistest", "-e",
                    f"LOAD DATA LOCAL INFILE '{tsv}' INTO TABLE pkgs"], check=True)
    assert mariadb.query("SELECT COUNT(*) FROM tistest.pkgs", "tistest")[0][0] == ROWS
    return mariadb


@pytest.fixture(scope="module")
def fs(corpus, tmp_path_factory):
    """One mount with the collections the tests search, built once."""
    fs = Tisfs(str(tmp_path_factory.mktemp("search")))
    specs = {
        "pkgs": ['{name:"package", token:"string"}', '{name:"section", token:"string"}',
                 '{name:"size"}', '{name:"title", token:"ik"}', '{name:"body", token:"ik"}',
                 '{name:"version", token:"text_ws"}'],
        "likes": ['{name:"title", token:"like"}'],
    }
    try:
        for name, cols in specs.items():
            st = fs.create(name, mysql_spec(corpus, "pkgs", cols))
            assert st["complete"], st["errs"]
        yield fs
    finally:
        rc = fs.stop()
        assert rc == 0, fs.log_tail()


def select(fs, coll, **params):
    """Reads collections/coll/select/<query string> and parses the JSON."""
    qs = urllib.parse.urlencode(params, doseq=True, quote_via=urllib.parse.quote,
                                safe=":*[]{}()^\"")
    qs = qs.replace("/", "%2F")
    return json.loads(fs.read("collections", coll, "select", qs))


def ids(fs, coll, q, **params):
    r = select(fs, coll, q=q, rows=10000, fl="id", **params)
    assert r["responseHeader"]["status"] == 0, r
    got = {d["id"] for d in r["response"]["docs"]}
    assert len(got) == r["response"]["numFound"]
    return got


def sql_ids(db, where):
    return {row[0] for row in db.query(f"SELECT id FROM pkgs WHERE {where}", "tistest")}


def word(col, w):
    """SQL for 'col contains the word w' as a user sees a word: no letter on
    either side. Joined words (boost.python, python's, python3, foo_bar)
    count: the ik analyzer indexes their letter and digit parts too."""
    return f"{col} REGEXP '(?i)(^|[^[:alpha:]])" + w + "([^[:alpha:]]|$)'"


WORDS = ["library", "python", "server", "documentation", "module", "tool", "data", "perl",
         "fonts", "kernel", "development", "files", "plugin", "support", "client", "java",
         "ruby", "common", "utilities", "game", "gnome", "qt", "xml", "debug"]


@pytest.mark.parametrize("w", WORDS)
def test_ik_term_matches_sql_word_search(fs, corpus, w):
    expect = sql_ids(corpus, word("title", w))
    assert expect, "a word the corpus has"
    got = ids(fs, "pkgs", f"title:{w}")
    assert got == expect
    # Precision: no hit lacks the word as a substring.
    assert got <= sql_ids(corpus, f"title LIKE '%{w}%'")
    # Case and width folding: the same hits for an upper-case, full-width query.
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in w.upper())
    assert ids(fs, "pkgs", f"title:{wide}") == expect


def test_default_field_searches_every_searchable_field(fs, corpus):
    expect = sql_ids(corpus, word("title", "python") + " OR " + word("body", "python") +
                     " OR BINARY version REGEXP '(^|[[:space:]])python([[:space:]]|$)'"
                     " OR BINARY section = 'python' OR BINARY package = 'python'")
    assert ids(fs, "pkgs", "python") == expect


def test_boolean_logic(fs, corpus):
    lib, py, dev = (word("title", w) for w in ("library", "python", "development"))
    assert ids(fs, "pkgs", "title:library AND title:python") == sql_ids(corpus, f"{lib} AND {py}")
    assert ids(fs, "pkgs", "title:library OR title:python") == sql_ids(corpus, f"{lib} OR {py}")
    assert ids(fs, "pkgs", "title:library -title:python") == sql_ids(corpus, f"{lib} AND NOT {py}")
    assert ids(fs, "pkgs", "title:library NOT title:python") == sql_ids(corpus, f"{lib} AND NOT {py}")
    assert ids(fs, "pkgs", "+title:library +title:development") == sql_ids(corpus, f"{lib} AND {dev}")
    assert ids(fs, "pkgs", "title:(library python) && !title:development") == \
        sql_ids(corpus, f"({lib} OR {py}) AND NOT {dev}")
    assert ids(fs, "pkgs", "title:library", **{"q.op": "AND"}) == sql_ids(corpus, lib)
    assert ids(fs, "pkgs", "title:(library python)", **{"q.op": "AND"}) == \
        sql_ids(corpus, f"{lib} AND {py}")
    assert ids(fs, "pkgs", "-title:library") == sql_ids(corpus, f"NOT {lib}")


def test_filter_queries_intersect(fs, corpus):
    got = ids(fs, "pkgs", "title:library", fq="section:libs")
    assert got == sql_ids(corpus, word("title", "library") + " AND section = 'libs'")
    r = select(fs, "pkgs", q="title:library", fq=["section:libs", "size:[* TO 100]"], rows=0)
    assert r["response"]["numFound"] == len(sql_ids(
        corpus, word("title", "library") + " AND section = 'libs' AND size <= 100"))


def test_phrases_are_adjacent_tokens(fs, corpus):
    expect = sql_ids(corpus, "title REGEXP '(?i)(?<![[:alnum:]_])development[^[:alnum:]_]+files"
                             "(?![[:alnum:]_])'")
    assert len(expect) > 10
    assert ids(fs, "pkgs", 'title:"development files"') == expect
    # The same words in the other order or apart are not the phrase.
    assert ids(fs, "pkgs", 'title:"files development"') == sql_ids(
        corpus, "title REGEXP '(?i)(?<![[:alnum:]_])files[^[:alnum:]_]+development"
                "(?![[:alnum:]_])'")


@pytest.mark.parametrize("w1,w2", [("of", "the"), ("is", "a"), ("for", "the"),
                                   ("to", "be"), ("shared", "library"), ("command", "line")])
def test_phrases_of_common_words_match_sql(fs, corpus, w1, w2):
    """Phrases of the most common words, answered from positions, equal the
    SQL ground truth: the two words as users see words (no letter on either
    side), with only non-alphanumerics between them."""
    expect = sql_ids(corpus, f"body REGEXP '(?i)(^|[^[:alpha:]]){w1}[^[:alnum:]]+{w2}"
                             "([^[:alpha:]]|$)'")
    assert len(expect) > 20
    assert ids(fs, "pkgs", f'body:"{w1} {w2}"') == expect


def test_joined_words_match_whole_and_by_parts(fs, corpus):
    # Node.js: the whole word, each part alone, and the parts as a phrase.
    joined = sql_ids(corpus, "title REGEXP '(?i)(^|[^[:alpha:]])node[.]js([^[:alpha:]]|$)'")
    assert joined, "titles with Node.js"
    assert ids(fs, "pkgs", "title:node.js") == joined
    assert ids(fs, "pkgs", 'title:"node js"') >= joined
    assert ids(fs, "pkgs", "title:js") >= joined
    assert ids(fs, "pkgs", "title:node") == sql_ids(corpus, word("title", "node"))
    # A word in a possessive, and a phrase that runs on past the joined word.
    assert ids(fs, "pkgs", "title:google") == sql_ids(corpus, word("title", "google"))
    after = corpus.query("SELECT title FROM pkgs WHERE title REGEXP 'Node[.]js [a-z]+' LIMIT 1",
                         "tistest")
    if after:
        nxt = after[0][0].split("Node.js ", 1)[1].split()[0]
        assert ids(fs, "pkgs", f'title:"js {nxt}"') >= sql_ids(
            corpus, f"title REGEXP 'Node[.]js {nxt}([^[:alpha:]]|$)'")


def test_prefix_and_wildcards(fs, corpus):
    prefix = "title REGEXP '(?i)(?<![[:alnum:]_])(?<![[:alpha:]][.\\':])lib[[:alnum:]_]*'"
    got = ids(fs, "pkgs", "title:lib*")
    assert got == sql_ids(corpus, prefix)
    assert ids(fs, "pkgs", "package:python3-*") == sql_ids(corpus, "package LIKE 'python3-%'")
    assert ids(fs, "pkgs", "package:lib?dev") == sql_ids(corpus, "package LIKE 'lib_dev'")
    assert ids(fs, "pkgs", "package:*") == sql_ids(corpus, "package IS NOT NULL")
    assert select(fs, "pkgs", q="*:*", rows=0)["response"]["numFound"] == ROWS


def test_string_terms_are_exact(fs, corpus):
    pkg = corpus.query("SELECT package FROM pkgs WHERE id = 7", "tistest")[0][0]
    assert ids(fs, "pkgs", f"package:{pkg}") == sql_ids(corpus, f"package = '{pkg}'")
    assert ids(fs, "pkgs", f"package:{pkg.upper()}") == (
        sql_ids(corpus, f"BINARY package = '{pkg.upper()}'"))


def test_numeric_ranges(fs, corpus):
    cases = {"size:[100 TO 1000]": "size BETWEEN 100 AND 1000",
             "size:{100 TO 1000}": "size > 100 AND size < 1000",
             "size:[100 TO 1000}": "size >= 100 AND size < 1000",
             "size:[* TO 50]": "size <= 50",
             "size:[5000 TO *]": "size >= 5000",
             "size:42": "size = 42"}
    for q, where in cases.items():
        assert ids(fs, "pkgs", q) == sql_ids(corpus, where), q


def test_sort_and_paging(fs, corpus):
    want = [r[0] for r in corpus.query(
        "SELECT id FROM pkgs WHERE section = 'libs' ORDER BY size DESC, id ASC", "tistest")]
    r = select(fs, "pkgs", q="section:libs", sort="size desc", rows=len(want), fl="id,size")
    assert [d["id"] for d in r["response"]["docs"]] == want
    # Paging is a stable slice of one ranking.
    full = [d["id"] for d in select(fs, "pkgs", q="title:library OR body:data", rows=60,
                                    fl="id")["response"]["docs"]]
    pages = []
    for start in range(0, 60, 15):
        pages += [d["id"] for d in select(fs, "pkgs", q="title:library OR body:data", rows=15,
                                          start=start, fl="id")["response"]["docs"]]
    assert pages == full and len(full) == 60
    scores = [d["score"] for d in select(fs, "pkgs", q="title:library OR body:data", rows=60,
                                         fl="id,score")["response"]["docs"]]
    assert scores == sorted(scores, reverse=True)


def pruning_queries(corpus):
    """Disjunctions, conjunctions, phrases, negations, boosts, prefixes and
    ranges over words of the corpus, common and rare."""
    words = [w for (w,) in corpus.query(
        "SELECT LOWER(SUBSTRING_INDEX(title, ' ', 1)) FROM pkgs WHERE id % 97 = 0", "tistest")
        if w.isalpha()][:12] + ["library", "python", "data", "files", "module", "perl"]
    qs = []
    for i, w in enumerate(words):
        v, x = words[(i + 3) % len(words)], words[(i + 7) % len(words)]
        qs += [f"title:{w} OR body:{w}", f"body:{w} body:{v} body:{x}",
               f"title:{w}^3 OR title:{v} OR body:{x}^0.5", f"body:{w} OR title:{v} -body:{x}",
               f"title:{w} AND body:{v}", f'body:"{w} {v}" OR title:{x}', f"{w} OR {v}"]
    return qs + ["title:lib*", "body:pro* OR title:perl", "size:[100 TO 2000]", "*:*",
                 "title:(python perl ruby java) OR body:module^2"]


def test_top_k_pruning_is_exact(fs, corpus):
    """MaxScore and the early exits rank exactly as scoring every document:
    "sort=score desc,score desc" means the same order but turns them off."""
    for q in pruning_queries(corpus):
        for start, rows in ((0, 10), (10, 10), (35, 7), (0, 1)):
            got = select(fs, "pkgs", q=q, start=start, rows=rows, fl="id,score")
            ref = select(fs, "pkgs", q=q, start=start, rows=rows, fl="id,score",
                         sort="score desc,score desc")
            assert got["response"]["numFound"] == ref["response"]["numFound"], q
            assert got["response"]["docs"] == ref["response"]["docs"], (q, start, rows)


def test_rows_zero_counts_and_fl(fs, corpus):
    r = select(fs, "pkgs", q="title:library", rows=0)
    assert r["response"]["docs"] == [] and r["response"]["numFound"] == len(
        sql_ids(corpus, word("title", "library")))
    doc = select(fs, "pkgs", q="id:7", fl="package,size,score")["response"]["docs"][0]
    assert set(doc) == {"package", "size", "score"}
    doc = select(fs, "pkgs", q="id:7")["response"]["docs"][0]
    assert set(doc) == {"id", "package", "section", "size", "title", "body", "version"}
    r = select(fs, "pkgs", q="*:*", rows=10**9)
    assert len(r["response"]["docs"]) == min(ROWS, 10000)  # rows is bounded


NEEDLES = ["lib", "pyth", "x", "ing to", "-dev", "GNU"]


@pytest.mark.parametrize("needle", NEEDLES)
def test_like_matches_sql_like_exactly(fs, corpus, needle):
    esc = needle.replace("'", "''")
    expect = sql_ids(corpus, f"LOWER(title) COLLATE utf8mb4_bin LIKE "
                             f"CONCAT('%', LOWER('{esc}'), '%')")
    assert ids(fs, "likes", f'title:"{needle}"') == expect


def test_like_prefix_is_an_anchored_like(fs, corpus):
    for p in ("lib", "python3", "x"):
        assert ids(fs, "likes", f"title:{p}*") == sql_ids(
            corpus, f"LOWER(title) COLLATE utf8mb4_bin LIKE '{p}%'"), p


def test_df_picks_the_default_field(fs, corpus):
    assert ids(fs, "pkgs", "library", df="title") == sql_ids(corpus, word("title", "library"))
    assert ids(fs, "pkgs", "library", df="body") == sql_ids(corpus, word("body", "library"))


def test_bm25_on_a_hand_computed_example(tisfs, mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest", "DROP TABLE IF EXISTS tistest.bm",
                    "CREATE TABLE tistest.bm (id INT PRIMARY KEY, t VARCHAR(100))",
                    "INSERT INTO tistest.bm VALUES (1, 'apple banana apple'),"
                    " (2, 'apple cherry date elder fig'), (3, 'banana'), (4, 'cherry')")
    assert tisfs.create("bm", mysql_spec(mariadb, "bm", ['{name:"t"}']))["complete"]
    docs = {1: ["apple", "banana", "apple"], 2: ["apple", "cherry", "date", "elder", "fig"],
            3: ["banana"], 4: ["cherry"]}
    avgdl = sum(map(len, docs.values())) / len(docs)

    def bm25(term, d):
        n = sum(term in toks for toks in docs.values())
        idf = math.log(1 + (len(docs) - n + 0.5) / (n + 0.5))
        tf = docs[d].count(term)
        return idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * len(docs[d]) / avgdl)) if tf else 0

    r = json.loads(tisfs.read("collections", "bm", "select", "q=t:apple t:banana&fl=id,score"))
    got = {d["id"]: d["score"] for d in r["response"]["docs"]}
    want = {d: bm25("apple", d) + bm25("banana", d) for d in docs if bm25("apple", d) +
            bm25("banana", d)}
    assert got.keys() == want.keys()
    for d in want:
        assert got[d] == pytest.approx(want[d], rel=1e-9)
    assert [d["id"] for d in r["response"]["docs"]] == sorted(want, key=lambda d: -want[d])
    assert r["response"]["maxScore"] == pytest.approx(max(want.values()))
    r = json.loads(tisfs.read("collections", "bm", "select", "q=t:apple^3&fl=id,score"))
    assert r["response"]["docs"][0]["score"] == pytest.approx(3 * bm25("apple", 1))


POEMS = [(1, "床前明月光，疑是地上霜。举头望明月，低头思故乡。"),
         (2, "中华人民共和国成立于一九四九年"),
         (3, "我爱北京天安门，天安门上太阳升"),
         (4, "Mixed 中文 and English text"),
         (5, "中国的首都是北京")]


@pytest.fixture
def chinese(tisfs, mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest", "DROP TABLE IF EXISTS tistest.zh",
                    "CREATE TABLE tistest.zh (id INT PRIMARY KEY, t TEXT, p TEXT, l TEXT)"
                    " DEFAULT CHARSET=utf8mb4")
    con = mariadb.connect("tistest")
    with con.cursor() as cur:
        cur.executemany("INSERT INTO zh VALUES (%s, %s, %s, %s)",
                        [(i, s, s, s) for i, s in POEMS])
    con.close()
    st = tisfs.create("zh", mysql_spec(mariadb, "zh", ['{name:"t", token:"ik"}',
                                                       '{name:"p", token:"pinyin"}',
                                                       '{name:"l", token:"like"}']))
    assert st["complete"], st["errs"]
    return tisfs


def zh_ids(fs, q):
    r = json.loads(fs.read("collections", "zh", "select",
                           urllib.parse.quote(f"q={q}&fl=id&rows=100", safe="=&:")))
    assert r["responseHeader"]["status"] == 0, r
    return {d["id"] for d in r["response"]["docs"]}


def test_chinese_words_and_pinyin(chinese):
    fs = chinese
    assert zh_ids(fs, "t:明月") == {1}
    assert zh_ids(fs, "t:北京") == {3, 5}
    assert zh_ids(fs, "t:天安门") == {3}
    assert zh_ids(fs, "t:中文") == {4}
    assert zh_ids(fs, "t:english") == {4}
    assert zh_ids(fs, 't:"天安门"') == {3}
    assert zh_ids(fs, "p:beijing") == {3, 5}
    assert zh_ids(fs, "p:北京") == {3, 5}
    assert zh_ids(fs, "p:bj") == {3, 5}            # initials
    assert zh_ids(fs, "l:明月光") == {1}
    assert zh_ids(fs, "l:北") == {3, 5}
    assert zh_ids(fs, "l:首都是北京") == {5}


@pytest.mark.parametrize("q,expect", [
    ("title:(foo", "column"),
    ("title:[1 TO", "column"),
    ('title:"open', "no closing"),
    ("nosuchfield:x", "undefined field nosuchfield"),
    ("size:abc", "Invalid int value"),
    ("(" * 100 + "x" + ")" * 100, "nesting deeper"),  # a name is at most 255 bytes
    ("AND x", "cannot start with an operator"),
])
def test_malformed_queries_get_solr_errors(fs, q, expect):
    r = select(fs, "pkgs", q=q)
    assert r["responseHeader"]["status"] == 400
    assert r["error"]["code"] == 400 and expect in r["error"]["msg"], r["error"]["msg"]
    # The daemon is still answering.
    assert select(fs, "pkgs", q="*:*", rows=0)["response"]["numFound"] == ROWS


def test_bad_parameters(fs):
    r = select(fs, "pkgs", q="*:*", rows="many")
    assert r["error"]["code"] == 400 and "rows" in r["error"]["msg"]
    r = select(fs, "pkgs", q="*:*", sort="size sideways")
    assert r["error"]["code"] == 400
    r = select(fs, "pkgs", q="*:*", sort="nosuch asc")
    assert "nosuch" in r["error"]["msg"]


def test_select_before_first_build_and_percent_decoding(tisfs, fs):
    os.mkdir(tisfs.path("collections", "empty"))
    r = json.loads(tisfs.read("collections", "empty", "select", "q=*:*"))
    assert r["error"]["code"] == 503
    assert os.listdir(fs.path("collections", "pkgs", "select")) == []
    # %2F stands for '/', '+' for a space, %3A for ':'.
    a = json.loads(fs.read("collections", "pkgs", "select", "q=title%3Alibrary+title%3Apython"))
    b = select(fs, "pkgs", q="title:library title:python")
    assert a["response"]["numFound"] == b["response"]["numFound"] > 0
    with pytest.raises(OSError):
        open(fs.path("collections", "pkgs", "select", "q=x"), "w").close()


def test_search_survives_rebuild(fs, corpus):
    before = select(fs, "pkgs", q="title:library", rows=0)["response"]["numFound"]
    fs.write("1", "collections", "pkgs", "build")
    seen = []
    st = wait_for(lambda: seen.append(select(fs, "pkgs", q="title:library", rows=0)
                                      ["response"]["numFound"]) or
                  (lambda s: s if s["complete"] or s["failed"] else None)(fs.status("pkgs")),
                  120, what="the rebuild")
    assert st["complete"] and set(seen) == {before}


def fortunes():
    """Tang and Song poems from Debian's fortunes-zh, ANSI colours removed."""
    import re
    poems = []
    for name in ("tang300", "song100"):
        with open(f"/usr/share/games/fortunes/{name}", encoding="utf-8") as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
        poems += [p.strip() for p in text.split("\n%\n") if p.strip()]
    return poems


@pytest.fixture(scope="module")
def poems(corpus, fs):
    rows = list(enumerate(fortunes(), 1))
    assert len(rows) > 300
    corpus.execute("DROP TABLE IF EXISTS tistest.poems",
                   "CREATE TABLE tistest.poems (id INT PRIMARY KEY, w TEXT, l TEXT)"
                   " DEFAULT CHARSET=utf8mb4")
    con = corpus.connect("tistest")
    with con.cursor() as cur:
        cur.executemany("INSERT INTO poems VALUES (%s, %s, %s)", [(i, p, p) for i, p in rows])
    con.close()
    st = fs.create("poems", mysql_spec(corpus, "poems", ['{name:"w", token:"ik"}',
                                                         '{name:"l", token:"like"}']))
    assert st["complete"], st["errs"]
    return corpus


@pytest.mark.parametrize("needle", ["明月", "春风", "故乡", "白云", "不知", "一", "长安",
                                    "万里", "千里", "杜甫"])
def test_chinese_like_matches_sql_like_and_words_are_within_it(fs, poems, needle):
    expect = sql_ids_in(poems, "poems", f"l LIKE '%{needle}%'")
    assert expect
    assert ids(fs, "poems", f"l:{needle}") == expect
    # A word match is always a substring match, and common words are found.
    words = ids(fs, "poems", f"w:{needle}")
    assert words <= expect
    if needle in ("明月", "故乡", "杜甫"):
        assert words


def sql_ids_in(db, table, where):
    return {row[0] for row in db.query(f"SELECT id FROM {table} WHERE {where}", "tistest")}


def test_dates_are_typed(tisfs, mariadb):
    mariadb.execute("CREATE DATABASE IF NOT EXISTS tistest", "DROP TABLE IF EXISTS tistest.dt",
                    "CREATE TABLE tistest.dt (id INT PRIMARY KEY, d DATE, ts DATETIME, p DECIMAL(8,2))",
                    "INSERT INTO tistest.dt VALUES (1, '1953-09-02', '2020-01-01 10:00:00', 9.5),"
                    " (2, '1960-01-01', '2019-12-31 23:59:59', 10.25),"
                    " (3, '1959-12-31', '2020-06-01 00:00:00', -1),"
                    " (4, NULL, NULL, NULL)")
    st = tisfs.create("dt", mysql_spec(mariadb, "dt", ['{name:"d"}', '{name:"ts"}', '{name:"p"}']))
    assert st["complete"]

    def q(s):
        r = json.loads(tisfs.read("collections", "dt", "select",
                                  urllib.parse.quote(s, safe="=&:[]*{}")))
        assert r["responseHeader"]["status"] == 0, r
        return [d["id"] for d in r["response"]["docs"]]

    assert sorted(q("q=d:[1950-01-01 TO 1959-12-31]&fl=id")) == [1, 3]
    assert q("q=d:1960-01-01&fl=id") == [2]
    assert q("q=ts:[2020-01-01T00:00:00Z TO *]&fl=id&sort=ts asc") == [1, 3]
    assert q("q=p:[0 TO 10]&fl=id") == [1]
    assert q("q=*:*&fl=id&sort=p desc") == [2, 1, 3, 4]          # missing values last
    assert q("q=*:*&fl=id&sort=d asc") == [1, 3, 2, 4]
    assert q("q=-d:*&fl=id") == [4]
