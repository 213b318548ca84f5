"""The functions a query on the SQL endpoint may call: an allow-list (names as ClickHouse's
parse tree prints them, compared case-insensitively).

What Grafana's ClickHouse plugin generates (its query builder, macros and handshake), what
the dashboards in ``dashboards/`` use, and the everyday pure functions of the same families
(operators, comparisons, conditionals, dates, strings, arrays, maps, JSON, aggregates and
window functions). Nothing that reads files, URLs, dictionaries, settings, other tables or the
host, and nothing that sleeps: a function not named here is refused (ACCESS_DENIED), so a new
engine version adds nothing on its own.
"""

from __future__ import annotations

_OPERATORS = """
and or not xor equals notEquals less lessOrEquals greater greaterOrEquals
plus minus multiply divide intDiv intDivOrZero modulo negate abs
in notIn nullIn notNullIn like notLike ilike notILike match isNull isNotNull
if multiIf tuple tupleElement array arrayElement lambda CAST _CAST
"""
_CONDITIONALS = "coalesce ifNull nullIf assumeNotNull toNullable isNaN isFinite isInfinite greatest least"
_CONVERSIONS = """
toString toFixedString toInt8 toInt16 toInt32 toInt64 toUInt8 toUInt16 toUInt32 toUInt64
toFloat32 toFloat64 toDecimal64 toUUID toIPv4 toIPv6 IPv4NumToString IPv6NumToString
toTypeName toDate toDate32 toDateTime toDateTime64 toDateOrNull toDateTimeOrNull
parseDateTimeBestEffort parseDateTimeBestEffortOrNull parseDateTime64BestEffort
toUnixTimestamp toUnixTimestamp64Milli fromUnixTimestamp fromUnixTimestamp64Milli
reinterpretAsString hex unhex
"""
_DATES = """
now now64 today yesterday timezone toTimeZone toTimezone
toYear toQuarter toMonth toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond
toISOWeek toWeek toYYYYMM toYYYYMMDD toMonday toStartOfYear toStartOfQuarter
toStartOfMonth toStartOfWeek toStartOfDay toStartOfHour toStartOfMinute toStartOfSecond
toStartOfFiveMinutes toStartOfTenMinutes toStartOfFifteenMinutes toStartOfInterval
toIntervalSecond toIntervalMinute toIntervalHour toIntervalDay toIntervalWeek toIntervalMonth
toIntervalQuarter toIntervalYear date_trunc dateTrunc dateDiff date_diff age
addSeconds addMinutes addHours addDays addWeeks addMonths addYears
subtractSeconds subtractMinutes subtractHours subtractDays subtractWeeks subtractMonths subtractYears
formatDateTime formatDateTimeInJodaSyntax timeSlot
"""
_STRINGS = """
length empty notEmpty lower upper lowerUTF8 upperUTF8 concat concatWithSeparator substring
substringUTF8 left right trimBoth trimLeft trimRight position positionCaseInsensitive
ascii positionUTF8 positionCaseInsensitiveUTF8 startsWith endsWith replaceOne replaceAll replaceRegexpOne replaceRegexpAll extract
extractAll splitByChar splitByString arrayStringConcat format leftPad rightPad reverse
lengthUTF8 repeat toValidUTF8 multiSearchAny countSubstrings domain cutQueryString
formatReadableSize formatReadableQuantity formatReadableTimeDelta
JSONExtractString JSONExtractInt JSONExtractFloat JSONExtractBool JSONExtractRaw JSONHas
JSONExtractKeys JSONLength visitParamExtractString toJSONString
"""
_ARRAYS_AND_MAPS = """
has hasAny hasAll indexOf arrayJoin arrayMap arrayFilter arrayExists arrayAll arrayCount
arraySort arrayReverseSort arrayDistinct arraySlice arrayConcat arrayReverse arrayUniq
arrayFirst arrayLast arrayEnumerate range emptyArrayString
map mapKeys mapValues mapContains
round floor ceil sign sqrt exp log log10 pow
"""
_AGGREGATES = """
count countIf countDistinct sum sumIf avg avgIf min minIf max maxIf any anyIf anyLast
argMin argMax uniq uniqIf uniqExact uniqExactIf groupArray groupUniqArray topK
quantile quantiles quantileExact median stddevPop varPop
row_number rank dense_rank lagInFrame leadInFrame first_value last_value
"""
#: what the store's own read paths use (tests run them through this endpoint)
_STORE_READS = "isValidJSON"
#: the clickhouse-go handshake (``SELECT displayName(), version(), revision(), timezone()``)
_HANDSHAKE = "displayName version revision currentDatabase database"

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    name.lower()
    for block in (
        _OPERATORS,
        _CONDITIONALS,
        _CONVERSIONS,
        _DATES,
        _STRINGS,
        _ARRAYS_AND_MAPS,
        _AGGREGATES,
        _HANDSHAKE,
        _STORE_READS,
    )
    for name in block.split()
)

#: the ``IN`` family: a bare identifier on the right-hand side names a table
IN_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        "in",
        "notIn",
        "globalIn",
        "globalNotIn",
        "nullIn",
        "notNullIn",
        "globalNullIn",
        "globalNotNullIn",
    )
)
