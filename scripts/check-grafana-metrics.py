#!/usr/bin/env python3
"""Checks that a Grafana dashboard and a Prometheus rule file use only metrics the node exposes.

    python3 scripts/check-grafana-metrics.py DASHBOARD.json RULES.yml EXPOSITION.txt

EXPOSITION.txt is the node's /metrics text (Prometheus text format); its `# TYPE name type` lines
name the metric families. Every metric name used in the dashboard (panel target `expr`s and
template variable queries) and in the rule file (`expr`s) must be one of them, or the family of a
histogram/summary series (`name_bucket`, `name_sum`, `name_count`), or `up` (made by Prometheus),
or a series recorded by the rule file itself (`record:`). It also checks that the dashboard JSON
parses and that every panel but a row has a title and at least one target with an expression.

Prints one line per problem and exits 1 when there is any; prints a summary and exits 0 otherwise;
exits 2 on a usage error or an unreadable file.

Standard library only: the rule file is read with a small line-based reader (no YAML library)
that knows `expr:` as a plain one-line scalar (optionally quoted) or a `|`/`>` block scalar.
"""

import json
import re
import sys

# PromQL words that are never metric names.
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "double_exponential_smoothing", "exp", "floor", "histogram_avg",
    "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
    "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "info",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
    "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
    "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh",
    "time", "timestamp", "vector", "year",
}
AGGREGATIONS = {
    "avg", "bottomk", "count", "count_values", "group", "limit_ratio", "limitk", "max", "min",
    "quantile", "stddev", "stdvar", "sum", "topk",
}
KEYWORDS = {
    "and", "or", "unless", "atan2", "bool", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "start", "end", "inf", "nan",
}
# Label lists that follow these words hold label names, not metrics.
LABEL_LIST_WORDS = ("by", "without", "on", "ignoring", "group_left", "group_right")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
MADE_BY_PROMETHEUS = {"up"}

STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', re.S)
NAME_MATCHER_RE = re.compile(r'__name__\s*=\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)')
COMMENT_RE = re.compile(r"#[^\n]*")
BRACES_RE = re.compile(r"\{[^{}]*\}")
BRACKETS_RE = re.compile(r"\[[^\[\]]*\]")
LABEL_LIST_RE = re.compile(r"\b(" + "|".join(LABEL_LIST_WORDS) + r")\s*\([^()]*\)", re.I)
GRAFANA_VAR_RE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
TOKEN_RE = re.compile(
    r"(?P<num>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z0-9_]*)"
    r"|(?P<id>[a-zA-Z_:][a-zA-Z0-9_:]*)"
)


def metric_names(expr):
    """Metric names in one PromQL expression, and words that look like calls of unknown functions."""
    names, problems = set(), []
    # A selector may name its metric inside the braces: {__name__="x"}.
    for quoted in NAME_MATCHER_RE.findall(expr):
        names.add(quoted[1:-1])
    text = STRING_RE.sub('""', expr)  # strings first: they may hold anything
    text = COMMENT_RE.sub(" ", text)
    text = GRAFANA_VAR_RE.sub(" ", text)  # $__rate_interval, ${tenant}, [[var]] outside strings
    text = BRACES_RE.sub(" ", text)  # label matchers
    while True:  # ranges and subqueries, [5m] and [1h:5m]; innermost first
        stripped = BRACKETS_RE.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    text = LABEL_LIST_RE.sub(lambda m: m.group(1), text)  # by (tenant), on (instance), ...
    for match in TOKEN_RE.finditer(text):
        word = match.group("id")
        if word is None:
            continue  # a number or a duration (5m, 1d, 1h30m)
        if word.lower() in KEYWORDS or word.lower() in AGGREGATIONS:
            continue
        if re.match(r"\s*\(", text[match.end():]):
            if word not in FUNCTIONS:
                problems.append(f"unknown PromQL function {word}()")
            continue
        names.add(word)
    return names, problems


def grafana_variable_exprs(variable):
    """PromQL expressions in a Grafana query variable (label_values / query_result)."""
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query", "")
    if not isinstance(query, str):
        return []
    query = query.strip()
    match = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", query, re.S)
    if match:
        return [match.group(1)]
    match = re.fullmatch(r"query_result\((.*)\)", query, re.S)
    if match:
        return [match.group(1)]
    # label_values(label), label_names(), metrics(regex): no metric name to check
    return []


def dashboard_exprs(path, problems):
    """(where, expr) pairs of a dashboard; appends structural problems."""
    try:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
    except json.JSONDecodeError as error:
        problems.append(f"{path}: not valid JSON: {error}")
        return []
    if not isinstance(dashboard, dict):
        problems.append(f"{path}: not a dashboard object")
        return []
    exprs = []

    def walk(panels):
        for index, panel in enumerate(panels or []):
            title = panel.get("title")
            where = f"panel {title!r}" if title else f"panel #{index} (id {panel.get('id')})"
            if not isinstance(title, str) or not title.strip():
                problems.append(f"{path}: {where} has no title")
            if panel.get("type") == "row":
                walk(panel.get("panels"))  # a collapsed row holds its panels
                continue
            targets = [t for t in panel.get("targets") or [] if isinstance(t, dict)]
            if not targets:
                problems.append(f"{path}: {where} has no target")
            for target in targets:
                expr = target.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    problems.append(f"{path}: {where} target {target.get('refId')} has no expr")
                    continue
                exprs.append((f"dashboard {where}", expr))
            walk(panel.get("panels"))

    panels = dashboard.get("panels")
    if not panels:
        problems.append(f"{path}: no panels")
    walk(panels)
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") == "query":
            for expr in grafana_variable_exprs(variable):
                exprs.append((f"dashboard variable {variable.get('name')!r}", expr))
    return exprs


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


def plain_scalar(value):
    """A one-line YAML scalar: quoted, or plain with a trailing ` #comment` cut."""
    value = value.strip()
    if value.startswith('"'):
        match = re.fullmatch(r'"((?:[^"\\]|\\.)*)"\s*(#.*)?', value)
        if not match:
            return None
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), match.group(1))
    if value.startswith("'"):
        match = re.fullmatch(r"'((?:[^']|'')*)'\s*(#.*)?", value)
        return match.group(1).replace("''", "'") if match else None
    return re.sub(r"\s+#.*$", "", value)


def rule_exprs(path, problems):
    """(where, expr) pairs and recorded names of a rule file, read line by line.

    Handles `expr: <plain or quoted scalar>` (a plain scalar may go on over more indented lines)
    and `expr: |`, `|-`, `|+`, `>`, `>-` blocks. Anything else is a problem, never a guess.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    exprs, recorded, rule = [], set(), None
    key_re = re.compile(r"^(\s*)(?:-\s+)?(alert|record|expr)\s*:\s?(.*)$")
    i = 0
    while i < len(lines):
        line = lines[i]
        match = key_re.match(line)
        i += 1
        if not match or line.lstrip().startswith("#"):
            continue
        # the key's column (after "- " when the key opens a list item)
        key_indent = line.index(match.group(2))
        if line.lstrip().startswith("-"):
            rule = None  # a new rule: its alert/record key may come after its expr
        key, value = match.group(2), match.group(3).strip()
        if key in ("alert", "record"):
            name = plain_scalar(value)
            rule = f"{key} {name}"
            if key == "record" and name:
                recorded.add(name)
            continue
        where = f"rules {rule} (line {i})" if rule else f"rules line {i}"
        block = re.fullmatch(r"([|>])([+-]?)(\d?)\s*(#.*)?", value)
        if block:
            body = []
            while i < len(lines) and (not lines[i].strip() or indent_of(lines[i]) > key_indent):
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            if not body:
                problems.append(f"{path}: {where}: empty expr block")
                continue
            cut = int(block.group(3)) + key_indent if block.group(3) else indent_of(next(b for b in body if b.strip()))
            text_lines = [b[cut:] for b in body]
            expr = "\n".join(text_lines) if block.group(1) == "|" else " ".join(t.strip() for t in text_lines)
            if block.group(2) != "-":
                expr += "\n"  # clip (and, close enough, keep) chomping: the final line break stays
        else:
            expr = plain_scalar(value)
            if expr is None:
                problems.append(f"{path}: {where}: expr is a quoted scalar that does not end on its line")
                continue
            while i < len(lines) and lines[i].strip() and indent_of(lines[i]) > key_indent \
                    and not lines[i].lstrip().startswith("#"):
                expr += " " + lines[i].strip()  # a plain scalar folded over more lines
                i += 1
        if not expr.strip():
            problems.append(f"{path}: {where}: empty expr")
            continue
        exprs.append((where, expr))
    if not exprs:
        problems.append(f"{path}: no expr found")
    return exprs, recorded


def exposition_families(path):
    """{family: type} from the `# TYPE name type` lines of a Prometheus text exposition."""
    families = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = re.match(r"#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)", line)
            if match:
                families[match.group(1)] = match.group(2)
    return families


def known(name, families, recorded):
    if name in families or name in recorded or name in MADE_BY_PROMETHEUS:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and families.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return True
    return False


def main(argv):
    if len(argv) != 4:
        print(f"usage: {argv[0]} DASHBOARD.json RULES.yml EXPOSITION.txt", file=sys.stderr)
        return 2
    dashboard_path, rules_path, exposition_path = argv[1:]
    problems = []
    try:
        exprs = dashboard_exprs(dashboard_path, problems)
        rules, recorded = rule_exprs(rules_path, problems)
        families = exposition_families(exposition_path)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not families:
        problems.append(f"{exposition_path}: no '# TYPE' lines")
    exprs += rules

    used = {}  # metric name -> places it is used
    for where, expr in exprs:
        names, expr_problems = metric_names(expr)
        problems += [f"{where}: {p}" for p in expr_problems]
        for name in names:
            used.setdefault(name, []).append(where)
    for name in sorted(used):
        if not known(name, families, recorded):
            places = sorted(set(used[name]))
            more = f" and {len(places) - 3} more" if len(places) > 3 else ""
            problems.append(f"{name}: not in {exposition_path} (used by {'; '.join(places[:3])}{more})")

    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"ok: {len(used)} metric names in {len(exprs)} expressions, all exposed "
          f"({len(families)} families in {exposition_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
