"""Channel classification of many touches at once (a replay batch or a stream envelope).

``classify_arrivals`` gives, row for row, exactly what ``channels.classify`` and
``channels.campaign_signature`` give, without Python work per row: paid traffic has a
unique landing URL per click (its gclid / fbclid value), so per-row parsing is too slow.

1. Polars string expressions pull out of each URL only what classification reads: the
   "scheme://host" prefix of the landing URL and of the referrer, and, in one regex pass
   over the landing URL's query, its utm_source / utm_medium / utm_campaign parameters
   (key and value) and the click-id parameters it has (keys only: their values are what
   makes each click's URL unique).
2. Each distinct combination of those parts (few in real traffic) is classified once by
   the code ``classify`` runs (``channels.classify_landing``) and kept in a frame per rule
   table; every batch joins its rows on that frame, so a warm batch runs no Python per
   combination either.

The pass over the query also reports everything that would make these parts disagree
with ``urlsplit`` + ``parse_qsl``: spaces, control or non-ASCII characters, '%' or '+'
in a key, a blank click id, a second '?', '?' or '&' in the fragment; so do an IPv6
host and a URL without "scheme://" or "//". Such a URL (rare) is parsed by ``channels``
itself, per distinct URL or per row, so the result is exact for any input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import polars as pl

from attribution.channels import (
    DEFAULT_RULES,
    ChannelRules,
    Classified,
    Landing,
    Signature,
    TrafficSignals,
    campaign_signature,
    classify,
    classify_landing,
    click_id_params,
    host_of,
    page_parts,
    query_params,
)

SIGNAL_COLUMNS: tuple[str, ...] = TrafficSignals.__slots__
OUTPUT_COLUMNS = ("channel", "source", "medium", "campaign",
                  "sig_source", "sig_medium", "sig_campaign")
OUTPUT_SCHEMA = {name: pl.String for name in OUTPUT_COLUMNS}
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")

# "scheme://host:port" or "//host:port": a scheme by urlsplit's rule (an ASCII letter,
# then letters, digits, "+-."), then the authority up to the first '/', '?' or '#'.
# Parsing this prefix alone gives the same host as parsing the whole URL.
_AUTHORITY = r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//[^/?#]*"
_ODD_CHARACTER = re.compile(r"[^!-~]")  # space, control, non-ASCII: stripped, removed, folded
_ODD_HOST = re.compile(r"[^!-~]|[\[\]]")  # ... or an IPv6 literal, which urlsplit may reject


def _literal(name: str) -> str:
    """``name`` as a regex matching itself (hex escapes are valid in every regex dialect)."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"\\x{{{ord(c):X}}}"
                   for c in name)


def _plain(name: str) -> bool:
    """A key a simple query can have: printable ASCII, nothing parse_qsl decodes or splits
    at. Other click-id names can only be there encoded, which makes the URL odd."""
    return name.isascii() and name.isprintable() and not any(c in name for c in " %+&=#?")


@lru_cache(maxsize=64)
def _tokens_pattern(clicks: tuple[str, ...]) -> str:
    """One regex pass over a landing URL's query ("?..." or "#...") finds what
    classification reads from it, and what would make that disagree with parse_qsl:

    - "?utm_x=value" / "&utm_x=value": a whole utm parameter (keys in any case);
    - "&click_id=value": a click id whose value has '%' or '+' (decoding decides if blank);
    - "&click_id=": any other click id ("&click_id=&", "&click_id=#": a blank one);
    - "&ke%y", "&ke+y": a key parse_qsl would decode;
    - "?", "#": the query's start, a second '?', the fragment's start;
    - any space, control or non-ASCII character.
    """
    plain = "|".join(_literal(c) for c in clicks if _plain(c))
    alternatives = [rf"[?&](?i:{'|'.join(map(_literal, UTM_KEYS))})=[^&#]*"]
    if plain:
        alternatives += [rf"[?&](?i:{plain})=[^&#]*[%+][^&#]*", rf"[?&](?i:{plain})=[&#]?"]
    alternatives += [r"[?&][^&=#]*[%+]", r"[?#]", r"[^!-~]"]
    return "|".join(alternatives)


def _landing_params(authority: str, tokens: Sequence[str]) -> Mapping[str, str] | None:
    """The query parameters classification reads, from a landing URL's tokens; None when
    the URL is not simple after all (it then takes the exact parser)."""
    if _ODD_HOST.search(authority):
        return None
    in_query = in_fragment = False
    pairs: list[str] = []
    clicks: list[str] = []
    for token in tokens:
        if _ODD_CHARACTER.search(token):
            return None
        mark, body = token[0], token[1:]
        if mark == "#":
            in_fragment = True
            continue
        if in_fragment or (mark == "?" and in_query):  # a fragment's or a second '?'
            return None
        in_query = True
        if not body:
            continue
        key, equals, value = body.partition("=")
        if not equals or value in ("&", "#"):  # a key to decode; a blank click id
            return None
        if value or key.lower() in UTM_KEYS:
            pairs.append(body)
        else:
            clicks.append(key.lower())
    params = dict(query_params("&".join(pairs)))
    for key in clicks:
        params.setdefault(key, "1")  # only a click id's presence matters
    return params


def _absent(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column) == "")


@lru_cache(maxsize=64)
def _parts(tokens: str) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Two projections giving what each row's classification depends on: its
    distinct-combination key (built once per pattern: expressions are reusable)."""
    page, referrer = pl.col("page_url"), pl.col("referrer")
    first = [
        *map(pl.col, SIGNAL_COLUMNS),
        # The exact parser takes URLs ending in '=' (maybe a blank click id, which the
        # tokens do not show) and non-ASCII ones (str.find counts bytes, str.slice chars).
        pl.when(~page.str.ends_with("=") & (page.str.len_bytes() == page.str.len_chars()))
        .then(page.str.extract(_AUTHORITY, 0)).alias("page_authority"),
        page.str.slice(page.str.find(r"[?#]")).alias("page_query"),  # the path is not read
        referrer.str.extract(_AUTHORITY, 0).alias("referrer_authority"),
    ]
    authority = pl.col("page_authority")
    second = [
        pl.col("utm_source"), pl.col("utm_medium"), pl.col("utm_campaign"),
        pl.col("explicit_channel"),
        authority,
        pl.when(authority.is_not_null()).then(pl.col("page_query")).str.extract_all(tokens)
        .alias("page_tokens"),
        pl.when(authority.is_null() & ~_absent("page_url")).then(page).alias("page_exact"),
        pl.col("referrer_authority"),
        pl.when(pl.col("referrer_authority").is_null() & ~_absent("referrer"))
        .then(referrer).alias("referrer_exact"),
    ]
    return first, second


_Row = tuple[object, ...]
_Result = tuple[str | None, ...]
_EXACT: _Result = (None,) * len(OUTPUT_COLUMNS)  # classify this row on its own


class _Combinations:
    """The classified part combinations of one rule table, as a frame the next batch joins
    on: real traffic repeats a few hundred combinations, so a warm batch only joins."""

    LIMIT = 4_096  # rows; the table restarts from one batch when it would pass this

    def __init__(self, rules: ChannelRules) -> None:
        self.rules = rules  # also keeps id(rules) from being reused while cached
        self.known: pl.DataFrame | None = None

    def lookup(self, keys: pl.DataFrame) -> pl.DataFrame:
        """OUTPUT_COLUMNS for every row of ``keys`` (all null: classify the row alone)."""
        out = None if self.known is None else self._join(keys, self.known)
        if out is not None and not out["_known"].null_count():
            return out
        # new combinations: classify each once, keep those without one-off URLs
        restart = self.known is None or self.known.height >= self.LIMIT
        new = (keys if restart or out is None else keys.filter(out["_known"].is_null())).unique()
        table = pl.concat([new, pl.DataFrame([self._classify(row) for row in new.iter_rows()],
                                             schema=OUTPUT_SCHEMA, orient="row")],
                          how="horizontal").with_columns(_known=pl.lit(True))
        lasting = pl.col("page_exact").is_null() & pl.col("referrer_exact").is_null()
        kept = table.filter(lasting)
        self.known = kept if restart or self.known is None else pl.concat([self.known, kept])
        return self._join(keys, pl.concat([self.known, table.filter(~lasting)]))

    @staticmethod
    def _join(keys: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
        return keys.join(table, on=keys.columns, how="left", nulls_equal=True,
                         maintain_order="left").select(*OUTPUT_COLUMNS, "_known")

    def _classify(self, row: _Row) -> _Result:
        (utm_source, utm_medium, utm_campaign, explicit, page_authority, page_tokens,
         page_exact, referrer_authority, referrer_exact) = row
        params: Mapping[str, str] | None
        if isinstance(page_authority, str):
            params = _landing_params(page_authority, _strs(page_tokens))
            if params is None:
                return _EXACT
            page_host = host_of(page_authority)
        else:
            params, page_host = page_parts(_str(page_exact))
        referrer = referrer_authority if referrer_authority is not None else referrer_exact
        landing = Landing(_str(utm_source), _str(utm_medium), _str(utm_campaign), params,
                          page_host, host_of(_str(referrer)), _str(explicit))
        return _result(*classify_landing(landing, self.rules))


def _result(got: Classified, signature: Signature | None) -> _Result:
    return (got.channel, got.source, got.medium, got.campaign,
            *(signature if signature is not None else (None, None, None)))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _strs(values: object) -> Sequence[str]:
    return values if isinstance(values, list) else ()


_TABLES: dict[int, _Combinations] = {}


def _combinations(rules: ChannelRules) -> _Combinations:
    found = _TABLES.get(id(rules))
    if found is None or found.rules is not rules:
        if len(_TABLES) >= 16:
            _TABLES.pop(next(iter(_TABLES)))
        found = _TABLES[id(rules)] = _Combinations(rules)
    return found


def classify_arrivals(signals: pl.DataFrame,
                      rules: ChannelRules = DEFAULT_RULES) -> pl.DataFrame:
    """``classify`` + ``campaign_signature`` of every row of ``signals``.

    ``signals`` has the String (or all-null) columns utm_source, utm_medium,
    utm_campaign, referrer, page_url, explicit_channel (other columns are ignored). The
    result has one row per input row, in order, with the String columns channel, source,
    medium, campaign (``classify``) and sig_source, sig_medium, sig_campaign
    (``campaign_signature``; all three null where it is None).
    """
    missing = [c for c in SIGNAL_COLUMNS if c not in signals.columns]
    if missing:
        raise ValueError(f"classify_arrivals needs the columns {', '.join(missing)}")
    schema = signals.schema
    for name in SIGNAL_COLUMNS:
        if schema[name] not in (pl.String, pl.Null):
            raise TypeError(f"column {name} must be String, not {schema[name]}")
    if signals.height == 0:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    if any(schema[name] == pl.Null for name in SIGNAL_COLUMNS):  # all-null columns
        signals = signals.with_columns(pl.col(c).cast(pl.String) for c in SIGNAL_COLUMNS)
    first, second = _parts(_tokens_pattern(click_id_params(rules)))
    keys = signals.select(first).select(second)
    out = _combinations(rules).lookup(keys).drop("_known")
    if out["channel"].null_count():
        # URLs that turned out not simple: the per-row path
        rows = out.select(pl.arg_where(pl.col("channel").is_null())).to_series()
        exact = [_result(classify(s, rules), campaign_signature(s, rules))
                 for s in (TrafficSignals(*r) for r in
                           signals.select(SIGNAL_COLUMNS)[rows].iter_rows())]
        fixed = pl.DataFrame(exact, schema=OUTPUT_SCHEMA, orient="row")
        out = out.with_columns(out[c].scatter(rows, fixed[c]) for c in OUTPUT_COLUMNS)
    return out
