/* Unit tests for the query parser (src/query.c): each construct of the
 * standard syntax, Lucene's operator rules, and errors with positions. */
#include "tisfs/query.h"

#include "check.h"

static const char *parsed(const char *q, bool and_op)
{
    static char buf[2048];
    char err[512];
    struct qnode *n = query_parse(q, and_op, err, sizeof err);
    if (!n) {
        snprintf(buf, sizeof buf, "ERROR %s", err);
        return buf;
    }
    query_dump(n, buf, sizeof buf);
    query_free(n);
    return buf;
}

#define P(q, want) CHECK_STR(parsed(q, false), want)
#define PA(q, want) CHECK_STR(parsed(q, true), want)

int main(void)
{
    P("foo", "(foo)");
    P("title:foo", "(title:foo)");
    P("title:foo bar", "(title:foo bar)");
    P("a AND b", "(+a +b)");
    P("a AND b OR c", "(+a +b c)");
    P("a OR b AND c", "(a +b +c)");
    P("a && b || c", "(+a +b c)");
    P("+a -b c", "(+a -b c)");
    P("NOT a", "(-a)");
    P("!a b", "(-a b)");
    P("a NOT b", "(a -b)");
    P("title:(a b)^2", "((title:a title:b)^2)");
    P("(a OR b) AND c", "(+(a b) +c)");
    P("\"big data\"", "(\"big data\")");
    P("title:\"big data\"~3^1.5", "(title:\"big data\"^1.5)");
    P("lib*", "(lib*)");
    P("l?b*", "(l?b*)");
    P("li\\*b", "(li*b)");
    P("size:[1 TO 10]", "(size:[1 TO 10])");
    P("size:{1 TO *]", "(size:{1 TO *])");
    P("d:[* TO \"2020-01-01 00:00:00\"}", "(d:[* TO 2020-01-01 00:00:00})");
    P("title:*", "(title:*)");
    P("*:*", "(*:*)");
    P("*", "(*:*)");
    P("a\\:b", "(a:b)");
    P("e-mail", "(e-mail)");
    P("foo^2", "(foo^2)");
    PA("a b", "(+a +b)");
    PA("a OR b", "(a b)");
    PA("a b -c", "(+a +b -c)");
    P("title:(foo", "ERROR Cannot parse 'title:(foo': expected ')' at column 11");
    P("a:", "ERROR Cannot parse 'a:': Encountered \"<EOF>\"; expected a term at column 3");
    P("\"open", "ERROR Cannot parse '\"open': the phrase that starts here has no closing '\"' at column 1");
    P("[1 TO", "ERROR Cannot parse '[1 TO': Encountered \"<EOF>\"; expected a range bound at column 6");
    P("ts:[2020-01-01T00:00:00Z TO *]", "(ts:[2020-01-01T00:00:00Z TO *])");
    P("[1 2]", "ERROR Cannot parse '[1 2]': expected TO in a range at column 4");
    P("x^", "ERROR Cannot parse 'x^': expected a boost number after '^' at column 3");
    /* Boosts are finite numbers: nan, inf and overflow are errors (a 400). */
    P("x^nan", "ERROR Cannot parse 'x^nan': expected a boost number after '^' at column 3");
    P("x^inf", "ERROR Cannot parse 'x^inf': expected a boost number after '^' at column 3");
    P("x^0x10", "ERROR Cannot parse 'x^0x10': expected a boost number after '^' at column 3");
    P("x^1e999", "ERROR Cannot parse 'x^1e999': boost 1e999 is too large at column 3");
    P("AND x", "ERROR Cannot parse 'AND x': a query cannot start with an operator at column 4");
    P("", "ERROR Cannot parse '': an empty query at column 1");
    P("a\\", "ERROR Cannot parse 'a\\': a '\\' at the end of the query escapes nothing at column 3");
    char deep[200];
    memset(deep, '(', 100);
    deep[100] = 'x';
    memset(deep + 101, ')', 98);
    deep[199] = 0;
    CHECK(strstr(parsed(deep, false), "nesting deeper than 32 levels") != NULL);
    return check_summary();
}
